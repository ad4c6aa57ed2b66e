// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/commit.c - the real commit (commit.c's scan, snapshot, io_uring writes and
 * fdatasync through staging_create/commit_file, no model of it): every chunk_size
 * against every io_size, fdatasync of size changes and hole punches, pages the kernel
 * dropped from staging, random writes/resizes checked against the backing file, change
 * detection by content, and a writer racing the commits' snapshots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"

#include "fixture.h"

static int setup(void **state)
{
	conf_defaults(&config);
	set("uring_depth", "4");
	set("staging_budget", "1G");
	set("log_level", "error");
	fixture_start("commit");
	return 0;
}

static int teardown(void **state)
{
	return fixture_stop();
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + seed + i / 4096);
}

static int backing_fd(const char *name, int flags)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CLOEXEC, 0644);
}

static struct inode *make_file(const char *name, size_t size, unsigned seed)
{
	unsigned char *buf = calloc(1, size + 1);
	struct inode *ino;

	fill_pattern(buf, size, seed);
	ino = fixture_file(name, buf, size);
	free(buf);
	return ino;
}

static struct staged *stage(struct inode *ino)
{
	struct staged *st;

	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	return st;
}

/* Drop @st (committed and idle) and forget its inode. */
static void unstage(struct inode *ino, struct staged *st)
{
	assert_int_equal(commit_file(st), 0);
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
	inode_forget(ino, 1);
}

/* Staging and backing file hold the same bytes and size. */
static void assert_same(struct staged *st, const char *name)
{
	struct stat a, b;
	int fd = backing_fd(name, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(st->memfd, &a), 0);
	assert_int_equal(fstat(fd, &b), 0);
	if (a.st_size != b.st_size)
		fail_msg("%s: staging has %jd bytes, backing %jd", name, (intmax_t)a.st_size,
			 (intmax_t)b.st_size);
	char *x = malloc(a.st_size + 1), *y = malloc(a.st_size + 1);

	assert_int_equal(pread(st->memfd, x, a.st_size, 0), a.st_size);
	assert_int_equal(pread(fd, y, a.st_size, 0), a.st_size);
	if (memcmp(x, y, a.st_size)) {
		for (off_t i = 0; i < a.st_size; i++)
			if (x[i] != y[i])
				fail_msg("%s: byte %jd differs: staging %d backing %d", name,
					 (intmax_t)i, x[i], y[i]);
	}
	free(x);
	free(y);
	close(fd);
}

/*
 * Commits with every chunk_size (4K..64M) against io_size values below, equal to and
 * above it: a bounce slot must hold a whole number of chunks (chunk_size > io_size used
 * to fail every commit with EFAULT, or write past the bounce buffer).
 */
static void test_chunk_io_matrix(void **state)
{
	static const char *chunks[] = { "4K", "64K", "1M", "4M", "64M" };
	static const char *ios[] = { "64K", "2M", "64M" };
	unsigned char w[8192];

	for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
		for (size_t i = 0; i < ARRAY_SIZE(ios); i++) {
			struct inode *ino;
			struct staged *st;
			uint64_t cs, io, size;

			set("chunk_size", chunks[c]);
			set("io_size", ios[i]);
			flusher_shutdown();	/* drop the pooled contexts of the last sizes */
			commit_exit();
			cs = cfg->chunk_size;
			io = cfg->io_size;
			size = MIN(MAX(2 * cs, 3 * io), 2 * cs + (8 << 20)) + 777;
			ino = make_file("m", size, (unsigned)(c * 16 + i));
			st = stage(ino);
			/* A write in the first, a middle and the last chunk, and at a slot edge. */
			fill_pattern(w, sizeof(w), 200 + i);
			assert_int_equal(pwrite(st->memfd, w, 100, 5), 100);
			assert_int_equal(pwrite(st->memfd, w, sizeof(w), cs - 4096), sizeof(w));
			assert_int_equal(pwrite(st->memfd, w, 4000, MIN(io, size - 4000)), 4000);
			assert_int_equal(pwrite(st->memfd, w, 10, size - 10), 10);
			if (commit_file(st))
				fail_msg("commit chunk_size=%s io_size=%s failed", chunks[c], ios[i]);
			assert_same(st, "m");
			assert_false(commit_is_dirty(st));
			/* Growth past EOF in the middle of a chunk. */
			assert_int_equal(pwrite(st->memfd, w, 3000, size + cs / 2 + 1), 3000);
			assert_int_equal(commit_file(st), 0);
			assert_same(st, "m");
			unstage(ino, st);
		}
	}
	set("chunk_size", "64K");
	set("io_size", "2M");
	flusher_shutdown();
	commit_exit();
}

