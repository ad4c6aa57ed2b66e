// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_restart.c - owns what a staged file leaves for the next daemon generation
 * (doc/restart.md 3.4): its record in the RESTART_T_STAGED state table, its staging memfd
 * (SUP_K_STAGING) and, while held, its stager lock fd (SUP_K_LOCK) in the supervisor's
 * store, all under the id of its record. staging_resume.c reads them back.
 *
 * The record is written in place with word-sized stores (the owner's fields under the
 * locks that guard them in struct staged); only the identity (inode, mode) matters for a
 * resume, and it never changes after the record is published.
 */
#include "rdmafsd.h"
#include "restart.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGED_LAYOUT 1
#define STAGED_CAPACITY SUP_MAX_ENTRIES	/* sparse; the store holds no more fds anyway */

static struct {
	struct restart_table *t;
} rs;

int staging_restart_init(void)
{
	rs.t = restart_table_open(RESTART_T_STAGED, sizeof(struct staged_rec), STAGED_LAYOUT,
				  STAGED_CAPACITY);
	if (!rs.t) {
		log_err("restart: staged table: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

struct restart_table *staging_rec_table(void)
{
	return rs.t;
}

void staging_restart_exit(void)
{
	if (rs.t)
		restart_table_close(rs.t);
	rs.t = NULL;
}

static struct staged_rec *rec_of(struct staged *st)
{
	return st->rslot && rs.t ? restart_table_rec(rs.t, st->rslot - 1) : NULL;
}

static uint64_t tag(unsigned int kind, struct staged *st)
{
	return SUP_TAG(kind, st->rslot - 1);
}

/* The fields that change after creation; st->lock held (or @st not yet published). */
static void rec_fill(struct staged_rec *r, struct staged *st)
{
	r->flags = (st->may_change ? STAGED_F_MAY_CHANGE : 0) |
		   (st->seal_refused ? STAGED_F_SEAL_REFUSED : 0);
	r->logical_size = __atomic_load_n(&st->logical_size, __ATOMIC_RELAXED);
	r->committed_size = st->committed_size;
	r->lost_from = st->lost_from;
	r->err_seq = st->err_seq;
	r->err_last = st->err_last;
	r->pending_error = st->pending_error;
	r->bk_mtim_sec = st->bk_mtim.tv_sec;
	r->bk_mtim_nsec = st->bk_mtim.tv_nsec;
	r->bk_ctim_sec = st->bk_ctim.tv_sec;
	r->bk_ctim_nsec = st->bk_ctim.tv_nsec;
	r->bk_size = st->bk_size;
}

int staging_rec_create(struct staged *st)
{
	struct staged_rec *r;
	uint64_t tags[2];
	int64_t slot;
	int fds[2], ret;

	if (!rs.t)
		return 0;	/* no table (unit tests without staging_restart_init()) */
	slot = restart_table_alloc(rs.t);
	if (slot < 0) {
		log_err("stage ino=%" PRIu64 ": no record for restart: %s",
			(uint64_t)st->ino->src_ino, strerror((int)-slot));
		return (int)slot;
	}
	st->rslot = slot + 1;
	r = restart_table_rec(rs.t, slot);
	r->fuse_ino = inode_fuse_ino(st->ino);
	r->src_dev = st->ino->src_dev;
	r->src_ino = st->ino->src_ino;
	r->mode = st->mode;
	rec_fill(r, st);
	/* Descriptors first: a valid record always has its memfd in the store (or on its way
	 * there: pipelined, served before anything goes to a next generation). */
	tags[0] = tag(SUP_K_STAGING, st);
	tags[1] = tag(SUP_K_LOCK, st);
	fds[0] = st->memfd;
	fds[1] = st->lockfd;
	ret = restart_put_many_async(tags, fds, st->lockfd >= 0 ? 2 : 1);	/* one message */
	if (ret) {
		log_err("stage ino=%" PRIu64 ": cannot keep its staging for a restart: %s",
			(uint64_t)st->ino->src_ino, strerror(-ret));
		staging_rec_free(st);
		return ret;
	}
	restart_table_publish(rs.t, slot);
	return 0;
}

/*
 * The store's copy of the lock fd shares its open file description, whose lock stays
 * until the supervisor serves the DROP sent just before: release it now, so that the
 * next writable open (here or on another node) finds the backing file unlocked.
 */
static void unlock_now(struct staged *st)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (st->lockfd < 0 || !restart_supervised())
		return;		/* no copy in the store: closing the fd unlocks */
	if (fcntl(st->lockfd, F_OFD_SETLK, &fl) < 0)
		log_warn("staging ino=%" PRIu64 ": stager lock not released: %s",
			 (uint64_t)st->ino->src_ino, strerror(errno));
}

void staging_rec_update(struct staged *st)
{
	struct staged_rec *r = rec_of(st);

	if (r)
		rec_fill(r, st);
}

void staging_rec_memfd(struct staged *st)
{
	int r;

	if (!rec_of(st))
		return;
	r = restart_put_async(tag(SUP_K_STAGING, st), st->memfd);
	if (r)
		log_err("staging ino=%" PRIu64 ": cannot keep its new staging for a restart: %s "
			"(a daemon death would lose it)", (uint64_t)st->ino->src_ino, strerror(-r));
}

void staging_rec_lock(struct staged *st, bool held)
{
	int r;

	if (!rec_of(st))
		return;
	if (held) {
		r = restart_put_async(tag(SUP_K_LOCK, st), st->lockfd);
	} else {
		r = restart_drop_async(tag(SUP_K_LOCK, st));
		unlock_now(st);
	}
	if (r)
		log_err("staging ino=%" PRIu64 ": stager lock %s the store: %s",
			(uint64_t)st->ino->src_ino, held ? "not put in" : "not dropped from",
			strerror(-r));
}

void staging_rec_free(struct staged *st)
{
	uint32_t slot;

	if (!rec_of(st))
		return;
	slot = st->rslot - 1;
	/* The record goes first: a valid record never lacks its memfd. */
	restart_table_free(rs.t, slot);
	if (st->lockfd >= 0) {
		restart_drop_async(tag(SUP_K_LOCK, st));
		unlock_now(st);	/* the caller closes its lockfd next */
	}
	restart_drop_async(tag(SUP_K_STAGING, st));
	st->rslot = 0;
}

