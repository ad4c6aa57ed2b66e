// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * flusher.c - owns write-back: finds changed chunks by fingerprint, snapshots them into
 * bounce buffers, writes the copies with io_uring and fdatasyncs; the periodic thread,
 * retries with backoff, the final commit at shutdown and the rescue folder.
 */
#include "rdmafsd.h"
#include "metrics.h"
#include "rdmafs/manifest.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Staging is read with pread(2) into bounce buffers, never through a mapping of ours: the
 * kernel copies from its direct map, while a first touch of each page through a user
 * mapping costs a page-table fault per 4 KiB (measured here: 5 s per GiB on first touch,
 * 0.25 s per GiB for pread + hash). The copy is also the snapshot that gets committed.
 */

/* A ring and its bounce buffers; one per concurrent commit, kept in a pool. */
struct commit_ctx {
	struct io_uring ring;
	char *bounce;			/* depth slots of slot_bytes(), page aligned */
	size_t bounce_len;
	unsigned depth;			/* slots */
	unsigned nwrites;		/* write records (several runs may share a slot) */
	struct commit_ctx *next;
};

/* One write of a run of changed chunks out of a slot. */
struct wreq {
	uint64_t off, len;		/* file range */
	uint64_t done;			/* bytes written so far */
	char *buf;			/* data of off, in its slot */
	unsigned slot;
	bool direct;
};

static struct {
	pthread_mutex_t lock;		/* protects pool, stop, kicked, close_kicked */
	pthread_cond_t cond;
	struct commit_ctx *pool;
	bool stop, kicked, running;
	bool close_kicked;		/* a close asked for a commit (flush_on_close=async) */
	pthread_t thread;
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/*
 * Bytes a commit reads into one slot: io_size rounded down to whole chunks, at least one
 * chunk (chunk_size may exceed io_size). The slots are this far apart.
 */
static uint64_t slot_bytes(void)
{
	uint64_t cs = cfg->chunk_size;

	return MAX((uint64_t)cfg->io_size / cs, 1) * cs;
}

static struct commit_ctx *ctx_get(void)
{
	struct commit_ctx *c;
	unsigned per_io;
	int r;

