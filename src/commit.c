// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * commit.c - owns the commit pass: finds changed chunks by fingerprint, snapshots them into
 * bounce buffers, writes the copies with io_uring and fdatasyncs; the pool of rings and
 * bounce buffers it runs on, and the dirty scan (how many bytes a commit would write).
 */
#include "rdmafsd.h"
#include "commit.h"
#include "metrics.h"
#include "ring.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/fs.h>

/*
 * What a commit writes is a copy: changed chunks are read with pread(2) into bounce slots
 * (the snapshot) and the fingerprint recorded is the copy's, so the backing file gets the
 * bytes that were hashed. Finding *which* chunks changed needs no copy: the scan hashes
 * staging in place through the daemon's read-only view (st->map, see view_hash()), at
 * the speed of one core reading memory; a pread copy plus its hash ran at 0.2-0.3 of it
 * (the copy is per-page kernel work: 7.5 GB/s vs 26 GB/s for XXH3 over a mapping on the
 * same bytes, EPYC VM, 2026-12-01). A first touch of the view's pages costs a fault per
 * 4 KiB (1.1 GB/s here), so the view's missing page-table entries are found with
 * PAGEMAP_SCAN and populated in bulk (MADV_POPULATE_READ, 19 GB/s) once; they stay.
 */

/* A ring and its bounce buffers; one per concurrent commit, kept in a pool. */
struct commit_ctx {
	struct ring r;			/* uring_depth slots of slot_bytes() */
	struct ring_free wfree;		/* write records (several runs may share a slot) */
	unsigned nwrites;
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

/* Contexts not in use; a commit takes one and gives it back (ctx_get/ctx_put). */
static struct {
	pthread_mutex_t lock;		/* protects pool */
	struct commit_ctx *pool;
} cpool = { .lock = PTHREAD_MUTEX_INITIALIZER };

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

	pthread_mutex_lock(&cpool.lock);
	c = cpool.pool;
	if (c)
		cpool.pool = c->next;
	pthread_mutex_unlock(&cpool.lock);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	/* Alternating changed and clean chunks give at most per_io / 2 + 1 runs a slot. */
	per_io = slot_bytes() / cfg->chunk_size;
	c->nwrites = MIN(cfg->uring_depth * (per_io / 2 + 1), 4096u);
	r = ring_free_init(&c->wfree, c->nwrites);
	if (!r)
		r = ring_init(&c->r, c->nwrites + 1, cfg->uring_depth, slot_bytes());
	if (r) {
		ring_free_exit(&c->wfree);
		free(c);
		errno = -r;
		return NULL;
	}
	return c;
}

static void ctx_put(struct commit_ctx *c)
{
	pthread_mutex_lock(&cpool.lock);
	c->next = cpool.pool;
	cpool.pool = c;
	pthread_mutex_unlock(&cpool.lock);
}

static void ctx_free(struct commit_ctx *c)
{
	ring_exit(&c->r);
	ring_free_exit(&c->wfree);
	free(c);
}

static void helpers_start(void);
static void helpers_stop(void);

