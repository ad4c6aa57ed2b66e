// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/staging_modes.c - staging modes without a mount: staging_paths rules, the
 * budget charged per page size, least-recently-used eviction that never takes a dirty,
 * open, leased or writably mapped file, and the hugetlb logical size (if a pool exists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
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
	set("chunk_size", "4K");
	set("io_size", "64K");
	set("uring_depth", "4");
	set("staging_budget", "4M");
	set("log_level", "error");
	fixture_start("modes");
	assert_int_equal(staging_init(), 0);	/* resident_max: 0 would evict every file */
	return 0;
}

static int teardown(void **state)
{
	staging_exit();
	return fixture_stop();
}

/* DIR/name with @size bytes (a pattern); its inode, one lookup. */
static struct inode *make_file(const char *name, size_t size)
{
	char *buf = calloc(1, size + 1);
	struct inode *ino;

	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 13 + name[0]);
	ino = fixture_file(name, buf, size);
	free(buf);
	return ino;
}

static struct staged *stage(struct inode *ino)
{
	struct staged *st;

	pthread_mutex_lock(&ino->lock);
	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	pthread_mutex_unlock(&ino->lock);
	return st;
}

static void test_rules(void **state)
{
	struct conf c;
	char err[256];

	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "staging_paths", "*.bin:thp, /data/huge/*:hugetlb ;x*:shmem",
				  err, sizeof(err)), 0);
	assert_int_equal(c.nstaging_rules, 3);
	assert_int_equal(conf_staging_mode_for(&c, "/a/b/c.bin"), STAGING_THP);
	assert_int_equal(conf_staging_mode_for(&c, "/data/huge/x/y"), STAGING_HUGETLB);
	assert_int_equal(conf_staging_mode_for(&c, "/data/other"), STAGING_SHMEM);
	assert_int_equal(conf_staging_mode_for(&c, "/q/xfile"), STAGING_SHMEM);
	/* Bad values change nothing. */
	assert_int_equal(conf_set(&c, "staging_paths", "*.bin", err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_set(&c, "staging_paths", "*.bin:huge", err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_set(&c, "staging_paths", ":thp", err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_set(&c, "staging_paths", "*.log:none,*.x:pasthrough", err,
				  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown mode 'pasthrough'"));	/* names the item */
	assert_non_null(strstr(err, "*.x:pasthrough"));
	assert_int_equal(c.nstaging_rules, 3);
	/* The first match wins; no match: the mount's mode. */
	assert_int_equal(conf_set(&c, "staging", "hugetlb", err, sizeof(err)), 0);
	assert_int_equal(conf_set(&c, "staging_paths", "/a/*:thp,*:shmem", err, sizeof(err)), 0);
	assert_int_equal(conf_staging_mode_for(&c, "/a/z.bin"), STAGING_THP);
	assert_int_equal(conf_staging_mode_for(&c, "/b"), STAGING_SHMEM);
	assert_int_equal(conf_set(&c, "staging_paths", "", err, sizeof(err)), 0);
	assert_int_equal(c.nstaging_rules, 0);
	assert_int_equal(conf_staging_mode_for(&c, "/b"), STAGING_HUGETLB);
	/* none: as a rule and as the mount's mode (only what the rules name is staged). */
	assert_int_equal(conf_set(&c, "staging_paths", "/src/*:none; *.log:None", err,
				  sizeof(err)), 0);
	assert_int_equal(conf_staging_mode_for(&c, "/src/a/b.c"), STAGING_NONE);
	assert_int_equal(conf_staging_mode_for(&c, "/x/y.log"), STAGING_NONE);
	assert_int_equal(conf_staging_mode_for(&c, "/x/y.bin"), STAGING_HUGETLB);
	assert_int_equal(conf_set(&c, "staging", "none", err, sizeof(err)), 0);
	assert_int_equal(conf_set(&c, "staging_paths", "*.bin:shmem", err, sizeof(err)), 0);
	assert_int_equal(conf_staging_mode_for(&c, "/x/y.bin"), STAGING_SHMEM);
	assert_int_equal(conf_staging_mode_for(&c, "/x/y.log"), STAGING_NONE);
}

/* A file whose mode is none is not staged: staging_create() leaves it to the backing file. */
static void test_none_not_staged(void **state)
{
	struct staged *st = (struct staged *)1;
	uint64_t used = staging_bytes_used();
	struct inode *ino;

	config.staging = STAGING_NONE;
	ino = make_file("plain", 1 << 20);
	pthread_mutex_lock(&ino->lock);
	assert_int_equal(staging_create(ino, &st), 0);
	pthread_mutex_unlock(&ino->lock);
	assert_null(st);
	assert_null(ino->st);
	assert_int_equal(staging_bytes_used(), used);	/* nothing charged */
	config.staging = STAGING_SHMEM;
}

/*
 * Six 640 KiB files in a 4 MiB budget: idle ones are evicted oldest first when a new one
 * does not fit, and a dirty, an open, a leased and a writably mapped one never are, however
 * old.
 */
static void test_evict_lru(void **state)
{
	const size_t sz = 640 << 10;
	static const char *const names[] = { "dirty", "open", "leased", "mapped", "old", "new" };
	struct inode *ino[6];
	struct staged *st[6];
	struct lease *lease;
	void *map;

	for (int i = 0; i < 6; i++) {
		ino[i] = make_file(names[i], sz);
		st[i] = stage(ino[i]);
		st[i]->last_use = 1000 + i;	/* "dirty" is the least recently used */
	}
	assert_int_equal(staging_bytes_used(), 6 * sz);
	/* dirty: sealed, but its content differs from the backing file's */
	assert_int_equal(pwrite(st[0]->memfd, "D", 1, 100), 1);
	assert_true(staging_try_seal(st[0]));
	ino[1]->nopen = 1;
	lease = lease_add(st[2], getpid(), 0, NULL, NULL, NULL);
	assert_non_null(lease);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, st[3]->memfd, 0);
	assert_true(map != MAP_FAILED);

	/* 1.5 MiB more: only "old" and "new" may go; "old" goes first and is enough. */
	struct inode *big = make_file("big", 3 * sz), *one = make_file("one", 1536 << 10);
	struct staged *b;

	set("staging_budget", "5M");	/* 6 * 640K = 3.75M used; 1.25M free */
	b = stage(one);		/* needs 0.25M more: evicts "old" */
	one->nopen = 1;
	assert_null(ino[4]->st);
	assert_non_null(ino[5]->st);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(ino[i]->st, st[i]);
	/* Nothing left to evict but "new": 3 * 640K cannot be found. */
	pthread_mutex_lock(&big->lock);
	struct staged *x;

	assert_int_equal(staging_create(big, &x), -ENOSPC);
	pthread_mutex_unlock(&big->lock);
	assert_null(ino[5]->st);	/* evicted while trying */
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(ino[i]->st, st[i]);

	/* Clean, closed, unleased, unmapped: now they go too. */
	assert_int_equal(commit_file(st[0]), 0);
	ino[1]->nopen = 0;
	lease_release(lease);
	munmap(map, 4096);
	pthread_mutex_lock(&big->lock);
	assert_int_equal(staging_create(big, &x), 0);
	big->st = x;
	pthread_mutex_unlock(&big->lock);
	assert_true(staging_bytes_used() <= cfg->staging_budget);
	assert_ptr_equal(one->st, b);
	one->nopen = 0;
	set("staging_budget", "4M");
}

/* hugetlb: whole pages in the memfd and the budget, the exact size everywhere else. */
static void test_hugetlb_size(void **state)
{
	uint64_t size;
	struct stat sb;
	int fd = memfd_create("probe", MFD_HUGETLB);

	if (fd < 0 || fallocate(fd, 0, 0, 2 << 20) < 0) {
		if (fd >= 0)
			close(fd);
		skip();	/* no free 2 MiB huge page (echo N > /proc/sys/vm/nr_hugepages) */
	}
	close(fd);
	set("staging", "hugetlb");
	set("staging_budget", "64M");
	struct inode *ino = make_file("h", 1000001);
	struct staged *st = stage(ino);
	uint64_t before = staging_bytes_used();

	set("staging", "shmem");
	if (st->mode != STAGING_HUGETLB)
		skip();	/* the pool was taken meanwhile: fell back */
	assert_int_equal(st->page_size, 2 << 20);
	assert_int_equal(staging_size(st, &size), 0);
	assert_int_equal(size, 1000001);
	assert_int_equal(fstat(st->memfd, &sb), 0);
	assert_int_equal(sb.st_size, 2 << 20);
	assert_true(before >= 2 << 20);
	char buf[16] = { 0 };

	assert_int_equal(staging_pread(st, buf, sizeof(buf), 1000001 - 3), 3);
	assert_int_equal(staging_pread(st, buf, sizeof(buf), 1000001), 0);
	assert_int_equal(staging_pwrite(st, "0123456789", 10, 2097150), 10);
	assert_int_equal(staging_size(st, &size), 0);
	assert_int_equal(size, 2097160);
	assert_int_equal(fstat(st->memfd, &sb), 0);
	assert_int_equal(sb.st_size, 4 << 20);
	assert_int_equal(commit_file(st), 0);
	assert_false(commit_is_dirty(st));
	/* Shrinking zeroes the rest of the last page: growing again shows zeros. */
	assert_int_equal(staging_truncate(st, 2097151), 0);
	assert_int_equal(staging_truncate(st, 2097160), 0);
	assert_int_equal(staging_pread(st, buf, 10, 2097150), 10);
	assert_memory_equal(buf, "0\0\0\0\0\0\0\0\0\0", 10);
	assert_int_equal(commit_file(st), 0);
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
	inode_forget(ino, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_none_not_staged),
		cmocka_unit_test(test_evict_lru),
		cmocka_unit_test(test_hugetlb_size),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