/* A truncate, punch or zero range is fdatasynced by the next commit (stats.syncs). */
static void test_size_changes_synced(void **state)
{
	struct inode *ino = make_file("s", 1 << 20, 3);
	struct staged *st = stage(ino);
	uint64_t syncs = st->stats.syncs;

	assert_int_equal(commit_file(st), 0);	/* nothing changed: no fdatasync */
	assert_int_equal(st->stats.syncs, syncs);
	assert_int_equal(staging_truncate(st, 300000), 0);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, ++syncs);
	assert_false(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, syncs);
	assert_int_equal(staging_truncate(st, 500000), 0);	/* growth too */
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, ++syncs);
	assert_int_equal(staging_fallocate(st, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   0, 128 << 10), 0);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, ++syncs);
	assert_int_equal(staging_fallocate(st, FALLOC_FL_ZERO_RANGE, 4096, 8192), 0);
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, ++syncs);
	assert_int_equal(staging_fallocate(st, 0, 600000, 4096), 0);	/* preallocation */
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(st->stats.syncs, ++syncs);
	assert_same(st, "s");
	unstage(ino, st);
}

/*
 * A page the kernel dropped from staging (here punched behind rdmafs's back) reads as
 * zeros: the commit must not write them over the committed data. It fails with EIO, the
 * backing file keeps its bytes, the loss is counted, and it stays so until a truncate
 * cuts the lost range off.
 */
static void test_lost_page(void **state)
{
	size_t size = 1 << 20;
	struct inode *ino = make_file("l", size, 9);
	struct staged *st = stage(ino);
	unsigned char *before = malloc(size), *after = malloc(size);
	int fd = backing_fd("l", O_RDONLY);

	assert_int_equal(pread(fd, before, size, 0), (ssize_t)size);
	assert_int_equal(pwrite(st->memfd, "new", 3, 0), 3);	/* a real change too */
	assert_int_equal(fallocate(st->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   512 << 10, 8192), 0);
	assert_int_equal(commit_file(st), -EIO);
	assert_int_equal(st->stats.lost_pages, 2);
	assert_int_equal(st->lost_from, 512 << 10);
	assert_int_equal(st->pending_error, -EIO);
	assert_int_equal(pread(fd, after, size, 0), (ssize_t)size);
	assert_memory_equal(before + (512 << 10), after + (512 << 10), 8192);
	/* The hole filled again by a read fault (zeros, clean): still refused. */
	void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, st->memfd, 0);

	assert_true(m != MAP_FAILED);
	assert_int_equal(((volatile char *)m)[512 << 10], 0);
	munmap(m, size);
	assert_int_equal(commit_file(st), -EIO);
	assert_int_equal(pread(fd, after, size, 0), (ssize_t)size);
	assert_memory_equal(before + (512 << 10), after + (512 << 10), 8192);
	/* Cut off: the rest commits. */
	assert_int_equal(staging_truncate(st, 512 << 10), 0);
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "l");
	close(fd);
	free(before);
	free(after);
	unstage(ino, st);
}

