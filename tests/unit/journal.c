// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/journal.c - the journal of non-idempotent requests (fuse_journal.c) without a
 * mount: records begun and done by one generation are found by the next one by the
 * request's unique (bit 63 set: resent): a done one gives its reply back, a begun one
 * says "do it again", an unknown one is new; a handle noted by a request never done is an
 * orphan; the ring wraps around after 4096 records (the oldest are forgotten, the newest
 * kept, across an adoption too). Uses the stand-in store (store_stub.h). Needs no root.
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

#include "fuse_int.h"
#include "restart.h"

#include "store_stub.h"

#include <linux/fuse.h>

#define RESENT (1ULL << 63)
#define CAP 4096

static enum journal_start begin(uint64_t unique, uint32_t opcode, struct journal_reply *r)
{
	memset(r, 0, sizeof(*r));
	return journal_begin_unique(unique, opcode, r);
}

/* A request begun in a thread that dies before its reply (a record left begun: the
 * next begin of the same thread would give it up). */
struct begun_arg {
	uint64_t unique, fh;
	uint32_t opcode;
};

static void *begun_main(void *p)
{
	struct begun_arg *a = p;
	struct journal_reply r;

	assert_int_equal(begin(a->unique, a->opcode, &r), JOURNAL_NEW);
	if (a->fh)
		journal_note_fh(a->fh);
	return NULL;
}

static void begun_only(uint64_t unique, uint32_t opcode, uint64_t fh)
{
	struct begun_arg a = { unique, fh, opcode };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, begun_main, &a), 0);
	pthread_join(t, NULL);
}

static void test_begin_done_resend(void **state)
{
	struct fuse_entry_param e = { .ino = 42, .generation = 7 };
	struct fuse_file_info fi = { .fh = 0x300000005ULL, .backing_id = 3 };
	struct journal_reply r;

	(void)state;
	store.n = 0;
	gen_start(0);
	assert_int_equal(journal_init(), 0);
	/* unsupervised-like paths are not taken: every request gets a record */
	assert_int_equal(begin(100, FUSE_MKDIR, &r), JOURNAL_NEW);
	journal_done(0, &e, NULL);			/* done: an entry */
	assert_int_equal(begin(102, FUSE_UNLINK, &r), JOURNAL_NEW);
	journal_done(ENOENT, NULL, NULL);		/* done: an error */
	begun_only(104, FUSE_RENAME2, 0);
	begun_only(106, FUSE_CREATE, fi.fh);	/* published, never done: an orphan */
	assert_int_equal(begin(108, FUSE_OPEN, &r), JOURNAL_NEW);
	journal_note_fh(0x100000009ULL);
	journal_done(0, NULL, &fi);	/* done: not an orphan */
	/* not resent: a request never looks (the same unique cannot come twice) */
	assert_false(journal_orphan_fh(fi.fh));	/* not adopted: nothing is orphaned */
	journal_exit();
	gen_end();

	gen_start(1);
	assert_int_equal(journal_init(), 0);
	assert_true(journal_orphan_fh(fi.fh));
	assert_false(journal_orphan_fh(0x100000009ULL));
	assert_false(journal_orphan_fh(0x200000005ULL));	/* another seq of the slot */
	assert_int_equal(begin(100 | RESENT, FUSE_MKDIR, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.kind, JK_ENTRY);
	assert_int_equal(r.e.ino, 42);
	assert_int_equal(r.e.generation, 7);
	assert_int_equal(begin(102 | RESENT, FUSE_UNLINK, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, ENOENT);
	/* the same unique of another opcode is not this record */
	assert_int_equal(begin(104 | RESENT, FUSE_MKDIR, &r), JOURNAL_NEW);
	journal_done(0, NULL, NULL);
	assert_int_equal(begin(104 | RESENT, FUSE_RENAME2, &r), JOURNAL_REDO);
	journal_done(0, NULL, NULL);		/* done now, by this generation */
	assert_int_equal(begin(110 | RESENT, FUSE_LINK, &r), JOURNAL_NEW);	/* never begun */
	journal_done(EXDEV, NULL, NULL);
	/* the open's handle no longer exists (no handle table here): done again */
	assert_int_equal(begin(108 | RESENT, FUSE_OPEN, &r), JOURNAL_REDO);
	journal_done(0, NULL, &fi);
	journal_exit();
	gen_end();

	gen_start(2);	/* what generation 1 did is kept as well */
	assert_int_equal(journal_init(), 0);
	assert_true(journal_orphan_fh(fi.fh));	/* its request was not resent (yet) */
	assert_int_equal(begin(104 | RESENT, FUSE_RENAME2, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, 0);
	assert_int_equal(begin(110 | RESENT, FUSE_LINK, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, EXDEV);
	journal_exit();
	gen_end();
	for (int i = 0; i < store.n; i++)
		close(store.fd[i]);
}

static void test_wraparound(void **state)
{
	struct journal_reply r;
	uint64_t u;

	(void)state;
	store.n = 0;
	gen_start(0);
	assert_int_equal(journal_init(), 0);
	/* 1.5 rings: the first CAP / 2 records are overwritten */
	for (u = 0; u < CAP + CAP / 2; u++) {
		assert_int_equal(begin(2 * u + 2, FUSE_MKDIR, &r), JOURNAL_NEW);
		journal_done((int)(u % 100), NULL, NULL);
	}
	journal_exit();
	gen_end();

	gen_start(1);
	assert_int_equal(journal_init(), 0);
	assert_int_equal(begin((2 * 0 + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_NEW);
	journal_done(0, NULL, NULL);
	assert_int_equal(begin((2 * (CAP / 2 - 1) + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_NEW);
	journal_done(0, NULL, NULL);
	/* the oldest kept and the newest are found */
	u = CAP / 2 + 2;
	assert_int_equal(begin((2 * u + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, (int)(u % 100));
	u = CAP + CAP / 2 - 1;
	assert_int_equal(begin((2 * u + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_REPLAYED);
	assert_int_equal(r.err, (int)(u % 100));
	/* the ring goes on after the newest: the two new records above took the oldest
	 * slots (positions CAP + CAP / 2 and + 1), so the newest of generation 0 is kept */
	for (u = 0; u < 10; u++) {
		assert_int_equal(begin(1000000 + 2 * u, FUSE_UNLINK, &r), JOURNAL_NEW);
		journal_done(0, NULL, NULL);
	}
	u = CAP + CAP / 2 - 1;
	assert_int_equal(begin((2 * u + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_REPLAYED);
	u = CAP / 2 + 2;	/* overwritten by the 10 + 2 records since */
	assert_int_equal(begin((2 * u + 2) | RESENT, FUSE_MKDIR, &r), JOURNAL_NEW);
	journal_done(0, NULL, NULL);
	journal_exit();
	gen_end();
	for (int i = 0; i < store.n; i++)
		close(store.fd[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_done_resend),
		cmocka_unit_test(test_wraparound),
	};

	log_init(LOG_LVL_ERR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
