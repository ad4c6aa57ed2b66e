// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_journal.c - the journal of non-idempotent FUSE requests (doc/restart.md 3.6): a
 * ring of records in a state table (RESTART_T_JOURNAL) that outlives the daemon, keyed by
 * the request's unique. A request the dead daemon had done but not answered is resent by
 * the kernel (unique | bit 63, F4): its recorded reply is sent again instead of doing it
 * twice (a second MKDIR would fail with EEXIST, a second OPEN would leak the first
 * handle). A request it had begun but not recorded is done again, and the errors that
 * say "it was done already" (EEXIST of a create, ENOENT of a remove) answer success.
 *
 * Flow of a journaled op (one thread: rdmafs answers these ops in the thread that read
 * them): journal_begin() before the system call; the handler's replies go through
 * jreply_*(), which record the reply (journal_done) and then send it. A handle an OPEN,
 * CREATE or OPENDIR reserves is noted in its record (journal_note_fh()): one that an
 * earlier generation published but whose record was never done is an orphan (the kernel
 * never got it) and is freed at resume (journal_orphan_fh()) instead of made again.
 *
 * Unsupervised, or when the table cannot be made: every call does nothing and the
 * replies go straight out.
 */
#include "fuse_int.h"
#include "restart.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/fuse.h>

#define JOURNAL_CAP 4096u	/* >= max_threads (16) + max_background (12), with margin */
#define JOURNAL_LAYOUT 1
#define UNIQUE_RESEND (1ULL << 63)	/* FUSE_UNIQUE_RESEND (F4) */

enum { JR_FREE = 0, JR_BEGUN = 1, JR_DONE = 2 };

/* One request, in the table's memfd (layout: JOURNAL_LAYOUT). */
struct jrec {
	_Atomic uint32_t state;	/* JR_*; written last (release) */
	uint32_t opcode;	/* FUSE_MKDIR, ... */
	uint64_t unique;	/* the kernel's, without bit 63 */
	uint64_t seq;		/* ring position: the newest record has the highest */
	uint64_t fh;		/* handle reserved by this request (open, create, opendir) */
	int32_t err;		/* reply: 0 or a positive errno */
	uint32_t kind;		/* JK_*: which reply fields below are meant */
	struct fuse_entry_param e;
	struct fuse_file_info fi;
};

static struct {
	struct restart_table *tab;
	_Atomic uint64_t head;	/* next ring position */
	uint64_t *orphans;	/* adopted: handles of records left begun (few) */
	size_t norphans;
} jt;

/* The record of the request this thread serves, and its ring position. */
static __thread struct jrec *cur;
static __thread uint64_t cur_seq;

/*
 * The request's unique. libfuse 3.17 has no accessor. A request read(2) through the
 * custom io left its header's unique in restart_fuse_read_unique(); a spliced one (the
 * default, F11) passes no callback. Then it is read from struct fuse_req, which begins
 * with { struct fuse_session *se; uint64_t unique; } in every libfuse 3 (lib/fuse_i.h);
 * a request read(2) checks that layout (an error, logged once, if it differs).
 */
static uint64_t req_unique(fuse_req_t req)
{
	static _Atomic bool bad_layout;
	const struct {
		void *se;
		uint64_t unique;
	} *head = (const void *)req;
	uint64_t read = restart_fuse_read_unique();

	if (!read)
		return head->unique;
	if (head->unique != read && !atomic_exchange(&bad_layout, true))
		log_err("restart: libfuse's request layout is not the one rdmafs knows (unique "
			"%#" PRIx64 ", read %#" PRIx64 "): a spliced request's journal record "
			"would be wrong; run with RDMAFS_NO_SPLICE_READ=1", head->unique, read);
	return read;
}

static struct jrec *rec_at(uint64_t seq)
{
	return restart_table_rec(jt.tab, seq % JOURNAL_CAP);
}

int journal_init(void)
{
	uint64_t max = 0;
	bool any = false;

	if (!restart_supervised())
		return 0;
	jt.tab = restart_table_open(RESTART_T_JOURNAL, sizeof(struct jrec), JOURNAL_LAYOUT,
				    JOURNAL_CAP);
	if (!jt.tab) {
		log_warn("restart: journal: %s; requests in flight at a daemon death that "
			 "create or remove names may fail when resent", strerror(errno));
		return 0;
	}
	if (!restart_table_adopted(jt.tab))
		return 0;
	for (uint32_t i = 0; i < JOURNAL_CAP; i++) {
		struct jrec *r = restart_table_rec(jt.tab, i);
		uint32_t state = atomic_load_explicit(&r->state, memory_order_acquire);

		if (state == JR_FREE)
			continue;
		if (!any || r->seq > max)
			max = r->seq;
		any = true;
		if (state == JR_BEGUN && r->fh) {
			uint64_t *v = realloc(jt.orphans, (jt.norphans + 1) * sizeof(*v));

			if (!v)
				return -ENOMEM;
			jt.orphans = v;
			jt.orphans[jt.norphans++] = r->fh;
		}
	}
	atomic_store(&jt.head, any ? max + 1 : 0);
	return 0;
}

