// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * crashload.c - the workload of the crash-consistency harness (tests/vm/guest/crash_*):
 * drives files on an rdmafs mount with write(2), stores through a mapping, kernel writes
 * through a long-term pin (io_uring_register_buffers + IORING_OP_READ_FIXED from a pipe:
 * the kernel writes the pages as a device would), truncate, punch hole and rename, and
 * makes durability points: fsync, fdatasync, `rdmafsctl flush FILE`, `rdmafsctl flush
 * --all`, fsync of the directory after a rename. Right after each durability point returns it runs the
 * mark command (`dmsetup message LOGDEV 0 mark NAME`), then journals the mark.
 *
 *   rdmafs-crashload --dir MNT --journal FILE --mark-cmd CMD --ctl RDMAFSCTL
 *                    [--seed N] [--ops N] [--files N] [--blocks N] [--drop-caches]
 *                    [--cut-at MARKNO --cut-cmd CMD]
 *
 * Every write is whole 4 KiB blocks of pattern data keyed by (file, block, generation),
 * a generation never reused: the checker (tests/vm/crash_check.py) tells old, new, zero
 * and garbage apart. The journal has one line per model change, in order:
 *   file ID NAME | size ID BLOCKS | write ID BLOCK GEN | zero ID BLOCK | rename ID NAME
 *   sync ID | syncall | dirsync | mark NAME | cut | drop_caches
 * "sync" lines follow a durability point that returned 0 (a failed one fails the run).
 * --drop-caches: now and then drop the page cache (as reclaim may at any time).
 * --cut-at K --cut-cmd CMD: after mark K (or the last mark, if there are fewer), run CMD
 * (the power cut) and journal "cut".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096u
#define MAX_FILES 16

struct file {
	int fd;
	unsigned blocks;	/* size in blocks (always whole blocks) */
	unsigned renames;
	char name[64];
};

static const char *dir, *mark_cmd, *cut_cmd, *ctl;
static FILE *journal;
static struct file files[MAX_FILES];
static unsigned nfiles = 4, maxblocks = 64, nops = 40, gen, marks, cut_at;
static int drop_caches;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t bytes_written;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "crashload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned below(unsigned n)
{
	return n ? rnd() % n : 0;
}

static void jr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(journal, fmt, ap);
	va_end(ap);
	fputc('\n', journal);
	fflush(journal);
}

/* The pattern of block @b of file @f at generation @g: 128 records of 32 bytes. */
static void fill_block(char *p, unsigned f, unsigned b, unsigned g)
{
	char rec[33];

	for (unsigned r = 0; r < BLK / 32; r++) {
		snprintf(rec, sizeof(rec), "F%02u B%05u G%06u R%03u crash!!\n", f % 100,
			 b % 100000, g % 1000000, r % 1000);
		memcpy(p + r * 32, rec, 32);
	}
}

/* Fills @n blocks from @b of file @f with a new generation each; journals the writes. */
static char *pattern(unsigned f, unsigned b, unsigned n)
{
	char *buf = aligned_alloc(BLK, (size_t)n * BLK);

	if (!buf)
		die("out of memory");
	for (unsigned i = 0; i < n; i++)
		fill_block(buf + (size_t)i * BLK, f, b + i, ++gen);
	return buf;
}

static void journal_writes(unsigned f, unsigned b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		jr("write %u %u %u", f, b + i, gen - n + 1 + i);
	bytes_written += (uint64_t)n * BLK;
}

static void path_of(unsigned f, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", dir, files[f].name);
}

static void set_size(unsigned f, unsigned blocks)
{
	if (ftruncate(files[f].fd, (off_t)blocks * BLK) < 0)
		die("ftruncate %s to %u blocks: %s", files[f].name, blocks, strerror(errno));
	files[f].blocks = blocks;
	jr("size %u %u", f, blocks);
}

static void op_pwrite(unsigned f, unsigned b, unsigned n)
{
	char *buf = pattern(f, b, n);

	if (pwrite(files[f].fd, buf, (size_t)n * BLK, (off_t)b * BLK) != (ssize_t)(n * BLK))
		die("pwrite %s block %u: %s", files[f].name, b, strerror(errno));
	free(buf);
	if (b + n > files[f].blocks) {
		files[f].blocks = b + n;
		jr("size %u %u", f, b + n);
	}
	journal_writes(f, b, n);
}