void commit_exit(void)
{
	struct commit_ctx *c;

	helpers_stop();
	pthread_mutex_lock(&cpool.lock);
	while ((c = cpool.pool)) {
		cpool.pool = c->next;
		ctx_free(c);
	}
	pthread_mutex_unlock(&cpool.lock);
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

/*
 * The in-place scan's view: st->map (read-only; private for shmem, so it counts neither
 * as a writer nor as an open). A map fd holder may shrink the memfd while we hash: a load
 * past its end raises SIGBUS. The handler replaces the view being hashed by anonymous
 * zeros (the load is retried and succeeds) and flags it; the scan then fails like a short
 * read and the view is mapped again (the way Wayland compositors read client memory).
 */
#ifndef PAGEMAP_SCAN	/* <linux/fs.h> of Linux >= 6.7; the call is probed at run time */
struct page_region {
	uint64_t start, end, categories;
};

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#endif

static struct {
	pthread_once_t once;
	int pagemap;			/* /proc/self/pagemap; -1: no in-place scan */
	struct sigaction old_bus;	/* SIGBUS disposition before ours */
} view = { .once = PTHREAD_ONCE_INIT, .pagemap = -1 };

/* The view this thread is hashing (one at a time, under that file's commit_lock). */
static __thread char *view_lo, *view_hi;
static __thread volatile sig_atomic_t view_hit;

static void view_sigbus(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;

	if (view_lo && a >= view_lo && a < view_hi &&
	    mmap(view_lo, view_hi - view_lo, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0) != MAP_FAILED) {
		view_hit = 1;
		return;
	}
	/* Not a load of ours: the fault happens again under the previous disposition. */
	sigaction(SIGBUS, &view.old_bus, NULL);
	(void)sig;
	(void)uc;
}

/* Ours over whatever SIGBUS disposition is there (kept for faults that are not ours). */
static int view_arm(void)
{
	struct sigaction sa = { .sa_sigaction = view_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	struct sigaction cur;

	if (sigaction(SIGBUS, NULL, &cur) < 0)
		return -errno;
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == view_sigbus)
		return 0;
	sigemptyset(&sa.sa_mask);
	view.old_bus = cur;
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

static void view_init(void)
{
	struct pm_scan_arg a = { .size = sizeof(a) };
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), r;

	/* An empty range: 0 where the kernel has PAGEMAP_SCAN (>= 6.7). */
	if (fd < 0 || ioctl(fd, PAGEMAP_SCAN, &a) < 0) {
		log_info("commit: no PAGEMAP_SCAN (%s): staging is scanned by copy",
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	r = view_arm();
	if (r) {
		log_err("commit: SIGBUS handler: %s: staging is scanned by copy", strerror(-r));
		close(fd);
		return;
	}
	view.pagemap = fd;
}

void commit_init(void)
{
	helpers_start();
	pthread_once(&view.once, view_init);
	if (view.pagemap >= 0)
		view_arm();	/* again: someone may have set their own since */
}

/*
 * Bytes from @off that may be hashed in place: staging [0, alloc_size) has every page
 * allocated by rdmafs (a populate there creates no page; a hole past it would become a
 * clean shmem page, see staging_mem_alloc()). hugetlb is read by copy.
 */
static uint64_t view_len(struct staged *st, uint64_t off, uint64_t len)
{
	uint64_t end;

	pthread_once(&view.once, view_init);
	if (view.pagemap < 0 || !st->map || st->mode == STAGING_HUGETLB)
		return 0;
	pthread_mutex_lock(&st->lock);
	end = MIN(st->alloc_size, st->map_len);
	pthread_mutex_unlock(&st->lock);
	return off < end ? MIN(len, end - off) : 0;
}

/*
 * 1 if the view's pages of [off, off + len) are all mapped, else 0 after mapping the
 * missing ones for the next scan; -EIO if staging shrank, -errno. A first load through a
 * new page-table entry can cost far more than the copy (6 us per 4 KiB page under this
 * VM's shadow paging, 2026-12-01): a cold block is copied this time and hashed in place
 * from the next scan on.
 */
static int view_warm(struct staged *st, uint64_t off, uint64_t len)
{
	struct page_region reg[32];
	uint64_t pos = (uintptr_t)st->map + ALIGN_DOWN(off, 4096);
	uint64_t end = (uintptr_t)st->map + MIN(ALIGN_UP(off + len, 4096), st->map_len);
	int warm = 1;

	while (pos < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .start = pos, .end = end,
			.vec = (uintptr_t)reg, .vec_len = ARRAY_SIZE(reg),
			.category_inverted = PAGE_IS_PRESENT, .category_mask = PAGE_IS_PRESENT,
			.return_mask = PAGE_IS_PRESENT,
		};
		long n = ioctl(view.pagemap, PAGEMAP_SCAN, &a);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			warm = 0;
			if (madvise((void *)(uintptr_t)reg[i].start, reg[i].end - reg[i].start,
				    MADV_POPULATE_READ) < 0)
				return errno == EFAULT ? -EIO : -errno;	/* past its end */
		}
		pos = a.walk_end;
	}
	return warm;
}

/*
 * Fingerprints of chunks [first, last] of a file of @size bytes, hashed in place through
 * the view (view_warm() mapped them); commit_lock held (the view stays put). 0, or -EIO if
 * staging shrank under us (the view is mapped again at the next staging_sync_map()).
 */
static int view_hash(struct staged *st, uint64_t first, uint64_t last, uint64_t size,
		     uint64_t *fp)
{
	view_hit = 0;
	view_lo = st->map;
	view_hi = (char *)st->map + st->map_len;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	for (uint64_t k = first; k <= last; k++)
		fp[k - first] = dirty_chunk_fp(st->dm, st->map, 0, size, k);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	view_lo = view_hi = NULL;
	if (!view_hit)
		return 0;
	log_err("commit ino=%" PRIu64 ": staging shrank behind the daemon while it was hashed "
		"(a mapped fd was truncated)", (uint64_t)st->ino->src_ino);
	/* Drop the zeros the handler mapped; the next staging_sync_map() maps it again. */
	pthread_mutex_lock(&st->lock);
	munmap(st->map, st->map_len);
	st->map = NULL;
	st->map_len = 0;
	pthread_mutex_unlock(&st->lock);
	return -EIO;
}

static void submit_write(struct commit_ctx *c, struct staged *st, unsigned w, struct wreq *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->r.ring);

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
	r = ring_wait(&c->r, &cqe, true);
	if (r)
		return r;
	unsigned w = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	struct wreq *q = &wr[w];

	io_uring_cqe_seen(&c->r.ring, cqe);
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
	staging_rec_update(st);		/* errseq survives a restart */
	pthread_mutex_unlock(&st->lock);
}