/* Growth by truncate and punched ranges are allocated: no hole the kernel could fill. */
static void test_no_holes(void **state)
{
	struct inode *ino = make_file("h", 10000, 4);
	struct staged *st = stage(ino);

	assert_int_equal(staging_truncate(st, 4 << 20), 0);
	assert_int_equal(lseek(st->memfd, 0, SEEK_HOLE), 4 << 20);
	assert_int_equal(staging_fallocate(st, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   1 << 20, 1 << 20), 0);
	assert_int_equal(lseek(st->memfd, 0, SEEK_HOLE), 4 << 20);
	/* Growth the daemon did not make (a passthrough write past EOF) once noticed. */
	assert_int_equal(pwrite(st->memfd, "z", 1, (8 << 20) - 1), 1);
	assert_true(lseek(st->memfd, 0, SEEK_HOLE) < (8 << 20));
	staging_watch_growth(st);
	assert_int_equal(lseek(st->memfd, 0, SEEK_HOLE), 8 << 20);
	assert_int_equal(st->stats.lost_pages, 0);
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "h");
	unstage(ino, st);
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd_below(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : 0;
}

/* Random writes (some past EOF), truncates and punches, each commit checked byte for byte. */
static void test_random(void **state)
{
	static const char *chunks[] = { "4K", "16K", "64K" };
	unsigned char w[20000];

	for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
		set("chunk_size", chunks[c]);
		set("io_size", "64K");
		flusher_shutdown();
		commit_exit();
		struct inode *ino = make_file("r", rnd_below(300000), (unsigned)c);
		struct staged *st = stage(ino);

		for (int it = 0; it < 60; it++) {
			uint64_t size, off, len;

			assert_int_equal(staging_size(st, &size), 0);
			switch (rnd_below(6)) {
			case 0:
				assert_int_equal(staging_truncate(st, rnd_below(600000)), 0);
				break;
			case 1:
				off = rnd_below(size + 1);
				len = rnd_below(100000) + 1;
				assert_int_equal(staging_fallocate(st, FALLOC_FL_PUNCH_HOLE |
							FALLOC_FL_KEEP_SIZE, off, len), 0);
				break;
			default:
				len = rnd_below(sizeof(w)) + 1;
				off = rnd_below(size + 50000);
				fill_pattern(w, len, it);
				assert_int_equal(pwrite(st->memfd, w, len, off), (ssize_t)len);
			}
			if (rnd_below(3) == 0) {
				assert_int_equal(commit_file(st), 0);
				assert_same(st, "r");
				assert_false(commit_is_dirty(st));
			}
		}
		assert_int_equal(commit_file(st), 0);
		assert_same(st, "r");
		unstage(ino, st);
	}
}

/* Detection is by content: a write that restores the committed bytes leaves it clean. */
static void test_content_not_writes(void **state)
{
	set("chunk_size", "4K");
	flusher_shutdown();
	commit_exit();
	struct inode *ino = make_file("c", 3 * 4096 + 100, 1);
	struct staged *st = stage(ino);
	unsigned char old, x;

	assert_int_equal(commit_file(st), 0);
	assert_false(commit_is_dirty(st));
	assert_int_equal(pread(st->memfd, &old, 1, 5000), 1);
	x = old ^ 0xff;
	assert_int_equal(pwrite(st->memfd, &x, 1, 5000), 1);
	assert_true(commit_is_dirty(st));
	assert_int_equal(pwrite(st->memfd, &old, 1, 5000), 1);
	assert_false(commit_is_dirty(st));
	/* The partial last chunk too; and growth by one byte is a change. */
	assert_int_equal(pwrite(st->memfd, &x, 1, 3 * 4096 + 99), 1);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "c");
	assert_int_equal(pwrite(st->memfd, &x, 1, 3 * 4096 + 100), 1);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "c");
	assert_false(commit_is_dirty(st));
	unstage(ino, st);
}

/* A "device" that keeps storing into the staging memory while commits run. */
struct racer {
	unsigned char *map;
	size_t size;
	volatile bool stop;
	unsigned long stores;
};