	pthread_mutex_lock(&fl.lock);
	c = fl.pool;
	if (c)
		fl.pool = c->next;
	pthread_mutex_unlock(&fl.lock);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->depth = cfg->uring_depth;
	/* Alternating changed and clean chunks give at most per_io / 2 + 1 runs a slot. */
	per_io = slot_bytes() / cfg->chunk_size;
	c->nwrites = MIN(c->depth * (per_io / 2 + 1), 4096u);
	c->bounce_len = (size_t)c->depth * slot_bytes();
	c->bounce = mmap(NULL, c->bounce_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->bounce == MAP_FAILED) {
		free(c);
		return NULL;
	}
	r = io_uring_queue_init(c->nwrites + 1, &c->ring, 0);
	if (r < 0) {
		munmap(c->bounce, c->bounce_len);
		free(c);
		errno = -r;
		return NULL;
	}
	return c;
}

static void ctx_put(struct commit_ctx *c)
{
	pthread_mutex_lock(&fl.lock);
	c->next = fl.pool;
	fl.pool = c;
	pthread_mutex_unlock(&fl.lock);
}

static void ctx_free(struct commit_ctx *c)
{
	io_uring_queue_exit(&c->ring);
	munmap(c->bounce, c->bounce_len);
	free(c);
}

static void ctx_destroy_all(void)
{
	struct commit_ctx *c;

	pthread_mutex_lock(&fl.lock);
	while ((c = fl.pool)) {
		fl.pool = c->next;
		ctx_free(c);
	}
	pthread_mutex_unlock(&fl.lock);
}

/* Read [off, off + len) of staging into @buf; bytes read (short if it shrank) or -errno. */
static ssize_t read_staging(struct staged *st, char *buf, uint64_t len, uint64_t off)
{
	uint64_t got = 0;

	while (got < len) {
		ssize_t n = pread(st->memfd, buf + got, len - got, off + got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

/* Fingerprint of chunk @k of a file of @size bytes, whose block at @off is in @buf. */
static uint64_t chunk_fp(const struct dirty_map *dm, const char *buf, uint64_t off, uint64_t size,
			 uint64_t k)
{
	uint64_t start = k * dm->chunk_size;

	return dirty_hash(buf + (start - off), MIN((uint64_t)dm->chunk_size, size - start));
}

static bool chunk_changed(const struct dirty_map *dm, uint64_t i, uint64_t fp)
{
	return fp != (i < dm->nchunks ? dm->fp[i] : DIRTY_FP_NONE);
}

static void submit_write(struct commit_ctx *c, struct staged *st, unsigned w, struct wreq *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	/* The ring has nwrites + 1 entries and at most nwrites writes are queued. */
	io_uring_prep_write(sqe, q->direct ? st->dfd : st->bfd, q->buf + q->done,
			    q->len - q->done, q->off + q->done);
	io_uring_sqe_set_data64(sqe, w);
}

/*
 * Wait for one write. Returns the finished write's index, -EAGAIN when it was resubmitted
 * (short write, O_DIRECT refused), or -errno: of the write (*w_out tells which) or of the
 * ring itself (*w_out is UINT32_MAX).
 */
static int reap_one(struct commit_ctx *c, struct staged *st, struct wreq *wr, unsigned *w_out)
{
	struct io_uring_cqe *cqe;
	int r;

	*w_out = UINT32_MAX;
	for (;;) {
		r = io_uring_submit_and_wait(&c->ring, 1);
		if (r < 0 && r != -EINTR)
			return r;
		if (io_uring_peek_cqe(&c->ring, &cqe) == 0)
			break;
	}
	unsigned w = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	struct wreq *q = &wr[w];

	io_uring_cqe_seen(&c->ring, cqe);
	*w_out = w;
	if (res < 0) {
		if (res == -EINVAL && q->direct) {	/* the FS refused this O_DIRECT write */
			q->direct = false;
			submit_write(c, st, w, q);
			return -EAGAIN;
		}
		return res;
	}
	if (res == 0)
		return -ENOSPC;	/* a write that makes no progress: treat as out of space */
	q->done += res;
	if (q->done < q->len) {	/* short write: finish it buffered */
		q->direct = false;
		submit_write(c, st, w, q);
		return -EAGAIN;
	}
	return w;
}

static void set_error(struct staged *st, int err)
{
	pthread_mutex_lock(&st->lock);
	st->stats.failures++;
	metrics_commit_failed(err);
	st->stats.last_error = err;
	clock_gettime(CLOCK_REALTIME, &st->stats.last_error_time);
	st->pending_error = err;
	st->err_seq++;
	st->err_last = err;
	st->backoff = st->backoff ? MIN(st->backoff * 2, 60u) : 1;
	clock_gettime(CLOCK_MONOTONIC, &st->next_retry);
	st->next_retry.tv_sec += st->backoff;
	pthread_mutex_unlock(&st->lock);
}

/* Write bookkeeping of one commit: slots in use by pending writes, free write records. */
struct wstate {
	struct wreq *wr;
	unsigned *wfree, nwfree;
	unsigned *slot_refs;		/* pending writes per slot */
	unsigned *sfree, nsfree;
	unsigned inflight;
	int err;			/* first write error */
};

/* Reap one completion into @ws; false if the ring failed (ws->err set). */
static bool reap(struct commit_ctx *c, struct staged *st, struct wstate *ws)
{
	unsigned w;
	int res = reap_one(c, st, ws->wr, &w);

	if (res == -EAGAIN)
		return true;
	if (w == UINT32_MAX) {
		ws->err = res;
		return false;
	}
	ws->inflight--;
	ws->wfree[ws->nwfree++] = w;
	if (--ws->slot_refs[ws->wr[w].slot] == 0)
		ws->sfree[ws->nsfree++] = ws->wr[w].slot;
	if (res < 0 && !ws->err)
		ws->err = res;
	metrics_wrote(st, res < 0 ? 0 : ws->wr[w].len);
	return true;
}

/*
 * One commit pass over @st; commit_lock held. Each io_size block of staging is copied into
 * a bounce slot (the snapshot) and fingerprinted; runs of changed chunks are written from
 * the slot. A chunk changed after its copy is found again by the next pass: its committed
 * fingerprint becomes the copy's, after fdatasync.
 */
static int commit_locked(struct staged *st)
{
	uint64_t t0 = now_ns(), size, cs, nchunks, io, changed = 0, written = 0;
	uint64_t *bits = NULL, *newfp = NULL;
	struct commit_ctx *c = NULL;
	struct wstate ws = { 0 };
	/* A real seal (thp's stand-in cannot stop a stale pin) freezes what this pass reads. */
	bool frozen = st->sealed && st->mode != STAGING_THP;
	int r;

	st->sealed_clean = false;
	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);	/* the size, and the budget charge of growth */
	size = st->size;
	if (!r)
		r = dirty_resize(st->dm, size);
	if (!r && st->lost_from < size)
		r = -EIO;	/* staging lost pages: never commit them (staging_check_lost) */
	pthread_mutex_unlock(&st->lock);
	if (r)
		goto out;
	cs = st->dm->chunk_size;
	io = slot_bytes();	/* cs == cfg->chunk_size: the map was made with it */
	nchunks = (size + cs - 1) / cs;
	bits = calloc((nchunks + 63) / 64 + 1, sizeof(*bits));
	newfp = malloc((nchunks + 1) * sizeof(*newfp));
	c = ctx_get();
	if (c) {
		ws.wr = calloc(c->nwrites, sizeof(*ws.wr));
		ws.wfree = calloc(c->nwrites, sizeof(*ws.wfree));
		ws.slot_refs = calloc(c->depth, sizeof(*ws.slot_refs));
		ws.sfree = calloc(c->depth, sizeof(*ws.sfree));
	}
	if (!bits || !newfp || !c || !ws.wr || !ws.wfree || !ws.slot_refs || !ws.sfree) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < c->nwrites; i++)
		ws.wfree[ws.nwfree++] = i;
	for (unsigned i = 0; i < c->depth; i++)
		ws.sfree[ws.nsfree++] = i;

	for (uint64_t off = 0; off < size && !ws.err; off += io) {
		uint64_t len = MIN(io, size - off), first = off / cs, last;
		unsigned s;
		char *buf;
		ssize_t n;

		while (!ws.nsfree)
			if (!reap(c, st, &ws))
				goto ring_failed;
		s = ws.sfree[--ws.nsfree];
		buf = c->bounce + (size_t)s * io;
		n = read_staging(st, buf, len, off);
		if (n < 0) {
			ws.err = n;
			break;
		}
		if ((uint64_t)n < len) {
			/* Under commit_lock only a map holder's ftruncate shrinks staging: this
			 * pass cannot commit what was there, and must not report success. */
			log_err("commit ino=%" PRIu64 ": staging shrank to %" PRIu64 " bytes "
				"behind the daemon (a mapped fd was truncated)",
				(uint64_t)st->ino->src_ino, off + n);
			ws.err = -EIO;
			break;
		}
		/* Read as zeros where the kernel dropped a page: committed data stays. */
		if (staging_check_lost(st, off, len)) {
			ws.err = -EIO;
			break;
		}
		last = (off + len - 1) / cs;
		for (uint64_t k = first; k <= last; k++) {
			newfp[k] = chunk_fp(st->dm, buf, off, size, k);
			if (chunk_changed(st->dm, k, newfp[k])) {
				bits[k / 64] |= 1ull << (k % 64);
				changed++;
			}
		}
		/* One write per run of changed chunks in this slot. */
		for (uint64_t k = first; k <= last;) {
			if (!(bits[k / 64] & (1ull << (k % 64)))) {
				k++;
				continue;
			}
			uint64_t j = k + 1;

			while (j <= last && (bits[j / 64] & (1ull << (j % 64))))
				j++;
			/* The backing file is opened for the first write only (no fd per
			 * staged file; a clean pass opens nothing). */
			if (st->bfd < 0) {
				ws.err = staging_backing_open(st);
				if (ws.err)
					break;
			}
			while (!ws.nwfree)
				if (!reap(c, st, &ws))
					goto ring_failed;
			unsigned w = ws.wfree[--ws.nwfree];
			struct wreq *q = &ws.wr[w];
			uint64_t roff = k * cs, rlen = MIN(j * cs, size) - roff;

			*q = (struct wreq){ .off = roff, .len = rlen, .buf = buf + (roff - off),
					    .slot = s,
					    .direct = st->dfd >= 0 && rlen % 4096 == 0 };
			ws.slot_refs[s]++;
			submit_write(c, st, w, q);
			ws.inflight++;
			written += rlen;
			k = j;
		}
		if (!ws.slot_refs[s])
			ws.sfree[ws.nsfree++] = s;	/* clean block: slot free again */
		else
			io_uring_submit(&c->ring);
	}
	while (ws.inflight)
		if (!reap(c, st, &ws))
			goto ring_failed;
	pthread_mutex_lock(&st->lock);
	st->stats.scanned_bytes += size;
	metrics_add(&metrics.scanned_bytes, size);
	st->stats.changed_bytes += MIN(changed * cs, size);
	pthread_mutex_unlock(&st->lock);
	r = ws.err;
	if (r)
		goto out;
	/* Clean only if the backing file's size and blocks are durable too: a truncate,
	 * punch or zero range since the last fdatasync is synced now. */
	if (!changed && size == st->committed_size && !st->needs_sync) {
		st->sealed_clean = frozen;
		goto out;	/* clean */
	}
	if (0) {
ring_failed:
		/* Writes may still be in flight from its buffers: never reuse this context. */
		log_err("commit ino=%" PRIu64 ": io_uring: %s", (uint64_t)st->ino->src_ino,
			strerror(-ws.err));
		c = NULL;	/* leaked on purpose: the kernel may still read its buffers */
		r = ws.err;
		goto out;
	}
	r = staging_backing_open(st);
	if (r)
		goto out;
	if (size != st->committed_size && ftruncate(st->bfd, size) < 0) {
		r = -errno;
		goto out;
	}
	if (fdatasync(st->bfd) < 0) {
		r = -errno;
		goto out;
	}
	st->needs_sync = false;		/* commit_lock: no truncate or fallocate since */
	/* Durable: the snapshots become the committed content. */
	pthread_mutex_lock(&st->lock);
	for (uint64_t i = 0; i < nchunks; i++)
		if (bits[i / 64] & (1ull << (i % 64)))
			dirty_set(st->dm, i, newfp[i]);
	st->committed_size = size;
	staging_note_backing(st);	/* our own write: not a change behind our back */
	st->stats.syncs++;
	st->stats.committed_bytes += written;
	st->stats.commit_ns += now_ns() - t0;
	st->stats.commits++;
	metrics_commit(written, now_ns() - t0);
	clock_gettime(CLOCK_REALTIME, &st->stats.last_commit);
	st->pending_error = 0;
	st->sealed_clean = frozen;
	st->backoff = 0;
	pthread_mutex_unlock(&st->lock);
	log_debug("commit ino=%" PRIu64 ": %" PRIu64 " bytes in %.3f ms",
		  (uint64_t)st->ino->src_ino, written, (now_ns() - t0) / 1e6);
out:
	if (r == -EAGAIN)
		r = 0;	/* raced a resize: the next pass sees the new size */
	if (r) {
		if (!st->pending_error || st->pending_error != r)
			log_err("commit ino=%" PRIu64 ": %s (changes stay staged, will retry)",
				(uint64_t)st->ino->src_ino, strerror(-r));
		set_error(st, r);
	}
	if (c)
		ctx_put(c);
	free(ws.wr);
	free(ws.wfree);
	free(ws.slot_refs);
	free(ws.sfree);
	free(bits);
	free(newfp);
	return r;
}

int flusher_commit(struct staged *st)
{
	int r;

	pthread_mutex_lock(&st->commit_lock);
	r = commit_locked(st);
	staging_backing_close(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

int flusher_commit_fd(struct staged *st, uint32_t *seen)
{
	int r = flusher_commit(st);

	pthread_mutex_lock(&st->lock);
	if (!r && *seen != st->err_seq)
		r = st->err_last;	/* failed since this description last looked */
	*seen = st->err_seq;
	pthread_mutex_unlock(&st->lock);
	return r;
}

uint32_t flusher_err_sample(struct staged *st)
{
	uint32_t seq;

	pthread_mutex_lock(&st->lock);
	seq = st->err_seq;
	pthread_mutex_unlock(&st->lock);
	return seq;
}

/*
 * Bytes of @st that differ from what was committed (a shrink not yet applied counts too);
 * stops at the first change when @first_only. Takes commit_lock; -errno on failure.
 */
static int64_t scan_changed(struct staged *st, bool first_only)
{
	uint64_t size, cs = st->dm->chunk_size, io, changed = 0;
	char *buf = NULL;
	int64_t r;

	pthread_mutex_lock(&st->commit_lock);
	if (st->sealed && st->sealed_clean) {	/* committed since the seal: no scan */
		pthread_mutex_unlock(&st->commit_lock);
		return 0;
	}
	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);
	if (!r)
		r = dirty_resize(st->dm, st->size);
	size = st->size;
	pthread_mutex_unlock(&st->lock);
	io = slot_bytes();
	if (!r && size) {
		buf = malloc(io);
		if (!buf)
			r = -ENOMEM;
	}
	for (uint64_t off = 0; !r && off < size && !(first_only && changed); off += io) {
		uint64_t len = MIN(io, size - off);
		ssize_t n = read_staging(st, buf, len, off);

		if (n < 0 || (uint64_t)n < len) {
			r = n < 0 ? n : -EIO;	/* shrank behind us: not clean */
			break;
		}
		for (uint64_t k = off / cs; k * cs < off + (uint64_t)n; k++)
			if (chunk_changed(st->dm, k, chunk_fp(st->dm, buf, off, size, k)))
				changed += MIN(cs, size - k * cs);
	}
	if (!r && st->committed_size != UINT64_MAX && st->committed_size > size)
		changed += st->committed_size - size;
	if (!r && (st->committed_size != size || st->needs_sync) && !changed)
		changed = 1;	/* grown with zeros, a size not applied or not synced yet */
	pthread_mutex_unlock(&st->commit_lock);
	free(buf);
	return r ? r : (int64_t)changed;
}

bool flusher_is_dirty(struct staged *st)
{
	return scan_changed(st, true) != 0;
}

int64_t flusher_dirty_bytes(struct staged *st)
{
	return scan_changed(st, false);
}

static bool retry_due(struct staged *st)
{
	struct timespec now;
	bool due;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&st->lock);
	due = !st->pending_error || now.tv_sec > st->next_retry.tv_sec ||
	      (now.tv_sec == st->next_retry.tv_sec && now.tv_nsec >= st->next_retry.tv_nsec);
	pthread_mutex_unlock(&st->lock);
	return due;
}

/*
 * Who may write @st now: a writable open, a writable mapping (with passthrough the kernel
 * sends RELEASE at close(2) while a mapping stays: it is seen as the staging file still
 * open elsewhere), a writable map fd handed out by the control socket, a lease holder.
 * None of them: after a commit, nothing can change it (but a long-term pin that outlived
 * its munmap without a lease: see doc/staging.md).
 */
static bool writers_left(struct staged *st)
{
	struct inode *ino = st->ino;
	bool w;

	pthread_mutex_lock(&ino->lock);
	w = ino->st != st || ino->nopen_w;
	pthread_mutex_unlock(&ino->lock);
	if (!w) {
		bool sealed;

		pthread_mutex_lock(&st->lock);
		w = st->may_change;
		sealed = st->sealed;
		pthread_mutex_unlock(&st->lock);
		if (!w && !sealed)
			w = staging_open_elsewhere(st);
	}
	return w || lease_count(st);
}

/*
 * Commit @st; if no writer was there before it and none after, and nothing was noted
 * (change_seq) meanwhile, it is clean until the next change: passes skip it.
 */
static int commit_mark_clean(struct staged *st)
{
	uint64_t seq = __atomic_load_n(&st->change_seq, __ATOMIC_SEQ_CST);
	bool quiet = !writers_left(st);
	int r = flusher_commit(st);

	if (!r && quiet && !writers_left(st)) {
		__atomic_store_n(&st->clean_seq, seq, __ATOMIC_SEQ_CST);
		staging_unlock_if_clean(st);	/* another node may stage it now */
	}
	return r;
}

/*
 * One periodic pass: commit what may have changed; a file that cannot have changed since
 * it was found clean is not read at all. Staging stays resident after the last close
 * (a reopen costs nothing); it goes when staging_budget needs room (evict_lru) or on
 * rdmafsctl evict. A file sealed by an eviction that then found it dirty is dropped here
 * once committed (a sealed memfd cannot be written again anyway).
 */
static void flush_pass(bool all)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];