/* Write bookkeeping of one commit (free slots and write records: in the context). */
struct wstate {
	struct wreq *wr;
	unsigned *slot_refs;		/* pending writes per slot */
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
	ring_free_put(&c->wfree, w);
	if (--ws->slot_refs[ws->wr[w].slot] == 0)
		ring_free_put(&c->r.slots, ws->wr[w].slot);
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
	/*
	 * The last block had changes: copy without hashing in place. Nothing committed yet
	 * (a new file, or truncated to 0): every block differs from the backing file, so
	 * hashing in place first would only map pages for nothing (a page-table scan, a
	 * populate and a residency check per block; an evicted new file is unmapped right
	 * after). The copy path checks for lost pages after its read, as for any cold block.
	 */
	bool copy_next = st->committed_size == 0;
	/* A real seal (thp's stand-in cannot stop a stale pin) freezes what this pass reads. */
	bool frozen = st->sealed && st->mode != STAGING_THP;
	/* Committed since its seal: no writer, writable mapping or pin can have touched it
	 * (F_SEAL_WRITE), and truncate or fallocate clear sealed_clean. Nothing to read. */
	bool was_clean = frozen && st->sealed_clean;
	int r;

	if (st->orphan)
		return 0;	/* no backing file left to commit to */
	st->sealed_clean = false;
	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);	/* the size, and the budget charge of growth */
	size = st->size;
	if (!r)
		r = dirty_resize(st->dm, size);
	if (!r && st->lost_from < size)
		r = -EIO;	/* staging lost pages: never commit them (staging_check_lost) */
	if (!r && was_clean && size == st->committed_size && !st->needs_sync &&
	    !st->pending_error) {
		st->sealed_clean = true;
		pthread_mutex_unlock(&st->lock);
		goto out;
	}
	pthread_mutex_unlock(&st->lock);
	if (r)
		goto out;
	cs = dirty_chunk_size(st->dm);
	io = slot_bytes();	/* cs == cfg->chunk_size: the map was made with it */
	nchunks = (size + cs - 1) / cs;
	bits = calloc((nchunks + 63) / 64 + 1, sizeof(*bits));
	newfp = malloc((nchunks + 1) * sizeof(*newfp));
	c = ctx_get();
	if (c) {
		ws.wr = calloc(c->nwrites, sizeof(*ws.wr));
		ws.slot_refs = calloc(c->r.nslots, sizeof(*ws.slot_refs));
		ring_free_reset(&c->wfree);
		ring_free_reset(&c->r.slots);
	}
	if (!bits || !newfp || !c || !ws.wr || !ws.slot_refs) {
		r = -ENOMEM;
		goto out;
	}

	for (uint64_t off = 0; off < size && !ws.err; off += io) {
		uint64_t len = MIN(io, size - off), first = off / cs, last = (off + len - 1) / cs;
		bool viewed = false, any = false;
		unsigned s;
		char *buf;
		ssize_t n;

		/*
		 * Hash in place first; copy only what that found changed. After a block with
		 * changes (a rewrite is usually sequential) the next one is copied at once.
		 */
		if (!copy_next && view_len(st, off, len) == len) {
			/* Before the view maps anything: a page lost there must not come back
			 * as a new zero page (staging_check_lost()). */
			if (staging_check_lost(st, off, len)) {
				ws.err = -EIO;
				break;
			}
			r = view_warm(st, off, len);
			if (r > 0)
				r = view_hash(st, first, last, size, newfp + first);
			else if (!r)
				r = 1;	/* cold: copied below */
			if (r < 0) {
				ws.err = r;
				break;
			}
			viewed = !r;
			for (uint64_t k = first; viewed && k <= last && !any; k++)
				any = dirty_chunk_changed(st->dm, k, newfp[k]);
			if (viewed && !any)
				continue;	/* clean block: nothing copied */
		}
		while (ring_free_empty(&c->r.slots))
			if (!reap(c, st, &ws))
				goto ring_failed;
		s = ring_free_get(&c->r.slots);
		buf = ring_slot(&c->r, s);
		if (!viewed) {
			n = read_staging(st, buf, len, off);
		} else {
			/* The changed runs only, each at its place in the slot. */
			n = len;
			for (uint64_t k = first; k <= last && n == (ssize_t)len;) {
				uint64_t j = k;

				while (j <= last && dirty_chunk_changed(st->dm, j, newfp[j]))
					j++;
				if (j == k) {
					k++;
					continue;
				}
				uint64_t roff = k * cs, rlen = MIN(j * cs, size) - roff;
				ssize_t got = read_staging(st, buf + (roff - off), rlen, roff);

				if (got < 0 || (uint64_t)got < rlen)
					n = got < 0 ? got : (ssize_t)(roff - off + got);
				k = j;
			}
		}
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
		/* The copy's fingerprint is the one recorded: it is what gets written. */
		any = false;
		for (uint64_t k = first; k <= last; k++) {
			if (viewed && !dirty_chunk_changed(st->dm, k, newfp[k]))
				continue;
			newfp[k] = dirty_chunk_fp(st->dm, buf, off, size, k);
			if (dirty_chunk_changed(st->dm, k, newfp[k])) {
				bits[k / 64] |= 1ull << (k % 64);
				changed++;
				any = true;
			}
		}
		copy_next = any;
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
				ws.err = staging_backing_open(st, size);
				if (ws.err)
					break;
			}
			while (ring_free_empty(&c->wfree))
				if (!reap(c, st, &ws))
					goto ring_failed;
			unsigned w = ring_free_get(&c->wfree);
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
			ring_free_put(&c->r.slots, s);	/* clean block: slot free again */
		else
			io_uring_submit(&c->r.ring);
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
	r = staging_backing_open(st, size);
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
	staging_rec_update(st);
	pthread_mutex_unlock(&st->lock);
	log_debug("commit ino=%" PRIu64 ": %" PRIu64 " bytes in %.3f ms",
		  (uint64_t)st->ino->src_ino, written, (now_ns() - t0) / 1e6);
