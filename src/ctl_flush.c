// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_flush.c - owns the control requests that commit staged files (FLUSH, with progress
 * reports while it runs) or commit and drop them (EVICT).
 */
#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ctl_auth.h"
#include "ctl_conn.h"
#include "ctl_flush.h"
#include "ctl_worker.h"
#include "metrics.h"
#include "rdmafs/proto.h"

#define CTL_PROGRESS_NS 200000000ull

/* A flush with RDMAFS_FLUSH_PROGRESS: its worker commits, a ticker thread reports. */
struct progress {
	struct ctl_conn *c;
	uint32_t seq;
	bool all;
	pthread_mutex_t lock;		/* protects the fields below */
	pthread_cond_t cond;		/* stop */
	bool stop;
	struct rdmafs_wire_count wc;	/* files done, bytes written by their commits, total */
	int slot;			/* metrics_watch() slot of the file in a commit, or -1 */
};

/* Set on the worker thread while it runs do_flush() for do_flush_progress(). */
static __thread struct progress *flush_progress;

static int flush_one_watched(struct progress *p, struct staged *st, uint64_t *bytes);

static void send_progress(struct ctl_conn *c, uint32_t seq, const struct rdmafs_wire_count *wc)
{
	struct {
		struct rdmafs_reply rep;
		struct rdmafs_wire_count wc;
	} m;
	size_t len = rdmafs_proto_encode_reply(&m.rep, RDMAFS_OP_PROGRESS, seq, 0, 1, sizeof(*wc));

	if (flush_progress)
		return;	/* the ticker of do_flush_progress() reports instead */
	m.wc = *wc;
	ctl_conn_send(c, &m, len, -1, true);	/* progress may be dropped, replies may not */
}