		if (!all && staging_known_clean(st) && !st->pending_error && !writers_left(st))
			continue;
		if (!all && !retry_due(st))
			continue;
		if (commit_mark_clean(st) == 0 && st->sealed)
			staging_release_if_idle(st);
	}
	staging_put_all(v, n);
	staging_trim(NULL, true, SIZE_MAX);	/* more files staged than descriptors allow */
}

/* flush_on_close=async: commit the files whose close asked for it, and only those. */
static void close_pass(void)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];
		bool want;

		pthread_mutex_lock(&st->lock);
		want = st->close_commit;
		st->close_commit = false;
		pthread_mutex_unlock(&st->lock);
		if (want)
			commit_mark_clean(st);
	}
	staging_put_all(v, n);
}

void flusher_commit_async(struct staged *st)
{
	pthread_mutex_lock(&st->lock);
	st->close_commit = true;
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_lock(&fl.lock);
	fl.close_kicked = true;
	pthread_cond_signal(&fl.cond);
	pthread_mutex_unlock(&fl.lock);
}

/* Allocate growth of staged files that passthrough writes made (see alloc_range()). */
static void growth_pass(void)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++)
		if (!staging_known_clean(v[i]) || writers_left(v[i]))	/* idle: cannot grow */
			staging_watch_growth(v[i]);
	staging_put_all(v, n);
}

