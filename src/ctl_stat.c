// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_stat.c - owns the control requests that report: STAT of a file or the mount, the
 * daemon's METRICS and the list of staged FILES (rdmafsctl stat, metrics, top).
 */
#include "rdmafsd.h"
#include "commit.h"

#include <string.h>
#include <unistd.h>

#include "ctl_auth.h"
#include "ctl_conn.h"
#include "ctl_stat.h"
#include "ctl_worker.h"
#include "metrics.h"
#include "restart.h"
#include "rdmafs/proto.h"

static void fill_stat_one(struct staged *st, struct rdmafs_wire_stat *w, bool scan)
{
	struct inode *ino = st->ino;
	struct flush_stats fs;
	uint64_t size;
	int64_t changed = -1;

	if (scan)
		changed = commit_dirty_bytes(st);
	pthread_mutex_lock(&ino->lock);
	w->opens += ino->nopen;
	w->opens_w += ino->nopen_w;
	pthread_mutex_unlock(&ino->lock);
	w->leases += lease_count(st);
	pthread_mutex_lock(&st->lock);
	fs = st->stats;
	size = st->size;
	if (!w->pending_error)
		w->pending_error = st->pending_error;
	if (st->sealed)
		w->flags |= RDMAFS_ST_SEALED;
	w->staging_mode = st->mode;
	w->page_size = st->page_size;
	w->chunk_size = dirty_chunk_size(st->dm);
	pthread_mutex_unlock(&st->lock);
	staging_size(st, &size);
	w->size += size;
	w->staged_bytes += ALIGN_UP(size, st->page_size ? st->page_size : 4096);
	if (changed >= 0)
		w->changed_bytes += changed;
	w->committed_bytes += fs.committed_bytes;
	w->commit_ns += fs.commit_ns;
	w->commits += fs.commits;
	w->failures += fs.failures;
	w->scanned_bytes += fs.scanned_bytes;
	w->lost_pages += fs.lost_pages;
	w->syncs += fs.syncs;
	w->budget_refusals += fs.budget_refusals;
	if (fs.last_commit.tv_sec > w->last_commit_sec ||
	    (fs.last_commit.tv_sec == w->last_commit_sec &&
	     (uint32_t)fs.last_commit.tv_nsec > w->last_commit_nsec)) {
		w->last_commit_sec = fs.last_commit.tv_sec;
		w->last_commit_nsec = fs.last_commit.tv_nsec;
	}
	if (fs.last_error && fs.last_error_time.tv_sec >= w->last_error_sec) {
		w->last_error = fs.last_error;
		w->last_error_sec = fs.last_error_time.tv_sec;
	}
	w->files++;
	w->flags |= RDMAFS_ST_STAGED;
}

static void fill_stat_common(struct rdmafs_wire_stat *w, bool scanned)
{
	w->flags |= (fuse_ops_passthrough ? RDMAFS_ST_PASSTHROUGH : 0) |
		    (scanned ? RDMAFS_ST_CHANGED_KNOWN : 0);
	w->flush_interval = cfg->flush_interval;
	w->budget = cfg->staging_budget;
	if (!w->chunk_size)
		w->chunk_size = cfg->chunk_size;
	if (!w->files)
		w->staging_mode = cfg->staging;
}

