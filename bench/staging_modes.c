// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_modes.c - what a staging mode costs an RDMA user per GiB: the long-term pin
 * (io_uring_register_buffers: the same FOLL_WRITE|FOLL_LONGTERM pin ibv_reg_mr takes,
 * walking every page), the page-table population of a fresh mapping, the translation
 * entries a NIC would need, and the CPU's random-access cost (TLB reach). bench/staging_modes
 * runs it on a file of a mount in shmem and thp mode and on a hugetlb memfd.
 *
 *   rdmafs-pinbench [--reps N] FILE | --hugetlb SIZE
 *
 * Prints "pages=N page_kb=N fault_ms=X pin_ms=X unpin_ms=X rand_ns=X" (best of N).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "smaps.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *map_aligned(int fd, size_t len)
{
	const size_t align = 1ul << 30;
	char *a = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0), *p;

	if (a == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)a + align - 1) & ~(align - 1));
	p = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	double best_fault = 1e18, best_pin = 1e18, best_unpin = 1e18, best_rand = 1e18;
	int reps = 5, fd, i = 1;
	size_t len = 0;
	long page_kb = 4, pmd_kb = 0;

	if (i + 1 < argc && !strcmp(argv[i], "--reps")) {
		reps = atoi(argv[i + 1]);
		i += 2;
	}
	if (i + 1 < argc && !strcmp(argv[i], "--hugetlb")) {
		len = strtoull(argv[i + 1], NULL, 0) << 20;	/* MiB */
		fd = memfd_create("pinbench", MFD_HUGETLB | MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, len) < 0 || fallocate(fd, 0, 0, len) < 0) {
			perror("hugetlb memfd (is the pool large enough?)");
			return 1;
		}
	} else if (i == argc - 1) {
		struct stat sb;

		fd = open(argv[i], O_RDWR);
		if (fd < 0 || fstat(fd, &sb) < 0) {
			perror(argv[i]);
			return 1;
		}
		len = sb.st_size;
	} else {
		fprintf(stderr, "usage: %s [--reps N] FILE | --hugetlb MiB\n", argv[0]);
		return 2;
	}
	for (int r = 0; r < reps; r++) {
		struct io_uring ring;
		struct iovec iov;
		char *p = map_aligned(fd, len);
		double t;
		int e;

		if (!p) {
			perror("mmap");
			return 1;
		}
		/* page-table population: touch every 4 KiB of a fresh mapping */
		volatile char sink = 0;

		t = now_ms();
		for (size_t off = 0; off < len; off += 4096)
			sink += p[off];
		t = now_ms() - t;
		best_fault = t < best_fault ? t : best_fault;
		page_kb = smaps_field(p, "KernelPageSize", 0);
		pmd_kb = smaps_field(p, "ShmemPmdMapped", 0) + smaps_field(p, "FilePmdMapped", 0);
		/* CPU random access: 4M reads, each address depending on the previous load (a
		 * latency chain, as in a pointer chase): a TLB miss adds its page walk */
		uint64_t x = 88172645463325252ull, acc = 0;

		t = now_ms();
		for (int k = 0; k < 4 << 20; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			acc += p[((x ^ acc) % len) & ~7ull];
		}
		t = (now_ms() - t) * 1e6 / (4 << 20);
		best_rand = t < best_rand ? t : best_rand;
		sink += acc;
		/* the long-term pin, and its release */
		e = io_uring_queue_init(4, &ring, 0);
		iov.iov_base = p;
		iov.iov_len = len;
		t = now_ms();
		if (!e)
			e = io_uring_register_buffers(&ring, &iov, 1);
		t = now_ms() - t;
		if (e) {
			fprintf(stderr, "io_uring_register_buffers: %s\n", strerror(-e));
			return 1;
		}
		best_pin = t < best_pin ? t : best_pin;
		t = now_ms();
		io_uring_unregister_buffers(&ring);
		t = now_ms() - t;
		best_unpin = t < best_unpin ? t : best_unpin;
		io_uring_queue_exit(&ring);
		munmap(p, len);
	}
	/* thp: KernelPageSize says 4 kB, but PMD-mapped bytes use one entry per 2 MiB */
	size_t big = (size_t)pmd_kb << 10, pages;

	if (page_kb > 4)
		pages = len / ((size_t)page_kb << 10);
	else
		pages = big / (2 << 20) + (len - big) / 4096;
	printf("pages=%zu page_kb=%ld pmd_mapped_kb=%ld fault_ms=%.2f pin_ms=%.2f unpin_ms=%.2f "
	       "rand_ns=%.1f\n", pages, page_kb, pmd_kb, best_fault, best_pin, best_unpin,
	       best_rand);
	return 0;
}