/*
 * The periodic thread. Its clock is CLOCK_MONOTONIC (fl.cond is made for it in
 * flusher_init()): setting the wall clock neither delays nor hurries a pass. It wakes at
 * least every GROWTH_WATCH_NS to allocate growth made by passthrough writes, a pass is due
 * every flush_interval.
 */
#define GROWTH_WATCH_NS 1000000000ull
static void *flusher_thread(void *arg)
{
	uint64_t next_pass = now_ns() + (uint64_t)cfg->flush_interval * 1000000000ull;

	pthread_mutex_lock(&fl.lock);
	while (!fl.stop) {
		uint64_t now = now_ns(), wake = now + GROWTH_WATCH_NS;
		struct timespec ts;

		if (cfg->flush_interval)
			wake = MIN(wake, next_pass);
		ts.tv_sec = wake / 1000000000ull;
		ts.tv_nsec = wake % 1000000000ull;
		while (!fl.stop && !fl.kicked && !fl.close_kicked)
			if (pthread_cond_timedwait(&fl.cond, &fl.lock, &ts) == ETIMEDOUT)
				break;
		if (fl.stop)
			break;
		bool kicked = fl.kicked, close_kicked = fl.close_kicked;

		fl.kicked = fl.close_kicked = false;
		pthread_mutex_unlock(&fl.lock);
		if (close_kicked && !kicked)
			close_pass();
		growth_pass();
		now = now_ns();
		if (kicked || (cfg->flush_interval && now >= next_pass)) {
			flush_pass(false);
			if (cfg->flush_interval && now >= next_pass)
				next_pass = now_ns() + (uint64_t)cfg->flush_interval * 1000000000ull;
		}
		pthread_mutex_lock(&fl.lock);
	}
	pthread_mutex_unlock(&fl.lock);
	return arg;
}

