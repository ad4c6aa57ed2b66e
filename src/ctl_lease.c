// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_lease.c - owns the control requests of pin holders: MAP hands out the staging memfd,
 * LEASE turns the connection into a lease (lease.c keeps the lease and its holder), LEASE
 * LIST and LEASE BREAK act on them.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_auth.h"
#include "ctl_conn.h"
#include "ctl_lease.h"
#include "ctl_worker.h"
#include "restart.h"
#include "rdmafs/proto.h"

/*
 * Why @t has no staging to map or lease: -EOPNOTSUPP when staging_paths serves its path
 * unstaged (mode none: never staged, its mappings are the backing filesystem's and cannot
 * be pinned for writing), else -ENODATA (not staged now; a writable open stages it).
 */
static int unstaged_err(const struct ctl_target *t)
{
	char path[PATH_MAX];

	if (!t->rel[0] || snprintf(path, sizeof(path), "/%s", t->rel) >= (int)sizeof(path))
		return cfg->staging == STAGING_NONE && !cfg->nstaging_rules ? -EOPNOTSUPP :
									      -ENODATA;
	return conf_staging_mode_for(cfg, path) == STAGING_NONE ? -EOPNOTSUPP : -ENODATA;
}

/* Staging memfd reopened with the access the client's fd grants; *fd_out owned by caller. */
int ctl_do_map(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_map *wm,
	       int *fd_out)
{
	bool want_write = j->req.arg & RDMAFS_MAP_WRITE;
	char proc[64];
	struct ctl_target t;
	struct inode *ino;
	uint64_t size = 0;
	int r, fd;

	memset(wm, 0, sizeof(*wm));
	r = ctl_target_resolve(j->fd, &t);
	if (r)
		return r;
	if (t.acc == O_WRONLY || (want_write && t.acc != O_RDWR)) {
		r = -EACCES;	/* a mapping reads; a writable one needs a read-write open */
		goto out;
	}
	if (!t.st) {
		r = unstaged_err(&t);	/* not staged: nothing to hand over */
		goto out;
	}
	ino = t.st->ino;
	/* ino->lock: staging_unseal() may replace the memfd. */
	pthread_mutex_lock(&ino->lock);
	if (want_write && t.st->sealed) {
		r = -EPERM;
	} else {
		proc_fd_path(proc, t.st->memfd);
		fd = open(proc, (want_write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&ino->lock);
	if (r)
		goto out;
	staging_size(t.st, &size);
	wm->size = size;
	wm->page_size = t.st->page_size ? t.st->page_size : 4096;
	wm->prot = RDMAFS_MAP_READ | (want_write ? RDMAFS_MAP_WRITE : 0);
	*fd_out = fd;
	if (want_write)
		staging_note_writable_map(t.st);
	log_debug("ctl: map ino=%" PRIu64 " %s for pid %d", (uint64_t)t.ino,
		  want_write ? "rw" : "ro", (int)ctl_conn_cred(c)->pid);
out:
	ctl_target_done(&t);
	return r;
}

/*
 * Test builds: RDMAFS_TEST_DIE=FILE holding "lease kept" makes the daemon die after a
 * lease is kept in the supervisor's store and before its "granted" goes out.
 */
static void knob_lease_kept(void)
{
	char buf[32];

	if (restart_test_knob(buf, sizeof(buf)) > 0 && !strncmp(buf, "lease kept", 10))
		restart_test_die("with a lease kept and not yet granted");
}

/* A break of the connection's lease began (lease.c, any thread): tell the holder. */
static void lease_notify(void *arg)
{
	struct ctl_conn *c = arg;	/* the lease's reference, until lease_release() */
	struct rdmafs_reply rep;
	size_t len = rdmafs_proto_encode_reply(&rep, RDMAFS_OP_LEASE_BREAK_NOTICE, 0, 0, 0, 0);

	ctl_conn_send(c, &rep, len, -1, true);
}

int ctl_do_lease(struct ctl_conn *c, const struct ctl_job *j)
{
	struct ctl_target t;
	struct lease *l;
	int r;

	r = ctl_target_resolve(j->fd, &t);
	if (r)
		return r;
	if (!ctl_peer_may_write(ctl_conn_cred(c), &t)) {
		/* A lease blocks truncate and eviction: a reader must not hold up the writers. */
		r = -EBADF;
		goto out;
	}
	if (!t.st) {
		r = unstaged_err(&t);	/* its pages are the backing FS's, no lease */
		goto out;
	}
	/* Its holder may write: this node must be the file's stager (see lockfd). */
	pthread_mutex_lock(&t.st->ino->lock);
	r = t.st->ino->st == t.st ? staging_lock_writer(t.st) : -ESTALE;
	pthread_mutex_unlock(&t.st->ino->lock);
	if (r)
		goto out;
	r = ctl_conn_lease_begin(c);	/* one per connection, a few per uid */
	if (r)
		goto out;
	l = lease_add(t.st, ctl_conn_cred(c)->pid, j->req.arg, t.rel, lease_notify, c);
	if (!l)
		r = errno ? -errno : -ENOMEM;
	/* Before "granted": the store keeps the connection, a daemon death does not end it. */
	if (l && (r = lease_keep(l, ctl_conn_fd(c), j->req.seq))) {
		lease_release(l);
		l = NULL;
	}
	ctl_conn_lease_end(c, l);
	if (r)
		goto out;
	knob_lease_kept();
	log_debug("ctl: lease ino=%" PRIu64 " for pid %d signo %d", (uint64_t)t.ino,
		  (int)ctl_conn_cred(c)->pid, j->req.arg);
out:
	ctl_target_done(&t);
	return r;
}

int ctl_do_lease_list(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_lease *out,
		      uint32_t *count, uint32_t *next)
{
	struct ctl_target t = { .bfd = -1 };
	uint32_t first = (uint32_t)j->req.arg;
	struct lease_info *v;
	size_t n, cap;
	int r = 0;

	*count = *next = 0;
	if (j->fd >= 0) {
		r = ctl_target_resolve(j->fd, &t);
		if (r)
			return r;
		if (!t.st) {
			ctl_target_done(&t);	/* its O_PATH fd */
			return 0;
		}
	} else if (!ctl_peer_is_admin(ctl_conn_cred(c))) {
		return -EPERM;	/* other users' pids and paths */
	}
	/* This page and one more holder (is there a next page?), if there are that many. */
	n = lease_list(t.st, NULL, 0);
	if (first >= n)
		goto out;
	cap = MIN(n, (size_t)first + RDMAFS_LEASE_PER_MSG + 1);
	v = calloc(cap, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	n = MIN(lease_list(t.st, v, cap), cap);
	for (size_t i = first; i < n; i++) {
		struct rdmafs_wire_lease *w = &out[*count];

		if (*count == RDMAFS_LEASE_PER_MSG) {
			*next = (uint32_t)i;
			break;
		}
		(*count)++;
		memset(w, 0, sizeof(*w));
		w->src_ino = v[i].ino;
		w->pid = v[i].pid;
		w->signo = v[i].signo;
		w->state = v[i].breaking;
		ctl_copy_cut(w->path, sizeof(w->path), v[i].path);
	}
	free(v);
out:
	ctl_target_done(&t);
	return r;
}

int ctl_do_lease_break(struct ctl_conn *c, const struct ctl_job *j)
{
	struct ctl_target t;
	int r;

	r = ctl_target_resolve(j->fd, &t);
	if (r)
		return r;
	if (!ctl_peer_is_admin(ctl_conn_cred(c)))
		r = -EPERM;
	else if (t.st)	/* without commit_lock: a dying holder's close commits (FLUSH) */
		r = lease_break(t.st, "rdmafsctl lease break");
	ctl_target_done(&t);
	return r;
}

/* The "granted" reply to LEASE request @seq on @c. */
static int grant_again(struct ctl_conn *c, uint32_t seq)
{
	struct rdmafs_reply rep;
	size_t len = rdmafs_proto_encode_reply(&rep, RDMAFS_OP_LEASE, seq, 0, 0,
					       (size_t)rdmafs_proto_rec_size(RDMAFS_OP_LEASE));
	int r = ctl_conn_send(c, &rep, len, -1, false);

	if (r)
		log_err("restart: the lease of pid %d was kept before its grant was sent; "
			"sending it now failed: %s", (int)ctl_conn_cred(c)->pid, strerror(-r));
	else
		log_notice("restart: lease of pid %d: its grant, lost with the dead daemon, sent",
			   (int)ctl_conn_cred(c)->pid);
	return r;
}

void ctl_lease_resume(void)
{
	struct lease_kept k;
	unsigned n = 0;

	while (lease_kept_next(&k) == 0) {
		struct ctl_conn *c = ctl_conn_adopt(k.connfd);
		struct lease *l = NULL;

		k.st = staging_find_kept(k.staged_slot);
		if (c && k.st && ctl_conn_lease_begin(c) == 0) {
			bool replied = k.replied;
			uint32_t seq = k.seq;

			l = lease_adopt(&k, lease_notify, c);
			ctl_conn_lease_end(c, l);
			/* The dead daemon kept it and died before its "granted" went out: the
			 * holder still waits for that reply. */
			if (l && !replied && grant_again(c, seq) == 0)
				lease_replied(l);
		} else {
			lease_kept_drop(&k);
		}
		if (k.st)
			staging_put(k.st);
		if (!l) {
			log_err("restart: lease of pid=%d not resumed: its holder sees it end",
				(int)k.pid);
			if (c)
				ctl_conn_close(c);
		} else {
			n++;
		}
		if (c)
			ctl_conn_put(c);	/* ctl_conn_adopt()'s */
	}
	if (n)
		log_notice("restart: %u lease(s) resumed", n);
}