int ctl_do_stat(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_stat *w)
{
	bool scan = !(j->req.flags & RDMAFS_STAT_NOSCAN);
	struct restart_stats rst;
	struct lease_stats ls;

	/*
	 * A scan hashes files under their commit locks, stalling their writers' fsync and
	 * close: only for root, the mount's owner, or (one file) who may write it. Others get
	 * the figures at hand, without RDMAFS_ST_CHANGED_KNOWN.
	 */
	struct ctl_target t;
	int r;

	memset(w, 0, sizeof(*w));
	if (j->req.flags & RDMAFS_STAT_MOUNT) {	/* like df: anyone may look */
		size_t n;
		struct staged **v;

		scan = scan && ctl_peer_is_admin(ctl_conn_cred(c));
		v = staging_get_all(&n);

		for (size_t i = 0; v && i < n; i++)
			fill_stat_one(v[i], w, scan);
		staging_put_all(v, n);
		w->staged_bytes = staging_bytes_used();
		lease_stats(&ls);
		w->lease_granted = ls.granted;
		w->lease_breaks = ls.breaks;
		w->lease_denies = ls.denies;
		w->lease_revokes = ls.revokes;
		w->lease_deaths = ls.deaths;
		restart_stats(&rst);
		w->generation = rst.generation;
		w->restarts = rst.restarts;
		w->last_blackout_us = rst.last_blackout_ms * 1000;
		w->supervisor_pid = restart_supervised() ? (int32_t)getppid() : 0;
		w->restart_flags = rst.restartable ? RDMAFS_RS_RESTARTABLE : 0;
		w->prev_exit = rst.prev_exit;
		snprintf(w->version, sizeof(w->version), "%s", rdmafs_version());
		fill_stat_common(w, scan);
		return 0;
	}
	r = ctl_target_resolve(j->fd, &t);
	if (r)
		return r;
	scan = scan && ctl_peer_may_write(ctl_conn_cred(c), &t);
	w->src_ino = t.ino;
	if (t.st) {
		fill_stat_one(t.st, w, scan);
		w->files = 1;
	} else {
		w->size = t.size;
	}
	fill_stat_common(w, scan || !t.st);
	if (!t.st && t.rel[0]) {	/* what a writable open through this path would use */
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "/%s", t.rel) < (int)sizeof(path))
			w->staging_mode = conf_staging_mode_for(cfg, path);
	}
	ctl_target_done(&t);
	return 0;
}

/*
 * Bytes of @st not committed, without waiting for a commit under way (that would stall a
 * monitoring tool for the length of a flush): -EBUSY while one runs.
 */
static int64_t dirty_now(struct staged *st)
{
	if (pthread_mutex_trylock(&st->commit_lock))
		return -EBUSY;
	pthread_mutex_unlock(&st->commit_lock);
	return commit_dirty_bytes(st);
}

int ctl_do_metrics(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_metrics *w)
{
	bool scan = !(j->req.flags & RDMAFS_METRICS_NOSCAN);
	struct lease_stats ls;
	struct staged **v;
	unsigned k = 0;
	size_t n;

	memset(w, 0, sizeof(*w));	/* like df: anyone may look, no paths in it */
	w->dirty_bytes = scan ? 0 : RDMAFS_DIRTY_UNKNOWN;
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];
		int64_t d = scan ? dirty_now(st) : 0;

		pthread_mutex_lock(&st->ino->lock);
		w->opens += st->ino->nopen;
		w->opens_w += st->ino->nopen_w;
		pthread_mutex_unlock(&st->ino->lock);
		pthread_mutex_lock(&st->lock);
		w->files_failing += st->pending_error != 0;
		pthread_mutex_unlock(&st->lock);
		w->files++;
		if (d == -EBUSY)
			w->files_committing++;
		if (d >= 0 && scan)
			w->dirty_bytes += d;
		else if (scan)
			w->flags |= RDMAFS_MF_DIRTY_PARTIAL;
	}
	staging_put_all(v, n);
	w->staged_bytes = staging_bytes_used();
	w->budget_bytes = cfg->staging_budget;
	lease_stats(&ls);
	w->leases = ls.held;
	w->lease_granted = ls.granted;
	w->lease_breaks = ls.breaks;
	w->lease_denies = ls.denies;
	w->lease_revokes = ls.revokes;
	w->lease_deaths = ls.deaths;
	w->files_staged_total = metrics_read(&metrics.files_staged);
	w->files_dropped_total = metrics_read(&metrics.files_dropped);
	w->evictions_total = metrics_read(&metrics.evictions);
	w->evicted_bytes_total = metrics_read(&metrics.evicted_bytes);
	w->commit_ns_total = metrics_read(&metrics.commit_ns);
	w->committed_bytes_total = metrics_read(&metrics.committed_bytes);
	w->written_bytes_total = metrics_read(&metrics.written_bytes);
	w->scanned_bytes_total = metrics_read(&metrics.scanned_bytes);
	w->failures_total = metrics_read(&metrics.failures);
	w->nbuckets = METRICS_BUCKETS;
	for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
		w->bucket_le_ns[b] = metrics_bucket_le_ns[b];
		w->bucket_count[b] = metrics_read(&metrics.bucket[b]);
		w->commits_total += w->bucket_count[b];	/* = the histogram's count */
	}
	for (int e = 1; e <= METRICS_ERRNO_MAX; e++) {
		/* errors[0] (errnos out of range) and what does not fit go last, as "other" */
		uint64_t cnt = metrics_read(&metrics.errors[e % METRICS_ERRNO_MAX]);

		if (!cnt)
			continue;
		if (e < METRICS_ERRNO_MAX && k < RDMAFS_METRICS_ERRNOS - 1) {
			w->failures[k].error = -e;
			w->failures[k++].count = cnt;
		} else {
			w->failures[RDMAFS_METRICS_ERRNOS - 1].count += cnt;
		}
	}
	if (w->failures[RDMAFS_METRICS_ERRNOS - 1].count) {
		w->failures[k] = w->failures[RDMAFS_METRICS_ERRNOS - 1];
		if (k != RDMAFS_METRICS_ERRNOS - 1)
			memset(&w->failures[RDMAFS_METRICS_ERRNOS - 1], 0, sizeof(w->failures[0]));
		k++;
	}
	w->nerrnos = k;
	return 0;
}