int flusher_init(void)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&fl.cond);
	pthread_cond_init(&fl.cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&fl.thread, NULL, flusher_thread, NULL);

	if (r)
		return -r;
	fl.running = true;
	return 0;
}

void flusher_kick(void)
{
	pthread_mutex_lock(&fl.lock);
	fl.kicked = true;
	pthread_cond_signal(&fl.cond);
	pthread_mutex_unlock(&fl.lock);
}

/*
 * The MANIFEST record of a rescued file (include/rdmafs/manifest.h): its path below the
 * backing root @root and what identifies it (device, inode, owner, birth time), so that
 * replay, run as root, writes to that same file and no other a user put in its place.
 */
static int rescue_record(FILE *m, const char *name, uint64_t size, struct inode *ino,
			 const char *root)
{
	char path[RDMAFS_MANIFEST_PATH_MAX], esc[4 * RDMAFS_MANIFEST_PATH_MAX];
	size_t rl = strlen(root);
	struct statx stx;
	ssize_t n;
	int fd = inode_fd(ino), r;

	if (fd < 0)
		return fd;
	r = statx(fd, "", AT_EMPTY_PATH, STATX_UID | STATX_NLINK | STATX_BTIME, &stx) < 0 ?
		-errno : 0;
	inode_fd_put(ino);
	if (r)
		return r;
	n = inode_readlink(ino, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = 0;
	/* Below the root and still linked: else no path (the data is kept all the same). */
	if (n <= 0 || !stx.stx_nlink || strncmp(path, root, rl) || path[rl] != '/' ||
	    rdmafs_manifest_escape(path + rl + 1, esc, sizeof(esc)) <= 0)
		strcpy(esc, "/");
	if (!(stx.stx_mask & STATX_BTIME))
		stx.stx_btime.tv_sec = stx.stx_btime.tv_nsec = 0;
	fprintf(m, "file %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %" PRIu64 " %u %s\n", name, size,
		(uint64_t)ino->src_dev, (uint64_t)ino->src_ino, stx.stx_uid,
		(uint64_t)stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec, esc);
	return 0;
}

static int rescue_one(int dirfd, FILE *manifest, struct staged *st, unsigned idx,
		      const char *root)
{
	char name[64];
	uint64_t size = 0, off = 0;
	ssize_t n;
	int fd, r = 0;

	staging_size(st, &size);
	snprintf(name, sizeof(name), "%u.data", idx);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < size) {
		n = pwrite(fd, (char *)st->map + off, MIN(size - off, 1ull << 26), off);
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += n;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r)
		r = rescue_record(manifest, name, size, st->ino, root);
	return r;
}