static void *race_stores(void *arg)
{
	struct racer *r = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	while (!r->stop) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r->map[x % r->size] = (unsigned char)(x >> 56);
		r->stores++;
	}
	return NULL;
}

/*
 * Commits whose snapshots race further stores (what a pinned NIC does): a chunk stored
 * into after its snapshot is found dirty again by the next commit, never lost. After the
 * stores stop, one commit makes the backing file equal staging and nothing is dirty.
 */
static void test_stores_race_commits(void **state)
{
	size_t size = 4 << 20;

	set("chunk_size", "4K");
	set("io_size", "64K");
	flusher_shutdown();
	commit_exit();
	struct inode *ino = make_file("race", size, 3);
	struct staged *st = stage(ino);
	struct racer r = { .size = size };
	pthread_t t;
	unsigned commits = 0;

	r.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
	assert_true(r.map != MAP_FAILED);
	assert_int_equal(pthread_create(&t, NULL, race_stores, &r), 0);
	for (; commits < 20; commits++)
		assert_int_equal(commit_file(st), 0);
	r.stop = true;
	pthread_join(t, NULL);
	assert_true(r.stores > 0);
	assert_int_equal(commit_file(st), 0);
	assert_false(commit_is_dirty(st));
	assert_same(st, "race");
	munmap(r.map, size);
	unstage(ino, st);
}

/* Shrinks a staging memfd behind the daemon after a random short delay. */
struct shrinker {
	int fd;
	off_t to;
	unsigned delay_us;
	volatile bool done;
};

static void *shrink_later(void *arg)
{
	struct shrinker *k = arg;

	usleep(k->delay_us);
	assert_int_equal(ftruncate(k->fd, k->to), 0);
	k->done = true;
	return NULL;
}

/*
 * Scans hash staging in place through the daemon's view once it is mapped (the commits
 * before warm it). A holder of a writable map fd may shrink the memfd while a scan hashes
 * it: a load past the new end raises SIGBUS, which must cost that scan an error, never
 * the daemon. Afterwards the view is mapped again and commits find every change.
 */
static void test_view_shrunk_under_scan(void **state)
{
	size_t size = 8 << 20;

	set("chunk_size", "64K");
	set("io_size", "2M");
	flusher_shutdown();
	commit_exit();
	commit_init();	/* over the SIGBUS handler cmocka sets for each test */
	for (unsigned round = 0; round < 12; round++) {
		char name[32];

		snprintf(name, sizeof(name), "shrink%u", round);
		struct inode *ino = make_file(name, size, round);
		struct staged *st = stage(ino);
		struct shrinker k = { .fd = st->memfd, .to = (1 << 20) + round * 4096 + 5,
				      .delay_us = round * 150 };
		unsigned char x = 0x5a;
		pthread_t t;

		assert_int_equal(commit_file(st), 0);	/* maps the view */
		assert_false(commit_is_dirty(st));	/* in place, found clean */
		assert_int_equal(pthread_create(&t, NULL, shrink_later, &k), 0);
		while (!k.done)
			(void)commit_dirty_bytes(st);	/* 0, a count or -EIO: no crash */
		pthread_join(t, NULL);
		(void)commit_dirty_bytes(st);
		/* A change in the kept part is found (in place again) and committed. */
		assert_int_equal(pwrite(st->memfd, &x, 1, 4096 * 3 + round), 1);
		assert_int_equal(commit_file(st), 0);
		assert_same(st, name);
		assert_false(commit_is_dirty(st));
		assert_int_equal(pwrite(st->memfd, &x, 1, 70000 + round), 1);
		assert_true(commit_is_dirty(st));
		assert_int_equal(commit_file(st), 0);
		assert_same(st, name);
		unstage(ino, st);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_io_matrix),
		cmocka_unit_test(test_size_changes_synced),
		cmocka_unit_test(test_lost_page),
		cmocka_unit_test(test_no_holes),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_content_not_writes),
		cmocka_unit_test(test_stores_race_commits),
		cmocka_unit_test(test_view_shrunk_under_scan),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