out:
	if (r == -EAGAIN)
		r = 0;	/* raced a resize: the next pass sees the new size */
	if (r == -ESTALE && __atomic_load_n(&st->ino->gone, __ATOMIC_ACQUIRE)) {
		/* Deleted through the mount and its fd could not be kept (inode_keep_fd()):
		 * no name, no descriptor, no one can read it again. Not an error. */
		log_info("commit ino=%" PRIu64 ": backing file deleted: staging not committed, "
			 "kept only for its opens and mappings", (uint64_t)st->ino->src_ino);
		st->orphan = true;
		pthread_mutex_lock(&st->lock);
		st->pending_error = 0;
		st->backoff = 0;
		staging_rec_update(st);
		pthread_mutex_unlock(&st->lock);
		r = 0;
	}
	if (r) {
		if (!st->pending_error || st->pending_error != r)
			log_err("commit ino=%" PRIu64 ": %s (changes stay staged, will retry)",
				(uint64_t)st->ino->src_ino, strerror(-r));
		set_error(st, r);
	}
	if (c)
		ctx_put(c);
	free(ws.wr);
	free(ws.slot_refs);
	free(bits);
	free(newfp);
	return r;
}

int commit_file(struct staged *st)
{
	int r;

	pthread_mutex_lock(&st->commit_lock);
	r = commit_locked(st);
	staging_backing_close(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

/* One commit_each() call: its files, taken in order by the caller and the helpers. */
struct each {
	struct staged **v;
	size_t n, next;		/* next: the next index to take */
	size_t left;		/* files not finished yet */
	void (*fn)(struct staged *st, void *arg);
	void *arg;
	struct each *next_job;	/* in helpers.jobs while it has files not taken */
	bool queued;
};

/*
 * Helpers of commit_each(), started once by commit_init(): a thread started and joined
 * per call cost a clone, its set-up and an exit for every batch, which past 1.5 x
 * resident_max was every create (budget.c make_room() commits two files inline).
 * helpers.lock protects everything here and each queued call's next, left, next_job.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct each *jobs;
	pthread_t t[COMMIT_PARALLEL - 1];
	unsigned started;
	bool stop;
} helpers = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
	      .done = PTHREAD_COND_INITIALIZER };

/* The next file of @e, or SIZE_MAX; helpers.lock held. The last one unqueues @e. */
static size_t each_take(struct each *e)
{
	struct each **pp;

	if (e->next == e->n)
		return SIZE_MAX;
	if (e->next + 1 == e->n && e->queued) {
		for (pp = &helpers.jobs; *pp != e; pp = &(*pp)->next_job)
			;
		*pp = e->next_job;
		e->queued = false;
	}
	return e->next++;
}

/* Runs file @i of @e; helpers.lock held, dropped meanwhile. */
static void each_run(struct each *e, size_t i)
{
	pthread_mutex_unlock(&helpers.lock);
	e->fn(e->v[i], e->arg);
	pthread_mutex_lock(&helpers.lock);
	if (--e->left == 0)
		pthread_cond_broadcast(&helpers.done);
}

static void *each_helper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&helpers.lock);
	while (!helpers.stop) {
		struct each *e = helpers.jobs;

		if (!e) {
			pthread_cond_wait(&helpers.work, &helpers.lock);
			continue;
		}
		each_run(e, each_take(e));
	}
	pthread_mutex_unlock(&helpers.lock);
	return NULL;
}