int flusher_rescue(const char *base)
{
	char dir[4200], root[RDMAFS_MANIFEST_PATH_MAX];
	char root_esc[4 * RDMAFS_MANIFEST_PATH_MAX];
	struct stat dsb;
	ssize_t rn;
	struct staged **v;
	size_t n, saved = 0;
	FILE *manifest;
	int dirfd, r = 0;
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	snprintf(dir, sizeof(dir), "%s/%04d%02d%02d-%02d%02d%02d-%d", base, tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, getpid());
	for (char *p = dir + 1; *p; p++) {	/* mkdir -p */
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(dir, 0700);
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0)
		return -errno;
	/* What we just made, not something put in its place (a user-writable rescue_dir). */
	dirfd = open(dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (fstat(dirfd, &dsb) < 0 || dsb.st_uid != geteuid() || (dsb.st_mode & 077)) {
		log_err("rescue: %s is not the private directory just made", dir);
		close(dirfd);
		return -EPERM;
	}
	rn = inode_readlink(inode_root(), root, sizeof(root) - 1);
	root[rn > 0 ? rn : 0] = 0;
	if (rn <= 0 || rdmafs_manifest_escape(root, root_esc, sizeof(root_esc)) < 0)
		strcpy(root_esc, "/nonexistent");	/* replay then refuses every file */
	int mfd = openat(dirfd, "MANIFEST", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	manifest = mfd >= 0 ? fdopen(mfd, "w") : NULL;
	if (!manifest) {
		close(dirfd);
		return -errno;
	}
	fprintf(manifest, "# rdmafs rescue (see rdmafsctl(8)). Replay: rdmafsctl replay %s\n"
			  "rdmafs-rescue %d\nroot %s %" PRIu64 " %" PRIu64 "\n", dir,
		RDMAFS_MANIFEST_VERSION, root_esc, (uint64_t)inode_root()->src_dev,
		(uint64_t)inode_root()->src_ino);
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];

		if (!st->pending_error && !flusher_is_dirty(st))
			continue;
		pthread_mutex_lock(&st->commit_lock);
		pthread_mutex_lock(&st->lock);
		r = staging_sync_map(st);
		if (!r)
			r = rescue_one(dirfd, manifest, st, i, root);
		pthread_mutex_unlock(&st->lock);
		pthread_mutex_unlock(&st->commit_lock);
		if (r) {
			log_err("rescue ino=%" PRIu64 " into %s: %s", (uint64_t)st->ino->src_ino, dir,
				strerror(-r));
			break;
		}
		saved++;
		log_err("rescue ino=%" PRIu64 ": uncommitted staging saved in %s",
			(uint64_t)st->ino->src_ino, dir);
	}
	staging_put_all(v, n);
	if (fflush(manifest) || fsync(fileno(manifest)))
		r = r ? r : -errno;
	fclose(manifest);
	fsync(dirfd);
	close(dirfd);
	return r ? r : (int)saved;
}