/* Mount-relative path of a staged file, "" if unknown (deleted, renamed out). */
static void staged_rel_path(struct staged *st, const char *root, char *out, size_t size)
{
	char path[PATH_MAX];
	size_t rl = strlen(root);
	ssize_t len = inode_readlink(st->ino, path, sizeof(path) - 1);

	out[0] = 0;
	if (len <= 0)
		return;
	path[len] = 0;
	if ((size_t)len > rl && !strncmp(path, root, rl) && path[rl] == '/')
		ctl_copy_cut(out, size, path + rl + 1);
}

int ctl_do_files(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_file *out,
		 uint32_t *count, uint32_t *next)
{
	bool scan = !(j->req.flags & RDMAFS_METRICS_NOSCAN);
	char root[PATH_MAX];
	struct staged **v;
	ssize_t rl;
	size_t n;

	*count = *next = 0;
	if (!ctl_peer_is_admin(ctl_conn_cred(c)))
		return -EPERM;	/* other users' paths */
	rl = inode_readlink(inode_root(), root, sizeof(root) - 1);
	root[rl > 0 ? rl : 0] = 0;
	v = staging_get_all(&n);
	for (size_t i = (size_t)j->req.arg; v && i < n; i++) {
		struct rdmafs_wire_file *w = &out[*count];
		struct staged *st = v[i];
		struct flush_stats fs;
		uint64_t size = 0;
		int64_t d;

		if (*count == RDMAFS_FILES_PER_MSG) {
			*next = (uint32_t)i;
			break;
		}
		(*count)++;
		memset(w, 0, sizeof(*w));
		d = scan ? dirty_now(st) : -ENODATA;
		w->dirty_bytes = d >= 0 ? (uint64_t)d : RDMAFS_DIRTY_UNKNOWN;
		w->flags |= d == -EBUSY ? RDMAFS_MF_COMMITTING : 0;
		pthread_mutex_lock(&st->ino->lock);
		w->opens = st->ino->nopen;
		w->opens_w = st->ino->nopen_w;
		pthread_mutex_unlock(&st->ino->lock);
		w->leases = lease_count(st);
		pthread_mutex_lock(&st->lock);
		fs = st->stats;
		w->pending_error = st->pending_error;
		w->flags |= st->sealed ? RDMAFS_MF_SEALED : 0;
		w->staging_mode = st->mode;
		pthread_mutex_unlock(&st->lock);
		staging_size(st, &size);
		w->src_ino = st->ino->src_ino;
		w->size = size;
		w->staged_bytes = ALIGN_UP(size, st->page_size ? st->page_size : 4096);
		w->committed_bytes = fs.committed_bytes;
		w->commits = fs.commits;
		w->failures = fs.failures;
		w->commit_ns = fs.commit_ns;
		staged_rel_path(st, root, w->path, sizeof(w->path));
	}
	staging_put_all(v, n);
	return 0;
}