/* Signals go to the threads that handle them (libfuse's, the flusher's): helpers take
 * none but the synchronous ones (a SIGBUS of the in-place view is the helper's own). */
static void helpers_start(void)
{
	sigset_t all, old;

	if (helpers.started)
		return;
	helpers.stop = false;	/* started again after commit_exit() (unit tests) */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned k = 0; k < COMMIT_PARALLEL - 1; k++)
		if (pthread_create(&helpers.t[helpers.started], NULL, each_helper, NULL) == 0)
			helpers.started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (helpers.started < COMMIT_PARALLEL - 1)
		log_warn("commit: %u of %u helper threads started: fewer commits side by side",
			 helpers.started, COMMIT_PARALLEL - 1);
}

static void helpers_stop(void)
{
	pthread_mutex_lock(&helpers.lock);
	helpers.stop = true;
	pthread_cond_broadcast(&helpers.work);
	pthread_mutex_unlock(&helpers.lock);
	for (unsigned k = 0; k < helpers.started; k++)
		pthread_join(helpers.t[k], NULL);
	helpers.started = 0;
}

/*
 * One fdatasync at a time costs a journal commit (and a device flush) per file: files
 * committed in turn by a pass or a trim of thousands of small files ran at one per
 * fdatasync. Side by side, ext4 and xfs join the waiting fdatasyncs into one journal
 * commit. The caller takes files too, so a call never waits for helpers busy with another
 * call's files: only for its own files a helper already runs.
 */
void commit_each(struct staged **v, size_t n, void (*fn)(struct staged *st, void *arg),
		 void *arg)
{
	struct each e = { .v = v, .n = n, .left = n, .fn = fn, .arg = arg };
	size_t i;

	if (!n)
		return;
	pthread_mutex_lock(&helpers.lock);
	if (n > 1 && helpers.started && !helpers.stop) {
		struct each **pp = &helpers.jobs;

		while (*pp)
			pp = &(*pp)->next_job;
		*pp = &e;
		e.queued = true;
		if (n > 2)
			pthread_cond_broadcast(&helpers.work);
		else
			pthread_cond_signal(&helpers.work);
	}
	while ((i = each_take(&e)) != SIZE_MAX)
		each_run(&e, i);
	while (e.left)
		pthread_cond_wait(&helpers.done, &helpers.lock);
	pthread_mutex_unlock(&helpers.lock);
}