static char *map(unsigned f, unsigned b, unsigned n, int flags)
{
	char *p;

	if (b + n > files[f].blocks)
		set_size(f, b + n);
	p = mmap(NULL, (size_t)n * BLK, PROT_READ | PROT_WRITE, MAP_SHARED | flags, files[f].fd,
		 (off_t)b * BLK);
	if (p == MAP_FAILED)
		die("mmap %s block %u: %s", files[f].name, b, strerror(errno));
	return p;
}

static void op_mmap(unsigned f, unsigned b, unsigned n)
{
	char *p = map(f, b, n, 0), *buf = pattern(f, b, n);

	memcpy(p, buf, (size_t)n * BLK);
	free(buf);
	munmap(p, (size_t)n * BLK);
	journal_writes(f, b, n);
}

/*
 * The kernel writes the mapped pages through a long-term pin, as an RDMA NIC would: the
 * pages were faulted in by reads (MAP_POPULATE) and no page table is dirtied by the write.
 */
static void op_pin(unsigned f, unsigned b, unsigned n)
{
	size_t len = (size_t)n * BLK, done = 0;
	char *p = map(f, b, n, MAP_POPULATE), *buf = pattern(f, b, n);
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	struct iovec iov = { p, len };
	int pfd[2], r;

	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0)
		die("io_uring_queue_init: %s", strerror(-r));
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0)
		die("io_uring_register_buffers of %s: %s", files[f].name, strerror(-r));
	if (pipe(pfd) < 0)
		die("pipe: %s", strerror(errno));
	fcntl(pfd[1], F_SETPIPE_SZ, (int)len);
	while (done < len) {
		size_t chunk = len - done < 65536 ? len - done : 65536;
		struct io_uring_sqe *sqe;

		if (write(pfd[1], buf + done, chunk) != (ssize_t)chunk)
			die("write to pipe: %s", strerror(errno));
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read_fixed(sqe, pfd[0], p + done, chunk, 0, 0);
		io_uring_submit(&ring);
		r = io_uring_wait_cqe(&ring, &cqe);
		if (r < 0)
			die("io_uring_wait_cqe: %s", strerror(-r));
		if (cqe->res != (int)chunk)
			die("READ_FIXED into %s: %d", files[f].name, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		done += chunk;
	}
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, len);
	free(buf);
	journal_writes(f, b, n);
}

static void op_truncate(unsigned f, unsigned blocks)
{
	unsigned old = files[f].blocks;

	set_size(f, blocks);
	for (unsigned b = blocks; b < old; b++)
		jr("zero %u %u", f, b);
}

static void op_punch(unsigned f, unsigned b, unsigned n)
{
	if (fallocate(files[f].fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)b * BLK,
		      (off_t)n * BLK) < 0)
		die("punch %s blocks %u+%u: %s", files[f].name, b, n, strerror(errno));
	for (unsigned i = 0; i < n; i++)
		jr("zero %u %u", f, b + i);
}

static void mark(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s m%03u", mark_cmd, marks);
	if (system(cmd))
		die("mark command failed: %s", cmd);
	jr("mark m%03u", marks);
	if (cut_cmd && marks == cut_at) {
		if (system(cut_cmd))
			die("cut command failed: %s", cut_cmd);
		jr("cut");
	}
	marks++;
}

static void sync_file(unsigned f, int how)
{
	char path[256], cmd[600];

	path_of(f, path, sizeof(path));
	if (how == 0) {
		if (fsync(files[f].fd) < 0)
			die("fsync %s: %s", path, strerror(errno));
	} else if (how == 1) {
		if (fdatasync(files[f].fd) < 0)
			die("fdatasync %s: %s", path, strerror(errno));
	} else {
		snprintf(cmd, sizeof(cmd), "%s flush %s >/dev/null", ctl, path);
		if (system(cmd))
			die("%s failed", cmd);
	}
	jr("sync %u", f);
	mark();
}

static void sync_all(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "%s flush --all %s >/dev/null", ctl, dir);
	if (system(cmd))
		die("%s failed", cmd);
	jr("syncall");
	mark();
}

static void sync_dir(void)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd) < 0)
		die("fsync of the directory %s: %s", dir, strerror(errno));
	close(fd);
	jr("dirsync");
}

static void op_rename(unsigned f)
{
	char from[256], to[256];

	path_of(f, from, sizeof(from));
	snprintf(files[f].name, sizeof(files[f].name), "f%02u.r%u", f, ++files[f].renames);
	path_of(f, to, sizeof(to));
	if (rename(from, to) < 0)
		die("rename %s %s: %s", from, to, strerror(errno));
	jr("rename %u %s", f, files[f].name);
}

