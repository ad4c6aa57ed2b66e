// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * forkpin.c - test helper: what a pinned application that forks sees. Maps FILE shared,
 * pins it long-term (io_uring_register_buffers: the pin ibv_reg_mr takes), forks, and
 * checks that parent, child and the pin keep using the same pages:
 *   1. a child forked after the pin writes region 1 with the CPU: the parent sees it;
 *   2. the parent writes region 2 with the CPU after the fork: no copy-on-write breaks
 *      the pin (the pinned pages are still the file's: a READ_FIXED reads them back);
 *   3. the kernel writes region 3 through the pin (READ_FIXED from a pipe, as a NIC
 *      would by DMA): the parent and a second child see it.
 * Also reports whether MADV_DONTFORK (what ibv_fork_init does) can mark a 4 KiB range
 * of the mapping (it cannot split a hugetlb mapping).
 *
 *   forkpin FILE     exit 0: coherent; 1: a check failed; 2: setup failed
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
#include <sys/wait.h>
#include <unistd.h>

#define REG 4096

static int fixed_io(struct io_uring *ring, int fd, char *buf, size_t len, bool read)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int r;

	if (read)
		io_uring_prep_read_fixed(sqe, fd, buf, len, 0, 0);
	else
		io_uring_prep_write_fixed(sqe, fd, buf, len, 0, 0);
	r = io_uring_submit_and_wait(ring, 1);
	if (r < 0)
		return r;
	r = io_uring_peek_cqe(ring, &cqe);
	if (r)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

static bool all(const char *p, int c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)c)
			return false;
	return true;
}

int main(int argc, char **argv)
{
	const size_t align = 1ul << 30;
	struct io_uring ring;
	struct stat sb;
	char *area, *p, tmp[REG];
	int fd, pfd[2], st, r, bad = 0;
	size_t len;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < 3 * REG) {
		fprintf(stderr, "%s: cannot open, or smaller than 12 KiB\n", argv[1]);
		return 2;
	}
	len = sb.st_size;
	area = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	p = (char *)(((unsigned long)area + align - 1) & ~(align - 1));
	p = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	memset(p, 0, 3 * REG);
	r = io_uring_queue_init(4, &ring, 0);
	if (!r) {
		struct iovec iov = { p, len };

		r = io_uring_register_buffers(&ring, &iov, 1);
	}
	if (r) {
		printf("pin: %s\n", strerror(-r));
		return 2;
	}
	printf("pin: ok (%zu bytes)\n", len);

	/* 1. child (forked after the pin) writes region 1 with the CPU */
	pid = fork();
	if (pid == 0) {
		memset(p, 'c', REG);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	printf("child CPU write seen by parent: %s\n", all(p, 'c', REG) ? "yes" : "NO");
	bad |= !all(p, 'c', REG);

	/* 2. parent CPU write after the fork; the pin reads it back (WRITE_FIXED to a pipe) */
	memset(p + REG, 'p', REG);
	if (pipe(pfd) || fixed_io(&ring, pfd[1], p + REG, REG, false) != REG ||
	    read(pfd[0], tmp, REG) != REG) {
		printf("pin read-back: failed\n");
		return 2;
	}
	printf("parent CPU write after fork seen through the pin: %s\n",
	       all(tmp, 'p', REG) ? "yes" : "NO (copy-on-write split the pin)");
	bad |= !all(tmp, 'p', REG);

	/* 3. a write through the pin (as by DMA), seen by the parent and a new child */
	memset(tmp, 'k', REG);
	if (write(pfd[1], tmp, REG) != REG ||
	    fixed_io(&ring, pfd[0], p + 2 * REG, REG, true) != REG) {
		printf("pin write: failed\n");
		return 2;
	}
	printf("write through the pin seen by parent: %s\n",
	       all(p + 2 * REG, 'k', REG) ? "yes" : "NO");
	bad |= !all(p + 2 * REG, 'k', REG);
	pid = fork();
	if (pid == 0)
		_exit(all(p + 2 * REG, 'k', REG) && all(p, 'c', REG) ? 0 : 1);
	waitpid(pid, &st, 0);
	printf("write through the pin seen by a child: %s\n",
	       WIFEXITED(st) && !WEXITSTATUS(st) ? "yes" : "NO");
	bad |= !(WIFEXITED(st) && !WEXITSTATUS(st));

	/* ibv_fork_init's MADV_DONTFORK on a 4 KiB range: splits thp, not hugetlb */
	r = madvise(p + REG, REG, MADV_DONTFORK);
	printf("MADV_DONTFORK on 4 KiB of the mapping: %s\n", r ? strerror(errno) : "ok");
	if (!r)
		madvise(p + REG, REG, MADV_DOFORK);
	if (len >= 2 << 20) {
		r = madvise(p, 2 << 20, MADV_DONTFORK);
		printf("MADV_DONTFORK on an aligned 2 MiB: %s\n", r ? strerror(errno) : "ok");
		if (!r)
			madvise(p, 2 << 20, MADV_DOFORK);
	}
	if (msync(p, len, MS_SYNC))
		perror("msync");
	fsync(fd);
	printf("%s\n", bad ? "FAIL" : "coherent");
	return bad;
}