int flusher_shutdown(void)
{
	uint64_t deadline = now_ns() + (uint64_t)cfg->shutdown_timeout * 1000000000ull;
	unsigned delay_ms = 100;
	int r;

	if (fl.running) {
		pthread_mutex_lock(&fl.lock);
		fl.stop = true;
		pthread_cond_signal(&fl.cond);
		pthread_mutex_unlock(&fl.lock);
		pthread_join(fl.thread, NULL);
		fl.running = false;
	}
	/* Commit everything; retry failures until shutdown_timeout. */
	for (;;) {
		size_t n, failed = 0;
		struct staged **v = staging_get_all(&n);

		for (size_t i = 0; v && i < n; i++)
			if (flusher_commit(v[i]))
				failed++;
		staging_put_all(v, n);
		if (!failed) {
			r = 0;
			break;
		}
		if (now_ns() >= deadline) {
			log_err("shutdown: %zu file(s) still cannot be committed; writing them to %s",
				failed, cfg->rescue_dir);
			r = flusher_rescue(cfg->rescue_dir);
			if (r < 0)
				log_err("shutdown: rescue to %s failed: %s; staged data is lost",
					cfg->rescue_dir, strerror(-r));
			r = r < 0 ? r : -EIO;
			break;
		}
		log_warn("shutdown: %zu file(s) not committed, retrying", failed);
		usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 5000u);
	}
	ctx_destroy_all();
	return r;
}
