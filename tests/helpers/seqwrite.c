// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-seqwrite - a write(2) writer whose final content is predictable from one number:
 * record seq (1, 2, ...) goes to block (seq - 1) % BLOCKS, each block holds a pattern
 * derived from its seq. Used to prove that nothing written is lost when the daemon dies
 * (tests/integration/restart_staged.sh).
 *
 *   rdmafs-seqwrite [--blocks N] [--bs BYTES] [--fsync-every K] FILE
 *	writes the first pass (N records), prints "ready", keeps writing until SIGTERM or
 *	SIGINT, then fsyncs and prints "seq=S fsyncs=F". Any error of write or fsync
 *	(ENOTCONN, ECONNABORTED, EIO, a short write) is printed and ends it with status 1.
 *   rdmafs-seqwrite --verify --seq S [--blocks N] [--bs BYTES] FILE
 *	checks that FILE holds exactly what S records leave; prints "verified=BYTES" (exit
 *	0) or the first difference (exit 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SIGTERM and SIGINT are blocked and looked for between writes: a signal must not
 * interrupt a FUSE request (an fsync waiting through a blackout would fail with EINTR). */
static bool stop_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 &&
	       (sigismember(&set, SIGTERM) || sigismember(&set, SIGINT));
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The bytes record @seq writes (its whole block). */
static void fill(uint64_t *buf, size_t bs, uint64_t seq)
{
	for (size_t i = 0; i < bs / 8; i++)
		buf[i] = mix(seq << 24 ^ i);
	buf[0] = seq;	/* readable in a hex dump */
}

/* The seq block @i holds after @s records, 0 if none wrote it. */
static uint64_t seq_of_block(uint64_t i, uint64_t s, uint64_t n)
{
	if (s < i + 1)
		return 0;
	return i + 1 + (s - (i + 1)) / n * n;
}

static int verify(const char *path, uint64_t s, uint64_t n, size_t bs)
{
	uint64_t *want = malloc(bs), *got = malloc(bs), blocks = s < n ? s : n;
	struct stat sb;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb) < 0 || !want || !got) {
		fprintf(stderr, "seqwrite: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((uint64_t)sb.st_size != blocks * bs) {
		fprintf(stderr, "seqwrite: %s: size %" PRIu64 ", expected %" PRIu64 "\n", path,
			(uint64_t)sb.st_size, blocks * bs);
		return 1;
	}
	for (uint64_t i = 0; i < blocks; i++) {
		uint64_t q = seq_of_block(i, s, n);
		ssize_t r = pread(fd, got, bs, i * bs);

		fill(want, bs, q);
		if (r != (ssize_t)bs) {
			fprintf(stderr, "seqwrite: %s: short read of block %" PRIu64 "\n", path, i);
			return 1;
		}
		if (memcmp(want, got, bs)) {
			fprintf(stderr, "seqwrite: %s: block %" PRIu64 " (offset %" PRIu64 ") holds "
				"record %" PRIu64 "'s head, expected record %" PRIu64 "\n", path, i,
				i * bs, got[0], q);
			return 1;
		}
	}
	printf("verified=%" PRIu64 "\n", blocks * bs);
	free(want);
	free(got);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "blocks", required_argument, NULL, 'n' },
		{ "bs", required_argument, NULL, 'b' },
		{ "fsync-every", required_argument, NULL, 'f' },
		{ "verify", no_argument, NULL, 'v' },
		{ "seq", required_argument, NULL, 's' },
		{ 0 }
	};
	uint64_t n = 256, every = 64, s = 0, seq, fsyncs = 0;
	size_t bs = 65536;
	bool check = false;
	sigset_t set;
	uint64_t *buf;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': n = strtoull(optarg, NULL, 0); break;
		case 'b': bs = strtoull(optarg, NULL, 0); break;
		case 'f': every = strtoull(optarg, NULL, 0); break;
		case 'v': check = true; break;
		case 's': s = strtoull(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (optind + 1 != argc || !n || bs < 8 || bs % 8) {
		fprintf(stderr, "usage: rdmafs-seqwrite [--verify --seq S] [--blocks N] [--bs B] "
			"[--fsync-every K] FILE\n");
		return 2;
	}
	if (check)
		return verify(argv[optind], s, n, bs);
	buf = malloc(bs);
	fd = open(argv[optind], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!buf || fd < 0) {
		fprintf(stderr, "seqwrite: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (seq = 1; seq <= n || !stop_pending(); seq++) {
		ssize_t r;

		fill(buf, bs, seq);
		r = pwrite(fd, buf, bs, (seq - 1) % n * bs);
		if (r != (ssize_t)bs) {
			fprintf(stderr, "seqwrite: write of record %" PRIu64 ": %s\n", seq,
				r < 0 ? strerror(errno) : "short");
			return 1;
		}
		if (seq == n) {
			printf("ready\n");
			fflush(stdout);
		}
		if (every && seq % every == 0) {
			if (fsync(fd) < 0) {
				fprintf(stderr, "seqwrite: fsync after record %" PRIu64 ": %s\n",
					seq, strerror(errno));
				return 1;
			}
			fsyncs++;
		}
	}
	seq--;
	if (fsync(fd) < 0) {
		fprintf(stderr, "seqwrite: final fsync: %s\n", strerror(errno));
		return 1;
	}
	printf("seq=%" PRIu64 " fsyncs=%" PRIu64 "\n", seq, fsyncs + 1);
	free(buf);
	return close(fd) < 0;
}