void journal_exit(void)
{
	cur = NULL;
	free(jt.orphans);
	jt.orphans = NULL;
	jt.norphans = 0;
	restart_table_close(jt.tab);
	jt.tab = NULL;
}

/* A resent request's record (begun or done), or NULL. Only resent requests look. */
static struct jrec *journal_find(uint64_t unique, uint32_t opcode)
{
	for (uint32_t i = 0; i < JOURNAL_CAP; i++) {
		struct jrec *r = restart_table_rec(jt.tab, i);

		if (atomic_load_explicit(&r->state, memory_order_acquire) != JR_FREE &&
		    r->unique == unique && r->opcode == opcode)
			return r;
	}
	return NULL;
}

bool journal_orphan_fh(uint64_t fh)
{
	for (size_t i = 0; i < jt.norphans; i++)
		if (jt.orphans[i] == fh)
			return true;
	return false;
}

/* ---- fault injection (test builds only) ---- */

#ifdef RDMAFS_TEST_KNOBS
/*
 * RDMAFS_TEST_DIE=FILE: FILE holds "OP POINT [N]" (OP a name below, POINT before, after
 * or done): the Nth (default 1st) request of OP that is not a resend makes the daemon
 * _exit(99) at POINT: before = begun recorded, before the system call; after = after the
 * system call, before the record is done; done = recorded, before the reply. FILE is
 * emptied first, so the next generation does not die again.
 */
static const struct {
	const char *name;
	uint32_t opcode;
} knob_ops[] = {
	{ "mknod", FUSE_MKNOD }, { "mkdir", FUSE_MKDIR }, { "symlink", FUSE_SYMLINK },
	{ "link", FUSE_LINK }, { "create", FUSE_CREATE }, { "unlink", FUSE_UNLINK },
	{ "rmdir", FUSE_RMDIR }, { "rename", FUSE_RENAME2 }, { "setxattr", FUSE_SETXATTR },
	{ "removexattr", FUSE_REMOVEXATTR }, { "open", FUSE_OPEN }, { "opendir", FUSE_OPENDIR },
};

static __thread int knob_point;	/* of the current request: 0 none, 1-3 as below */
static _Atomic unsigned int knob_seen;
static pthread_mutex_t knob_lock = PTHREAD_MUTEX_INITIALIZER;
static char knob_last[64];

static void knob_arm(uint32_t opcode, bool resent)
{
	static const char *const points[] = { "", "before", "after", "done" };
	char buf[64], op[16], point[16];
	unsigned int n = 1, want = 0;
	int k;

	knob_point = 0;
	if (resent || restart_test_knob(buf, sizeof(buf)) < 0)
		return;
	k = sscanf(buf, "%15s %15s %u", op, point, &n);
	if (k < 2)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(knob_ops); i++)
		if (!strcmp(op, knob_ops[i].name) && knob_ops[i].opcode == opcode)
			want = 1;
	if (!want)
		return;
	pthread_mutex_lock(&knob_lock);
	if (strcmp(buf, knob_last)) {	/* armed anew: count from here */
		snprintf(knob_last, sizeof(knob_last), "%s", buf);
		atomic_store(&knob_seen, 0);
	}
	pthread_mutex_unlock(&knob_lock);
	if (atomic_fetch_add(&knob_seen, 1) + 1 != n)
		return;
	for (int p = 1; p <= 3; p++)
		if (!strcmp(point, points[p]))
			knob_point = p;
}

static void knob_die(int point)
{
	static const char *const where[] = { "", "before the system call of a journaled request",
					     "after the system call of a journaled request",
					     "before the reply of a journaled request" };

	if (knob_point == point)
		restart_test_die(where[point]);
}
#else
static inline void knob_arm(uint32_t opcode, bool resent)
{
}

static inline void knob_die(int point)
{
}
#endif

/* ---- the ops' side ---- */