/* Commit @st; *@committed: the bytes that commit made durable. Returns its result. */
static int commit_counted(struct staged *st, uint64_t *committed)
{
	uint64_t before;
	int r;

	pthread_mutex_lock(&st->lock);
	before = st->stats.committed_bytes;
	pthread_mutex_unlock(&st->lock);
	r = commit_file(st);
	pthread_mutex_lock(&st->lock);
	*committed = st->stats.committed_bytes - before;
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int flush_one(struct staged *st, uint64_t *bytes)
{
	uint64_t committed;
	int r;

	if (flush_progress)
		return flush_one_watched(flush_progress, st, bytes);
	r = commit_counted(st, &committed);
	*bytes += committed;
	return r;
}

static int do_flush(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_count *wc)
{
	struct ctl_target t;
	int r;

	memset(wc, 0, sizeof(*wc));
	if (j->req.flags & RDMAFS_FLUSH_ALL) {
		uint64_t last = now_ns();
		size_t n;
		struct staged **v;

		if (!ctl_peer_is_admin(ctl_conn_cred(c)))
			return -EPERM;
		v = staging_get_all(&n);
		if (!v)
			return -ENOMEM;
		wc->files_total = n;
		for (size_t i = 0; i < n; i++) {
			r = flush_one(v[i], &wc->bytes);
			if (r) {
				wc->files_failed++;
				if (!wc->first_error)
					wc->first_error = r;
			}
			wc->files_done++;
			if (now_ns() - last > CTL_PROGRESS_NS && wc->files_done < n) {
				send_progress(c, j->req.seq, wc);
				last = now_ns();
			}
		}
		staging_put_all(v, n);
		return wc->first_error;
	}
	r = ctl_target_resolve(j->fd, &t);
	if (r)
		return r;
	if (t.acc == O_RDONLY && !ctl_peer_is_admin(ctl_conn_cred(c))) {
		r = -EBADF;	/* like fsync's contract for writers: prove write access */
		goto out;
	}
	wc->files_total = 1;
	if (t.st) {
		r = flush_one(t.st, &wc->bytes);
	} else if (t.bfd >= 0) {
		/* Not staged (e.g. over budget): its writes went to the backing file. */
		char proc[64];
		int fd;

		proc_fd_path(proc, t.bfd);
		fd = open(proc, O_RDONLY | O_CLOEXEC);
		r = fd < 0 || fsync(fd) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
	} else {
		r = -ESTALE;
	}
	wc->files_done = 1;
	if (r) {
		wc->files_failed = 1;
		wc->first_error = r;
	}
out:
	ctl_target_done(&t);
	return r;
}

static int flush_one_watched(struct progress *p, struct staged *st, uint64_t *bytes)
{
	uint64_t committed, written;
	int slot, r;

	if (!p->all) {	/* the total of one file, once its access is proven */
		int64_t d = commit_dirty_bytes(st);

		pthread_mutex_lock(&p->lock);
		p->wc.bytes_total = d > 0 ? (uint64_t)d : 0;
		p->wc.files_total = 1;
		pthread_mutex_unlock(&p->lock);
	}
	slot = metrics_watch(st);
	pthread_mutex_lock(&p->lock);
	p->slot = slot;
	pthread_mutex_unlock(&p->lock);
	r = commit_counted(st, &committed);
	*bytes += committed;
	written = slot >= 0 ? metrics_watched(slot) : committed;
	pthread_mutex_lock(&p->lock);
	p->slot = -1;
	p->wc.bytes += written;
	p->wc.files_done++;
	pthread_mutex_unlock(&p->lock);
	if (slot >= 0)
		metrics_unwatch(slot);
	return r;
}

static void *progress_ticker(void *arg)
{
	struct progress *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct rdmafs_wire_count wc;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += CTL_PROGRESS_NS;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT)
			;
		if (p->stop)
			break;
		if (!p->wc.files_total)
			continue;	/* still counting the bytes to commit */
		wc = p->wc;
		if (p->slot >= 0)
			wc.bytes += metrics_watched(p->slot);
		pthread_mutex_unlock(&p->lock);
		send_progress(p->c, p->seq, &wc);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*
 * FLUSH with RDMAFS_FLUSH_PROGRESS: count the bytes to commit (a scan), then do_flush()
 * while a ticker sends PROGRESS with bytes written of bytes_total every CTL_PROGRESS_NS.
 */
static int do_flush_progress(struct ctl_conn *c, const struct ctl_job *j,
			     struct rdmafs_wire_count *wc)
{
	struct progress p = { .c = c, .seq = j->req.seq, .slot = -1,
			      .all = j->req.flags & RDMAFS_FLUSH_ALL };
	pthread_condattr_t ca;
	pthread_t thread;
	bool ticking;
	int r;

	if (p.all) {
		size_t n;
		struct staged **v;

		if (!ctl_peer_is_admin(ctl_conn_cred(c))) {
			memset(wc, 0, sizeof(*wc));
			return -EPERM;	/* before the scan: the total is the mount's */
		}
		v = staging_get_all(&n);
		for (size_t i = 0; v && i < n; i++) {
			int64_t d = commit_dirty_bytes(v[i]);

			p.wc.bytes_total += d > 0 ? (uint64_t)d : 0;
		}
		staging_put_all(v, n);
		p.wc.files_total = n;
	}
	pthread_mutex_init(&p.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p.cond, &ca);
	pthread_condattr_destroy(&ca);
	ticking = pthread_create(&thread, NULL, progress_ticker, &p) == 0;
	flush_progress = &p;
	r = do_flush(c, j, wc);
	flush_progress = NULL;
	pthread_mutex_lock(&p.lock);
	p.stop = true;
	pthread_cond_signal(&p.cond);
	pthread_mutex_unlock(&p.lock);
	if (ticking)
		pthread_join(thread, NULL);
	wc->bytes_total = p.wc.bytes_total;
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return r;
}

int ctl_do_flush(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_count *wc)
{
	if (j->req.flags & RDMAFS_FLUSH_PROGRESS)
		return do_flush_progress(c, j, wc);
	return do_flush(c, j, wc);
}

int ctl_do_evict(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_count *wc)
{
	size_t n;
	struct staged **v;

	memset(wc, 0, sizeof(*wc));
	if (!ctl_peer_is_admin(ctl_conn_cred(c)))
		return -EPERM;
	v = staging_get_all(&n);
	if (!v)
		return -ENOMEM;
	wc->files_total = n;
	for (size_t i = 0; i < n; i++) {
		struct staged *st = v[i];
		struct inode *ino = st->ino;
		uint64_t size = 0;
		bool sealed;

		/* Only what nobody opens, maps, pins or leases: the seal proves it. */
		pthread_mutex_lock(&ino->lock);
		sealed = ino->st == st && staging_try_seal(st);
		pthread_mutex_unlock(&ino->lock);
		staging_size(st, &size);
		if (sealed && commit_file(st) == 0 && budget_release_if_idle(st)) {
			metrics_evicted(ALIGN_UP(size, st->page_size ? st->page_size : 4096));
			wc->files_done++;
			wc->bytes += ALIGN_UP(size, st->page_size ? st->page_size : 4096);
		}
	}
	staging_put_all(v, n);
	return 0;
}
