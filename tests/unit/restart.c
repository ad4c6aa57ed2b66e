// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/restart.c - the daemon's side of the descriptor store (restart.c): state
 * tables (slots, seq, publish/free, capacity), put/take through a stand-in store that
 * answers PUT/DROP/LIST/READY like rdmafs-supervisor, and a table adopted by the next
 * generation with its valid records kept and a half-made slot freed. Needs no root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdmafsd.h"
#include "restart.h"

#include "store_stub.h"

struct rec {
	uint64_t a, b;
};

static void test_table_unsupervised(void **state)
{
	struct restart_table *t;
	struct rec *r;
	int64_t s0, s1, s2;

	(void)state;
	unsetenv(SUP_ENV_FD);
	assert_int_equal(restart_init(true), 0);
	assert_false(restart_supervised());
	assert_int_equal(restart_put(SUP_TAG(SUP_K_STATE, 9), 0), 0);	/* nothing done */
	t = restart_table_open(RESTART_T_INODES, sizeof(struct rec), 1, 3);
	assert_non_null(t);
	assert_false(restart_table_adopted(t));
	s0 = restart_table_alloc(t);
	s1 = restart_table_alloc(t);
	s2 = restart_table_alloc(t);
	assert_int_equal(s0, 0);
	assert_int_equal(s1, 1);
	assert_int_equal(s2, 2);
	assert_int_equal(restart_table_alloc(t), -ENOSPC);
	assert_null(restart_table_rec(t, 3));
	r = restart_table_rec(t, 1);
	r->a = 7;
	assert_false(restart_table_valid(t, 1));
	restart_table_publish(t, 1);
	assert_true(restart_table_valid(t, 1));
	assert_int_equal(restart_table_seq(t, 1), 1);
	restart_table_free(t, 1);
	assert_false(restart_table_valid(t, 1));
	assert_int_equal(restart_table_alloc(t), 1);	/* reused, zeroed, next seq */
	assert_int_equal(r->a, 0);
	assert_int_equal(restart_table_seq(t, 1), 2);
	restart_table_close(t);
	restart_exit();
}

static void test_put_take_adopt(void **state)
{
	struct restart_table *t;
	struct rec *r;
	uint64_t tag;
	char buf[4];
	int fd, p[2];

	(void)state;
	store.n = 0;
	gen_start(0);
	assert_false(restart_resumed());
	assert_int_equal(pipe(p), 0);
	assert_int_equal(restart_put(SUP_TAG(SUP_K_DEVFUSE, 0), p[0]), 0);
	close(p[0]);	/* the store keeps its own */
	assert_int_equal(restart_put(SUP_TAG(SUP_K_STAGING, 5), p[1]), 0);
	assert_int_equal(restart_put(SUP_TAG(SUP_K_STAGING, 6), p[1]), 0);
	assert_int_equal(restart_drop(SUP_TAG(SUP_K_STAGING, 6)), 0);
	assert_int_equal(restart_drop(SUP_TAG(SUP_K_STAGING, 6)), -ENOENT);
	t = restart_table_open(RESTART_T_HANDLES, sizeof(struct rec), 3, 100);
	assert_non_null(t);
	for (int i = 0; i < 10; i++) {
		int64_t s = restart_table_alloc(t);

		assert_int_equal(s, i);
		r = restart_table_rec(t, s);
		r->a = 100 + i;
		if (i != 4)	/* slot 4: allocated, the death before its publish */
			restart_table_publish(t, s);
	}
	restart_table_free(t, 7);
	restart_table_close(t);
	assert_int_equal(restart_ready(), 0);
	gen_end();

	gen_start(1);
	assert_true(restart_resumed());
	assert_int_equal(restart_died_ns(), 12345);
	fd = restart_take(SUP_TAG(SUP_K_DEVFUSE, 0));
	assert_true(fd >= 0);
	assert_int_equal(restart_take(SUP_TAG(SUP_K_DEVFUSE, 0)), -ENOENT);
	assert_int_equal(write(p[1], "ok", 2), 2);	/* the same pipe */
	assert_int_equal(read(fd, buf, 2), 2);
	close(fd);
	fd = restart_take_next(SUP_K_STAGING, &tag);
	assert_true(fd >= 0);
	assert_int_equal(tag, SUP_TAG(SUP_K_STAGING, 5));
	close(fd);
	assert_int_equal(restart_take_next(SUP_K_STAGING, &tag), -ENOENT);
	/* another layout: refused */
	assert_null(restart_table_open(RESTART_T_HANDLES, sizeof(struct rec) + 8, 3, 100));
	assert_int_equal(errno, EPROTO);
	gen_end();

	gen_start(2);
	assert_null(restart_table_open(RESTART_T_HANDLES, sizeof(struct rec), 4, 100));
	assert_int_equal(errno, EPROTO);
	gen_end();

	gen_start(3);
	t = restart_table_open(RESTART_T_HANDLES, sizeof(struct rec), 3, 100);
	assert_non_null(t);
	assert_true(restart_table_adopted(t));
	assert_int_equal(restart_table_hwm(t), 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(restart_table_valid(t, i), i != 4 && i != 7);
		if (i != 4 && i != 7)
			assert_int_equal(((struct rec *)restart_table_rec(t, i))->a, 100 + i);
	}
	/* the free slots below hwm first, the lowest first */
	assert_int_equal(restart_table_alloc(t), 4);
	assert_int_equal(restart_table_alloc(t), 7);
	assert_int_equal(restart_table_alloc(t), 10);
	assert_int_equal(restart_table_seq(t, 7), 2);
	restart_table_close(t);
	gen_end();
	close(p[1]);
	for (int i = 0; i < store.n; i++)
		close(store.fd[i]);
}