static void replay(fuse_req_t req, struct journal_reply *r)
{
	if (r->err || r->kind == JK_ERR)
		fuse_reply_err(req, r->err);
	else if (r->kind == JK_ENTRY)
		fuse_reply_entry(req, &r->e);
	else if (r->kind == JK_OPEN)
		fuse_reply_open(req, &r->fi);
	else
		fuse_reply_create(req, &r->e, &r->fi);
}

/* A handle a done record gave out that does not exist any more cannot be sent again. */
static bool replayable(const struct jrec *r)
{
	if (r->err || (r->kind != JK_OPEN && r->kind != JK_CREATE))
		return true;
	return fh_get(r->fi.fh, r->opcode == FUSE_OPENDIR ? FH_DIR : FH_FILE) != NULL;
}

enum journal_start journal_begin_unique(uint64_t unique, uint32_t opcode,
				       struct journal_reply *done)
{
	uint64_t seq;
	struct jrec *r;

	if (cur) {	/* an op that did not reply through jreply_*(): forget it */
		log_warn("restart: journal record of request %" PRIu64 " left open", cur->unique);
		if (cur->seq == cur_seq)
			atomic_store_explicit(&cur->state, JR_FREE, memory_order_release);
		cur = NULL;
	}
	if (!jt.tab || !restart_supervised())
		return JOURNAL_NEW;
	knob_arm(opcode, unique & UNIQUE_RESEND);
	if (unique & UNIQUE_RESEND) {
		unique &= ~UNIQUE_RESEND;
		r = journal_find(unique, opcode);
		if (r && atomic_load_explicit(&r->state, memory_order_acquire) == JR_DONE &&
		    replayable(r)) {
			log_info("restart: resent request %" PRIu64 " (opcode %u) was done: its "
				 "reply again", unique, opcode);
			done->err = r->err;
			done->kind = r->kind;
			done->e = r->e;
			done->fi = r->fi;
			return JOURNAL_REPLAYED;
		}
		if (r) {	/* begun: it may have been done; this record goes on */
			log_info("restart: resent request %" PRIu64 " (opcode %u) was begun: "
				 "done again", unique, opcode);
			r->fh = 0;
			atomic_store_explicit(&r->state, JR_BEGUN, memory_order_release);
			cur = r;
			cur_seq = r->seq;
			return JOURNAL_REDO;
		}
	}
	seq = atomic_fetch_add(&jt.head, 1);
	r = rec_at(seq);
	atomic_store_explicit(&r->state, JR_FREE, memory_order_release);
	r->opcode = opcode;
	r->unique = unique;
	r->seq = seq;
	r->fh = 0;
	r->err = 0;
	r->kind = JK_ERR;
	atomic_store_explicit(&r->state, JR_BEGUN, memory_order_release);
	cur = r;
	cur_seq = seq;
	knob_die(1);
	return JOURNAL_NEW;
}

enum journal_start journal_begin(fuse_req_t req, uint32_t opcode)
{
	struct journal_reply done;
	enum journal_start j = journal_begin_unique(req_unique(req), opcode, &done);

	if (j == JOURNAL_REPLAYED)
		replay(req, &done);
	return j;
}

void journal_note_fh(uint64_t fh)
{
	if (cur && cur->seq == cur_seq)
		cur->fh = fh;
}

void journal_done(int err, const struct fuse_entry_param *e, const struct fuse_file_info *fi)
{
	uint32_t kind = e && fi ? JK_CREATE : e ? JK_ENTRY : fi ? JK_OPEN : JK_ERR;
	struct jrec *r = cur;

	if (!r)
		return;
	cur = NULL;
	knob_die(2);
	if (r->seq != cur_seq)	/* 4096 journaled requests since: the slot is reused */
		return;
	r->err = err;
	r->kind = kind;
	if (e)
		r->e = *e;
	if (fi)
		r->fi = *fi;
	atomic_store_explicit(&r->state, JR_DONE, memory_order_release);
	knob_die(3);
}

void jreply_err(fuse_req_t req, int err)
{
	journal_done(err, NULL, NULL);
	fuse_reply_err(req, err);
}

void jreply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	journal_done(0, e, NULL);
	fuse_reply_entry(req, e);
}

void jreply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	journal_done(0, NULL, fi);
	fuse_reply_open(req, fi);
}

void jreply_create(fuse_req_t req, const struct fuse_entry_param *e,
		   const struct fuse_file_info *fi)
{
	journal_done(0, e, fi);
	fuse_reply_create(req, e, fi);
}
