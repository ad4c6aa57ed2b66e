// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * maptest.c - test helper for librdmafs' rdmafs_map(): maps FILE's staging memory
 * read-write, checks its page size in /proc/self/smaps (KernelPageSize, or PMD-mapped
 * bytes for THP), pins it (io_uring_register_buffers) and writes 4 KiB of 'M' at offset
 * 12 KiB through the mapping, then fsyncs FILE.
 *
 *   rdmafs-maptest FILE PAGE_KB     exit 0: as expected
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rdmafs.h"
#include "smaps.h"

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct iovec iov;
	size_t len;
	void *p;
	long want, kps, pmd;
	int fd, r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE PAGE_KB\n", argv[0]);
		return 2;
	}
	want = atol(argv[2]);
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	r = rdmafs_map(fd, PROT_READ | PROT_WRITE, &p, &len);
	if (r) {
		fprintf(stderr, "rdmafs_map: %s\n", strerror(-r));
		return 1;
	}
	for (size_t off = 0; off < len; off += 4096)
		((volatile char *)p)[off];
	kps = smaps_field(p, "KernelPageSize", 0);
	pmd = smaps_field(p, "ShmemPmdMapped", 0) + smaps_field(p, "FilePmdMapped", 0);
	r = io_uring_queue_init(4, &ring, 0);
	iov.iov_base = p;
	iov.iov_len = len;
	if (!r)
		r = io_uring_register_buffers(&ring, &iov, 1);
	printf("rdmafs_map: len=%zu kernel_page_kb=%ld pmd_kb=%ld register=%s\n", len, kps, pmd,
	       r ? strerror(-r) : "ok");
	if (len >= 4 * 4096)
		memset((char *)p + 3 * 4096, 'M', 4096);
	if (fsync(fd))
		perror("fsync");
	if (r || (want > 4 && kps != want && pmd == 0))
		return 1;
	return 0;
}
