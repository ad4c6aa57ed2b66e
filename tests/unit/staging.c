// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/staging.c - inode and staging bookkeeping without a mount: the inode table's
 * counts, staging fill from a backing file, commits, truncate and fallocate applied to
 * staging and backing alike, the budget, sealing and release. Needs no root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"

#include "fixture.h"

static int setup(void **state)
{
	conf_defaults(&config);
	set("chunk_size", "4K");
	set("io_size", "64K");
	set("uring_depth", "4");
	set("staging_budget", "4M");
	set("log_level", "error");
	fixture_start("staging");
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

/* Create DIR/name with @size bytes of a pattern; returns its inode (one lookup). */
static struct inode *make_file(const char *name, size_t size, unsigned seed)
{
	unsigned char *buf = calloc(1, size + 1);
	struct inode *ino;

	fill_pattern(buf, size, seed);
	ino = fixture_file(name, buf, size);
	free(buf);
	return ino;
}

static void backing_path(const char *name, char *path)
{
	snprintf(path, 128, "%s/%s", dir, name);
}

/* Staging and backing file hold the same bytes and size. */
static void assert_same(struct staged *st, const char *name)
{
	char path[128];
	struct stat a, b;
	int fd;

	backing_path(name, path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(st->memfd, &a), 0);
	assert_int_equal(fstat(fd, &b), 0);
	if (a.st_size != b.st_size)
		fail_msg("%s: staging has %jd bytes, backing %jd", name, (intmax_t)a.st_size,
			 (intmax_t)b.st_size);
	char *x = malloc(a.st_size + 1), *y = malloc(a.st_size + 1);

	assert_int_equal(pread(st->memfd, x, a.st_size, 0), a.st_size);
	assert_int_equal(pread(fd, y, a.st_size, 0), a.st_size);
	for (off_t i = 0; i < a.st_size; i++)
		if (x[i] != y[i])
			fail_msg("%s: byte %jd differs: staging %d backing %d", name, (intmax_t)i,
				 x[i], y[i]);
	free(x);
	free(y);
	close(fd);
}

static void test_inode_table(void **state)
{
	struct inode *a = make_file("a", 10, 1), *b;
	struct stat sb;
	int fd;

	assert_int_equal(a->nlookup, 1);
	assert_int_equal(a->type, S_IFREG);
	/* A second lookup of the same object finds the same inode and closes the new fd. */
	fd = openat(inode_root()->fd, "a", O_PATH | O_CLOEXEC);
	assert_int_equal(fstat(fd, &sb), 0);
	b = inode_lookup_add(fd, &sb);
	assert_ptr_equal(a, b);
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_ptr_equal(inode_get(inode_fuse_ino(a)), a);
	assert_ptr_equal(inode_get(1), inode_root());
	assert_int_equal(inode_fuse_ino(inode_root()), 1);
	/* The root found by name is the root. */
	fd = open(dir, O_PATH | O_CLOEXEC);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_ptr_equal(inode_lookup_add(fd, &sb), inode_root());
	inode_forget(inode_root(), 1);
	/* A reference keeps a forgotten inode alive. */
	inode_ref(a);
	inode_forget(a, 5);
	assert_int_equal(a->nlookup, 0);
	assert_int_equal(a->nref, 1);
	fd = inode_fd(a);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	inode_fd_put(a);
	/* Without its cached fd the inode reopens the same object by file handle. */
	struct inode_fd_stats fs;

	inode_fd_stats(&fs);
	if (fs.handles) {
		inode_fd_reclaim();
		assert_int_equal(a->fd, -1);
		fd = inode_fd(a);
		assert_true(fd >= 0);
		assert_int_equal(fstat(fd, &sb), 0);
		assert_int_equal(sb.st_ino, a->src_ino);
		inode_fd_put(a);
		inode_fd_stats(&fs);
		assert_true(fs.opens >= 1);
	}
	inode_unref(a);	/* freed now (ASan would flag a use after this) */
}

static void test_stage_commit(void **state)
{
	size_t size = (1 << 20) + 777;	/* several io_size reads, a partial chunk */
	struct inode *ino = make_file("f", size, 3);
	struct staged *st;
	unsigned char *buf = malloc(size);

	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	assert_int_equal(st->size, size);
	assert_int_equal(st->committed_size, size);
	assert_int_equal(staging_bytes_used(), ALIGN_UP(size, 4096));
	assert_same(st, "f");
	assert_false(commit_is_dirty(st));

	/* Writes through passthrough land in the memfd. */
	fill_pattern(buf, 5000, 99);
	assert_int_equal(pwrite(st->memfd, buf, 5000, 300000), 5000);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_false(commit_is_dirty(st));
	assert_same(st, "f");
	assert_true(st->stats.committed_bytes >= 5000);
	assert_true(st->stats.committed_bytes <= 3 * 4096);
	assert_int_equal(st->stats.commits, 1);
	assert_int_equal(st->pending_error, 0);

	/* A write past EOF grows the memfd (the kernel does that): the commit notices. */
	assert_int_equal(pwrite(st->memfd, buf, 4000, size + 10000), 4000);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "f");
	assert_int_equal(st->committed_size, size + 14000);

	/* Truncate down to the middle of a chunk, then up: zeros, staging == backing. */
	assert_int_equal(staging_truncate(st, 123457), 0);
	assert_same(st, "f");
	/* (a partly cut chunk may be rewritten once: dirty is allowed, loss is not) */
	assert_int_equal(commit_file(st), 0);
	assert_false(commit_is_dirty(st));
	assert_int_equal(staging_truncate(st, 300001), 0);
	assert_same(st, "f");
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "f");
	assert_false(commit_is_dirty(st));
	assert_int_equal(pread(st->memfd, buf, 1000, 123457), 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(staging_bytes_used(), ALIGN_UP(300001, 4096));

	/* Punch a hole across chunk boundaries. */
	assert_int_equal(staging_fallocate(st, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   1000, 20000), 0);
	assert_same(st, "f");
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "f");
	assert_false(commit_is_dirty(st));
	assert_int_equal(pread(st->memfd, buf, 20000, 1000), 20000);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(buf[i], 0);
	/* Extend with fallocate. */
	assert_int_equal(staging_fallocate(st, 0, 290000, 20000), 0);
	assert_same(st, "f");
	uint64_t sz;

	assert_int_equal(staging_size(st, &sz), 0);
	assert_int_equal(sz, 310000);
	/* Over the budget (4M): refused, sizes unchanged. */
	assert_int_equal(staging_truncate(st, 8 << 20), -ENOSPC);
	assert_same(st, "f");
	assert_int_equal(staging_bytes_used(), ALIGN_UP(310000, 4096));

	/* Sealing fails while a writable mapping exists (an app's or a pin's). */
	void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);

	assert_true(map != MAP_FAILED);
	assert_false(staging_try_seal(st));
	munmap(map, 4096);
	assert_true(staging_try_seal(st));
	assert_true(st->sealed);
	/* A sealed file reopened for writing gets a writable copy. */
	assert_int_equal(staging_unseal(st), 0);
	assert_false(st->sealed);
	assert_same(st, "f");
	assert_int_equal(pwrite(st->memfd, "x", 1, 0), 1);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "f");

	/* Idle, sealed and clean: dropped, its budget returned, the inode freed later. */
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
	assert_null(ino->st);
	assert_int_equal(staging_bytes_used(), 0);
	inode_forget(ino, 1);
	free(buf);
}

