// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mapcheck.c - test helper: maps a file (a path on the mount, or another process's fd
 * through /proc/PID/fd/N) at an address aligned to 1 GiB, touches it, and reports what
 * the kernel gave: huge page mappings from /proc/self/smaps, and whether a long-term pin
 * (io_uring_register_buffers, the pin ibv_reg_mr takes) is accepted.
 *
 *   mapcheck [--write BYTE] [--fill BYTE] [--register] [--close | --close-after]
 *            [--hold SECONDS] FILE
 *
 * Prints one line: "size=N pmd_kb=N kernel_page_kb=N register=ok|<errno name>".
 * --write BYTE: map writable and set the first byte of every 4 KiB to BYTE.
 * --fill BYTE: map writable and set every byte to BYTE.
 * --close: close the file right after mapping it (the mapping and pin stay).
 * --close-after: close it after the stores (the mapping and pin stay; the daemon saw a
 * writable open while they were made).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smaps.h"

int main(int argc, char **argv)
{
	int wbyte = -1, fbyte = -1, hold = 0, reg = 0, cl = 0, fd, i;
	const size_t align = 1ul << 30;
	struct stat sb;
	char *area, *p;
	size_t len;

	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--write"))
			wbyte = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--fill"))
			fbyte = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--register"))
			reg = 1;
		else if (!strcmp(argv[i], "--close"))
			cl = 1;
		else if (!strcmp(argv[i], "--close-after"))
			cl = 2;
		else if (!strcmp(argv[i], "--hold"))
			hold = atoi(argv[++i]);
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: %s [--write B] [--fill B] [--register] [--hold S] FILE\n",
			argv[0]);
		return 2;
	}
	bool writable = wbyte >= 0 || fbyte >= 0 || reg;

	fd = open(argv[i], writable ? O_RDWR : O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(argv[i]);
		return 1;
	}
	len = sb.st_size;
	if (!len) {
		fprintf(stderr, "%s: empty\n", argv[i]);
		return 1;
	}
	/* Huge page mappings need virtual addresses aligned like the file offsets. */
	area = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (area == MAP_FAILED) {
		perror("mmap reserve");
		return 1;
	}
	p = (char *)(((unsigned long)area + align - 1) & ~(align - 1));
	p = mmap(p, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (cl == 1)
		close(fd);
	volatile char sink = 0;

	if (fbyte >= 0)
		memset(p, fbyte, len);
	for (size_t off = 0; off < len; off += 4096) {
		if (wbyte >= 0)
			p[off] = wbyte;
		else
			sink += p[off];
	}
	if (cl == 2)
		close(fd);
	const char *regs = "no";
	char regbuf[32];

	if (reg) {
		struct io_uring ring;
		struct iovec iov = { p, len };
		int r = io_uring_queue_init(4, &ring, 0);

		if (!r)
			r = io_uring_register_buffers(&ring, &iov, 1);
		snprintf(regbuf, sizeof(regbuf), "%s", r ? strerrorname_np(-r) : "ok");
		regs = regbuf;
		/* the ring (and pin) lives until exit */
	}
	printf("size=%zu pmd_kb=%ld kernel_page_kb=%ld register=%s\n", len,
	       smaps_field(p, "ShmemPmdMapped", -1) + smaps_field(p, "FilePmdMapped", 0),
	       smaps_field(p, "KernelPageSize", -1), regs);
	fflush(stdout);
	if (hold)
		sleep(hold);
	if (writable && msync(p, len, MS_SYNC) < 0)
		perror("msync");
	return 0;
}
