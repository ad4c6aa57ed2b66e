// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/budget.c - eviction under staging_budget (budget.c through staging's policy):
 * a growing truncate holds its own commit_lock while it evicts, so it must never wait for
 * a victim's commit_lock (two such truncates, each the other's victim, would deadlock).
 * Needs no root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	fixture_start("budget");
	assert_int_equal(staging_init(), 0);	/* resident_max: 0 would evict every file */
	return 0;
}

static int teardown(void **state)
{
	staging_exit();
	return fixture_stop();
}

/* DIR/name with @size bytes, staged and idle (no open); its inode keeps one lookup. */
static struct staged *stage_file(const char *name, size_t size)
{
	char *buf = calloc(1, size + 1);
	struct inode *ino;
	struct staged *st;

	memset(buf, name[0], size);
	ino = fixture_file(name, buf, size);
	free(buf);
	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	return st;
}

struct truncate_job {
	struct staged *st;
	uint64_t size;
	int result;
};

static void *truncate_thread(void *arg)
{
	struct truncate_job *j = arg;

	j->result = staging_truncate(j->st, j->size);
	return NULL;
}

/* Runs staging_truncate() in a thread; false if it did not return within @secs. */
static bool truncate_within(struct truncate_job *j, int secs)
{
	struct timespec ts;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, truncate_thread, j), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	if (pthread_timedjoin_np(t, NULL, &ts)) {
		pthread_detach(t);	/* stuck for good: the test fails, the process ends */
		return false;
	}
	return true;
}

/* Commit, seal and drop the staging of @ino if it has one (the next test starts empty). */
static void drop(struct inode *ino)
{
	struct staged *st = ino->st;

	if (!st)
		return;
	assert_int_equal(commit_file(st), 0);
	assert_true(staging_try_seal(st));
	assert_true(budget_release_if_idle(st));
}

/*
 * B's commit_lock is held (as by B's own growing truncate, waiting to evict A): A's
 * growing truncate, which needs B's room, skips B instead of waiting for it. Before the
 * fix eviction scanned B under B's commit_lock and hung here.
 */
static void test_evict_skips_busy_commit_lock(void **state)
{
	struct staged *a = stage_file("a", 1 << 20), *b = stage_file("b", 1 << 20);
	struct inode *ia = a->ino, *ib = b->ino;
	struct truncate_job j = { .st = a, .size = 7 << 19 };	/* 3.5M + B's 1M > 4M */

	pthread_mutex_lock(&b->commit_lock);
	bool returned = truncate_within(&j, 20);

	pthread_mutex_unlock(&b->commit_lock);
	if (!returned)
		fail_msg("truncate of a waited for b's commit_lock inside eviction (deadlock)");
	assert_int_equal(j.result, -ENOSPC);	/* b was busy: nothing evicted */
	assert_ptr_equal(ib->st, b);
	/* B idle again: the same truncate evicts it and succeeds. */
	assert_true(truncate_within(&j, 20));
	assert_int_equal(j.result, 0);
	assert_null(ib->st);	/* b is freed: only its inode is looked at */
	assert_int_equal(staging_bytes_used(), 7 << 19);
	drop(ia);
	assert_int_equal(staging_bytes_used(), 0);
	inode_forget(ia, 1);
	inode_forget(ib, 1);
}

/* Two growing truncates, each the other's victim, at once: both return. */
static void test_two_growing_truncates(void **state)
{
	for (int round = 0; round < 20; round++) {
		char na[16], nb[16];

		snprintf(na, sizeof(na), "a%d", round);
		snprintf(nb, sizeof(nb), "b%d", round);
		struct staged *a = stage_file(na, 1 << 20), *b = stage_file(nb, 1 << 20);
		struct inode *ia = a->ino, *ib = b->ino;
		struct truncate_job ja = { .st = a, .size = 7 << 19 };
		struct truncate_job jb = { .st = b, .size = 7 << 19 };
		pthread_t ta, tb;
		struct timespec ts;

		staging_get(a);	/* as setattr does: an eviction must not free it under us */
		staging_get(b);
		assert_int_equal(pthread_create(&ta, NULL, truncate_thread, &ja), 0);
		assert_int_equal(pthread_create(&tb, NULL, truncate_thread, &jb), 0);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 20;
		if (pthread_timedjoin_np(ta, NULL, &ts) || pthread_timedjoin_np(tb, NULL, &ts))
			fail_msg("round %d: two growing truncates waited for each other", round);
		/* At most one fits (3.5M + 3.5M > 4M); whoever fits evicted the other. */
		assert_true(ja.result == 0 || ja.result == -ENOSPC);
		assert_true(jb.result == 0 || jb.result == -ENOSPC);
		assert_false(ja.result == 0 && jb.result == 0);
		staging_put(a);
		staging_put(b);
		drop(ia);
		drop(ib);
		assert_int_equal(staging_bytes_used(), 0);
		inode_forget(ia, 1);
		inode_forget(ib, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evict_skips_busy_commit_lock),
		cmocka_unit_test(test_two_growing_truncates),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