static void test_budget(void **state)
{
	struct inode *big = make_file("big", 5 << 20, 1), *small = make_file("small", 8192, 2);
	struct staged *st = NULL, *st2;

	assert_int_equal(staging_create(big, &st), -ENOSPC);
	assert_null(big->st);
	assert_int_equal(staging_bytes_used(), 0);
	assert_int_equal(staging_create(small, &st2), 0);
	small->st = st2;
	assert_int_equal(staging_bytes_used(), 8192);
	/* An open file is not released, however idle its data. */
	small->nopen = 1;
	assert_false(staging_try_seal(st2));
	assert_false(budget_release_if_idle(st2));
	small->nopen = 0;
	/* A dirty file is not dropped even when sealed. */
	assert_int_equal(pwrite(st2->memfd, "y", 1, 5), 1);
	assert_true(staging_try_seal(st2));
	assert_false(budget_release_if_idle(st2));
	assert_int_equal(commit_file(st2), 0);
	assert_true(budget_release_if_idle(st2));
	assert_int_equal(staging_bytes_used(), 0);
	inode_forget(big, 1);
	inode_forget(small, 1);
}

/*
 * Daemon-served writes (budget_enforce=strict): growth is charged before it happens, a
 * write is cut short where the budget ends, the next one refused and counted; the hole
 * before a write past EOF is allocated (zeros, counted in alloc_size); commits see it all.
 */