static void op_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd < 0 || write(fd, "3", 1) != 1)
		die("drop_caches: %s", strerror(errno));
	close(fd);
	jr("drop_caches");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", 1, NULL, 'd' },	{ "journal", 1, NULL, 'j' },
		{ "mark-cmd", 1, NULL, 'm' },	{ "ctl", 1, NULL, 'c' },
		{ "seed", 1, NULL, 's' },	{ "ops", 1, NULL, 'o' },
		{ "files", 1, NULL, 'f' },	{ "blocks", 1, NULL, 'b' },
		{ "drop-caches", 0, NULL, 'D' },	{ "cut-at", 1, NULL, 'k' },
		{ "cut-cmd", 1, NULL, 'K' },	{}
	};
	const char *jpath = NULL;
	unsigned counts[8] = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'j': jpath = optarg; break;
		case 'm': mark_cmd = optarg; break;
		case 'c': ctl = optarg; break;
		case 's': rng = strtoull(optarg, NULL, 0) * 0x9e3779b97f4a7c15ull | 1; break;
		case 'o': nops = atoi(optarg); break;
		case 'f': nfiles = atoi(optarg); break;
		case 'b': maxblocks = atoi(optarg); break;
		case 'D': drop_caches = 1; break;
		case 'k': cut_at = atoi(optarg); break;
		case 'K': cut_cmd = optarg; break;
		default: return 2;
		}
	}
	if (!dir || !jpath || !mark_cmd || !ctl || !nfiles || nfiles > MAX_FILES ||
	    maxblocks < 8 || maxblocks > 99999) {
		fprintf(stderr, "usage: %s --dir MNT --journal FILE --mark-cmd CMD --ctl RDMAFSCTL"
			" [--seed N] [--ops N] [--files N<=16] [--blocks N>=8] [--drop-caches]"
			" [--cut-at K --cut-cmd CMD]\n", argv[0]);
		return 2;
	}
	journal = fopen(jpath, "w");
	if (!journal)
		die("%s: %s", jpath, strerror(errno));

	/* The files, empty and durable with their names: mark m000. */
	for (unsigned f = 0; f < nfiles; f++) {
		char path[256];

		snprintf(files[f].name, sizeof(files[f].name), "f%02u", f);
		path_of(f, path, sizeof(path));
		files[f].fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
		if (files[f].fd < 0)
			die("create %s: %s", path, strerror(errno));
		jr("file %u %s", f, files[f].name);
		if (fsync(files[f].fd) < 0)
			die("fsync %s: %s", path, strerror(errno));
		jr("sync %u", f);
	}
	sync_dir();
	mark();

	for (unsigned i = 0; i < nops; i++) {
		unsigned f = below(nfiles), kind = below(100), n = 1 + below(8);
		unsigned b = below(maxblocks - n + 1);

		if (kind < 25) {
			op_pwrite(f, b, n);
			counts[0]++;
		} else if (kind < 45) {
			op_mmap(f, b, n);
			counts[1]++;
		} else if (kind < 65) {
			op_pin(f, b, n);
			counts[2]++;
			if (drop_caches && below(2)) {
				op_drop_caches();
				counts[7]++;
			}
		} else if (kind < 75) {
			op_truncate(f, below(maxblocks));
			counts[3]++;
		} else if (kind < 85) {
			if (!files[f].blocks)
				continue;
			b = below(files[f].blocks);
			n = 1 + below(files[f].blocks - b);
			op_punch(f, b, n > 8 ? 8 : n);
			counts[4]++;
		} else if (kind < 90) {
			op_rename(f);
			sync_dir();
			mark();
			counts[5]++;
			continue;
		} else {
			sync_all();
			counts[6]++;
			continue;
		}
		/* About half the changes end in a durability point of the file changed. */
		if (below(2))
			sync_file(f, below(4) % 3);	/* fsync twice as often */
	}
	/* The last mark: everything durable; the power cut here if not made yet. */
	if (cut_cmd && cut_at >= marks)
		cut_at = marks;
	sync_all();
	for (unsigned f = 0; f < nfiles; f++)
		close(files[f].fd);
	printf("crashload: %u ops (pwrite %u, mmap %u, pin %u, truncate %u, punch %u, "
	       "rename %u, flush --all %u, drop_caches %u), %u marks, %" PRIu64
	       " bytes written, %u generations\n", nops, counts[0], counts[1], counts[2],
	       counts[3], counts[4], counts[5], counts[6], counts[7], marks, bytes_written, gen);
	fclose(journal);
	return 0;
}