/* Pipelined puts and drops: more than the window of unread replies, refusals reported by
 * restart_sync(), and what was sent before a death is in the store for the next one. */
static void test_pipelined(void **state)
{
	uint64_t tag;
	int fd, p[2];

	(void)state;
	store.n = 0;
	gen_start(0);
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < 1000; i++) {
		uint64_t tg = SUP_TAG(SUP_K_STAGING, i % 16);

		assert_int_equal(restart_put_async(tg, p[0]), 0);
		if (i % 16 != 3)
			assert_int_equal(restart_drop_async(tg), 0);
	}
	assert_int_equal(restart_sync(), 0);
	assert_int_equal(store.n, 1);
	assert_int_equal(store.tag[0], SUP_TAG(SUP_K_STAGING, 3));
	assert_int_equal(restart_drop_async(SUP_TAG(SUP_K_STAGING, 99)), 0);	/* unknown */
	assert_int_equal(restart_sync(), -ENOENT);
	assert_int_equal(restart_sync(), 0);
	/* Drops are batched: one pending, then a PUT of its tag (a slot reused) sends the
	 * drop first, so the PUT's descriptor stays. */
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_STAGING, 5), p[0]), 0);
	assert_int_equal(restart_drop_async(SUP_TAG(SUP_K_STAGING, 5)), 0);
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_STAGING, 5), p[1]), 0);
	assert_int_equal(restart_sync(), 0);
	assert_int_equal(store.n, 2);
	assert_int_equal(restart_drop(SUP_TAG(SUP_K_STAGING, 5)), 0);
	/* A batch naming a tag held and one not: the one held goes, -ENOENT reported. */
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_STAGING, 6), p[0]), 0);
	assert_int_equal(restart_drop_async(SUP_TAG(SUP_K_STAGING, 6)), 0);
	assert_int_equal(restart_drop_async(SUP_TAG(SUP_K_STAGING, 98)), 0);
	assert_int_equal(restart_flush_drops(), 0);
	assert_int_equal(restart_sync(), -ENOENT);
	assert_int_equal(store.n, 1);
	/* A synchronous request after pipelined ones: their replies are read first. */
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_LOCK, 1), p[0]), 0);
	assert_int_equal(restart_drop(SUP_TAG(SUP_K_LOCK, 1)), 0);
	/* Sent, replies never read, then the death. */
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_LOCK, 7), p[1]), 0);
	assert_int_equal(restart_drop_async(SUP_TAG(SUP_K_STAGING, 3)), 0);
	assert_int_equal(restart_flush_drops(), 0);	/* (else pending: gone with a death) */
	assert_int_equal(restart_put_async(SUP_TAG(SUP_K_DEVFUSE, 0), p[0]), 0);
	gen_end();
	assert_int_equal(store.n, 2);

	gen_start(1);
	assert_true(restart_resumed());
	fd = restart_take_next(SUP_K_LOCK, &tag);
	assert_true(fd >= 0);
	assert_int_equal(tag, SUP_TAG(SUP_K_LOCK, 7));
	close(fd);
	assert_int_equal(restart_take_next(SUP_K_STAGING, &tag), -ENOENT);
	gen_end();
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < store.n; i++)
		close(store.fd[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_unsupervised),
		cmocka_unit_test(test_put_take_adopt),
		cmocka_unit_test(test_pipelined),
	};

	log_init(LOG_LVL_ERR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