static void test_write_budget(void **state)
{
	struct inode *ino = make_file("w", 8192, 5);
	struct staged *st;
	unsigned char *buf = malloc(4 << 20);
	uint64_t size;
	ssize_t n;

	fill_pattern(buf, 4 << 20, 11);
	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	ino->nopen = 1;		/* open: not evicted to make room */
	assert_int_equal(staging_write_begin(st, 0, 4096), 4096);	/* in place */
	/* 8 MiB from 8 KiB with a 4 MiB budget: cut short at the budget. */
	n = staging_write_begin(st, 8192, 8 << 20);
	assert_int_equal(n, (4 << 20) - 8192);
	assert_int_equal(pwrite(st->memfd, buf, n, 8192), n);
	staging_write_end(st, 8192, n);
	assert_int_equal(staging_bytes_used(), 4 << 20);
	assert_int_equal(st->alloc_size, 4 << 20);
	assert_int_equal(st->stats.budget_refusals, 0);
	/* Nothing fits now: refused, counted, nothing staged past the budget. */
	assert_int_equal(staging_write_begin(st, 4 << 20, 4096), -ENOSPC);
	assert_int_equal(staging_write_begin(st, 6 << 20, 1), -ENOSPC);
	assert_int_equal(st->stats.budget_refusals, 2);
	assert_int_equal(staging_size(st, &size), 0);
	assert_int_equal(size, 4 << 20);
	assert_int_equal(staging_bytes_used(), 4 << 20);
	/* Room again: a write past EOF allocates the hole before it. */
	assert_int_equal(staging_truncate(st, 1 << 20), 0);
	assert_int_equal(staging_write_begin(st, 2 << 20, 100), 100);
	assert_int_equal(staging_size(st, &size), 0);
	assert_int_equal(size, 2 << 20);
	assert_int_equal(st->alloc_size, 2 << 20);
	assert_int_equal(pwrite(st->memfd, buf, 100, 2 << 20), 100);
	staging_write_end(st, 2 << 20, 100);
	assert_int_equal(st->alloc_size, (2 << 20) + 100);
	assert_int_equal(staging_bytes_used(), (2 << 20) + 4096);
	/* A failed write gives back what it was charged. */
	assert_int_equal(staging_write_begin(st, 3 << 20, 4096), 4096);
	staging_write_end(st, 3 << 20, -EIO);
	assert_int_equal(staging_size(st, &size), 0);
	assert_int_equal(staging_bytes_used(), ALIGN_UP(size, 4096));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "w");
	ino->nopen = 0;
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
	assert_int_equal(staging_bytes_used(), 0);
	inode_forget(ino, 1);
	free(buf);
}

/* An empty file stages, grows by writes and commits. */
static void test_empty_file(void **state)
{
	struct inode *ino = make_file("e", 0, 0);
	struct staged *st;

	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	assert_int_equal(st->size, 0);
	assert_false(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_int_equal(pwrite(st->memfd, "hello", 5, 0), 5);
	assert_true(commit_is_dirty(st));
	assert_int_equal(commit_file(st), 0);
	assert_same(st, "e");
	assert_int_equal(staging_truncate(st, 0), 0);
	assert_same(st, "e");
	assert_true(commit_is_dirty(st));	/* the new size is not fdatasynced yet */
	assert_int_equal(commit_file(st), 0);
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
	inode_forget(ino, 1);
}

struct race {
	struct staged *st;
	volatile bool stop;
	unsigned commits;
	int err;		/* first failed commit: asserted on the main thread */
};

static void *committer(void *arg)
{
	struct race *rc = arg;

	while (!rc->stop) {
		/* Forget the committed content so the commit copies every chunk from st->map. */
		pthread_mutex_lock(&rc->st->lock);
		dirty_invalidate(rc->st->dm, 0, UINT64_MAX - 1);
		pthread_mutex_unlock(&rc->st->lock);
		/* No cmocka assertion off the main thread: record, the test checks. */
		rc->err = commit_file(rc->st);
		if (rc->err)
			break;
		rc->commits++;
	}
	return NULL;
}

/*
 * A commit (periodic pass, ctl flush) of a sealed file may run while an open unseals it:
 * the unseal replaces the memfd and the daemon's map under the commit's feet unless it
 * waits for the commit. Crashes (SIGSEGV in the commit's copy) without that.
 */
static void test_unseal_vs_commit(void **state)
{
	size_t size = 3 << 20;	/* within staging_budget (4M) */
	struct inode *ino = make_file("u", size, 5);
	struct race rc = { 0 };
	pthread_t t;

	assert_int_equal(staging_create(ino, &rc.st), 0);
	ino->st = rc.st;
	assert_int_equal(pthread_create(&t, NULL, committer, &rc), 0);
	for (int i = 0; i < 300; i++) {
		pthread_mutex_lock(&ino->lock);
		assert_true(staging_try_seal(rc.st));
		assert_int_equal(staging_unseal(rc.st), 0);
		pthread_mutex_unlock(&ino->lock);
	}
	rc.stop = true;
	pthread_join(t, NULL);
	assert_int_equal(rc.err, 0);
	assert_true(rc.commits > 0);
	assert_same(rc.st, "u");
	assert_true(staging_try_seal(rc.st));
	assert_true(budget_release_if_idle(rc.st));
	inode_forget(ino, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inode_table),
		cmocka_unit_test(test_stage_commit),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_write_budget),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_unseal_vs_commit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