int commit_fd(struct staged *st, uint32_t *seen)
{
	int r = commit_file(st);

	pthread_mutex_lock(&st->lock);
	if (!r && *seen != st->err_seq)
		r = st->err_last;	/* failed since this description last looked */
	*seen = st->err_seq;
	pthread_mutex_unlock(&st->lock);
	return r;
}

uint32_t commit_err_sample(struct staged *st)
{
	uint32_t seq;

	pthread_mutex_lock(&st->lock);
	seq = st->err_seq;
	pthread_mutex_unlock(&st->lock);
	return seq;
}

/*
 * Bytes of @st that differ from what was committed (a shrink not yet applied counts too);
 * stops at the first change when @first_only. commit_lock held; -errno on failure.
 */
static int64_t scan_changed_locked(struct staged *st, bool first_only)
{
	uint64_t size, cs = dirty_chunk_size(st->dm), io, changed = 0, *fps = NULL;
	char *buf = NULL;
	int64_t r;

	if (st->sealed && st->sealed_clean)	/* committed since the seal: no scan */
		return 0;
	if (st->orphan)
		return 0;	/* deleted: nothing to commit to */
	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);
	if (!r)
		r = dirty_resize(st->dm, st->size);
	size = st->size;
	pthread_mutex_unlock(&st->lock);
	/* No more than the file: a stat of the mount scans every staged file, most small. */
	io = MIN(slot_bytes(), ALIGN_UP(size, cs));
	if (!r && size) {
		fps = malloc((io / cs + 1) * sizeof(*fps));
		if (!fps)
			r = -ENOMEM;
	}
	for (uint64_t off = 0; !r && off < size && !(first_only && changed); off += io) {
		uint64_t len = MIN(io, size - off), first = off / cs, last = (off + len - 1) / cs;
		ssize_t n;

		/* In place (commit_locked()), unless a page is lost: a copy reads it as zeros
		 * where the view would bring it back as a new page. */
		if (view_len(st, off, len) == len && !staging_check_lost(st, off, len)) {
			r = view_warm(st, off, len);
			if (r > 0)
				r = view_hash(st, first, last, size, fps);
			else if (!r)
				r = 1;
			for (uint64_t k = first; !r && k <= last; k++)
				if (dirty_chunk_changed(st->dm, k, fps[k - first]))
					changed += MIN(cs, size - k * cs);
			if (r <= 0)
				continue;
			r = 0;	/* cold: copied */
		}
		if (!buf && !(buf = malloc(io))) {
			r = -ENOMEM;
			break;
		}
		n = read_staging(st, buf, len, off);
		if (n < 0 || (uint64_t)n < len) {
			r = n < 0 ? n : -EIO;	/* shrank behind us: not clean */
			break;
		}
		for (uint64_t k = first; k <= last; k++)
			if (dirty_chunk_changed(st->dm, k,
						dirty_chunk_fp(st->dm, buf, off, size, k)))
				changed += MIN(cs, size - k * cs);
	}
	if (!r && st->committed_size != UINT64_MAX && st->committed_size > size)
		changed += st->committed_size - size;
	if (!r && (st->committed_size != size || st->needs_sync) && !changed)
		changed = 1;	/* grown with zeros, a size not applied or not synced yet */
	free(buf);
	free(fps);
	return r ? r : (int64_t)changed;
}

static int64_t scan_changed(struct staged *st, bool first_only)
{
	int64_t r;

	pthread_mutex_lock(&st->commit_lock);
	r = scan_changed_locked(st, first_only);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

bool commit_is_dirty(struct staged *st)
{
	return scan_changed(st, true) != 0;
}

bool commit_is_dirty_locked(struct staged *st)
{
	return scan_changed_locked(st, true) != 0;
}

int64_t commit_dirty_bytes(struct staged *st)
{
	return scan_changed(st, false);
}

