// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * flusher.c - owns write-back: finds changed chunks by fingerprint, snapshots them into
 * bounce buffers, writes the copies with io_uring and fdatasyncs; the periodic thread,
 * retries with backoff, the final commit at shutdown and the rescue folder.
 */
#include "rdmafsd.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A ring and its bounce buffers; one per concurrent commit, kept in a pool. */
struct commit_ctx {
	struct io_uring ring;
	char *bounce;			/* depth slots of io_size bytes, page aligned */
	unsigned depth;
	struct commit_ctx *next;
};

struct slot {
	uint64_t off, len;		/* file range */
	uint64_t done;			/* bytes written so far */
	bool direct;
};

static struct {
	pthread_mutex_t lock;		/* protects pool, stop, kicked */
	pthread_cond_t cond;
	struct commit_ctx *pool;
	bool stop, kicked, running;
	pthread_t thread;
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static struct commit_ctx *ctx_get(void)
{
	struct commit_ctx *c;
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
	c->bounce = mmap(NULL, (size_t)c->depth * cfg->io_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->bounce == MAP_FAILED) {
		free(c);
		return NULL;
	}
	r = io_uring_queue_init(c->depth + 1, &c->ring, 0);
	if (r < 0) {
		munmap(c->bounce, (size_t)c->depth * cfg->io_size);
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

static void ctx_destroy_all(void)
{
	struct commit_ctx *c;

	pthread_mutex_lock(&fl.lock);
	while ((c = fl.pool)) {
		fl.pool = c->next;
		io_uring_queue_exit(&c->ring);
		munmap(c->bounce, (size_t)c->depth * cfg->io_size);
		free(c);
	}
	pthread_mutex_unlock(&fl.lock);
}

static void submit_write(struct commit_ctx *c, struct staged *st, unsigned i, struct slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	char *buf = c->bounce + (size_t)i * cfg->io_size;

	/* The ring has depth + 1 entries and at most depth writes are queued. */
	io_uring_prep_write(sqe, s->direct ? st->dfd : st->bfd, buf + s->done, s->len - s->done,
			    s->off + s->done);
	io_uring_sqe_set_data64(sqe, i);
}

/*
 * Wait for one write; returns its slot index, or -errno of a failed write (the slot is
 * then free too: *slot_out tells which).
 */
static int reap_one(struct commit_ctx *c, struct staged *st, struct slot *slots, unsigned *slot_out)
{
	struct io_uring_cqe *cqe;
	int r;

	*slot_out = UINT32_MAX;
	for (;;) {
		r = io_uring_submit_and_wait(&c->ring, 1);
		if (r < 0 && r != -EINTR)
			return r;
		if (io_uring_peek_cqe(&c->ring, &cqe) == 0)
			break;
	}
	unsigned i = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	struct slot *s = &slots[i];

	io_uring_cqe_seen(&c->ring, cqe);
	*slot_out = i;
	if (res < 0) {
		if (res == -EINVAL && s->direct) {	/* the FS refused this O_DIRECT write */
			s->direct = false;
			submit_write(c, st, i, s);
			return -EAGAIN;
		}
		return res;
	}
	if (res == 0)
		return -ENOSPC;	/* a write that makes no progress: treat as out of space */
	s->done += res;
	if (s->done < s->len) {	/* short write: finish it buffered */
		s->direct = false;
		submit_write(c, st, i, s);
		return -EAGAIN;
	}
	return i;
}

static void set_error(struct staged *st, int err)
{
	pthread_mutex_lock(&st->lock);
	st->stats.failures++;
	st->stats.last_error = err;
	clock_gettime(CLOCK_REALTIME, &st->stats.last_error_time);
	st->pending_error = err;
	st->backoff = st->backoff ? MIN(st->backoff * 2, 60u) : 1;
	clock_gettime(CLOCK_MONOTONIC, &st->next_retry);
	st->next_retry.tv_sec += st->backoff;
	pthread_mutex_unlock(&st->lock);
}

/*
 * One commit pass over @st; commit_lock held. Everything in staging when the scan reads
 * it is written; a chunk changed after its snapshot copy is found again by the next scan
 * (its committed fingerprint is the copy's).
 */
static int commit_locked(struct staged *st)
{
	uint64_t t0 = now_ns(), size, cs, nchunks, changed, *bits = NULL, *newfp = NULL;
	uint64_t written = 0;
	struct commit_ctx *c = NULL;
	struct slot *slots = NULL;
	unsigned *freelist = NULL, nfree, inflight = 0;
	int r, err = 0;

	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);
	size = st->size;
	if (!r)
		r = dirty_resize(st->dm, size);
	pthread_mutex_unlock(&st->lock);
	if (r)
		goto out;
	cs = st->dm->chunk_size;
	nchunks = (size + cs - 1) / cs;
	bits = calloc((nchunks + 63) / 64 + 1, sizeof(*bits));
	newfp = malloc((nchunks + 1) * sizeof(*newfp));
	if (!bits || !newfp) {
		r = -ENOMEM;
		goto out;
	}
	changed = size ? dirty_scan(st->dm, st->map, size, bits) : 0;
	pthread_mutex_lock(&st->lock);
	st->stats.scanned_bytes += size;
	st->stats.changed_bytes += MIN(changed * cs, size);
	pthread_mutex_unlock(&st->lock);
	if (!changed && size == st->committed_size)
		goto out;	/* clean */

	c = ctx_get();
	slots = calloc(cfg->uring_depth, sizeof(*slots));
	freelist = calloc(cfg->uring_depth, sizeof(*freelist));
	if (!c || !slots || !freelist) {
		r = -ENOMEM;
		goto out;
	}
	nfree = c->depth;
	for (unsigned i = 0; i < nfree; i++)
		freelist[i] = i;

	/* Runs of adjacent dirty chunks, cut at io_size, each snapshotted into a slot. */
	uint64_t per_io = MAX((uint64_t)cfg->io_size / cs, 1);

	for (uint64_t i = 0; i < nchunks;) {
		if (!(bits[i / 64] & (1ull << (i % 64)))) {
			i++;
			continue;
		}
		uint64_t j = i + 1;

		while (j < nchunks && j - i < per_io && (bits[j / 64] & (1ull << (j % 64))))
			j++;
		while (!nfree) {
			unsigned done;
			int res = reap_one(c, st, slots, &done);

			if (res == -EAGAIN)
				continue;
			if (done == UINT32_MAX) {	/* the ring itself failed */
				err = res;
				goto ring_failed;
			}
			inflight--;
			freelist[nfree++] = done;
			if (res < 0 && !err)
				err = res;
		}
		if (err)
			break;
		unsigned s = freelist[--nfree];
		char *buf = c->bounce + (size_t)s * cfg->io_size;
		uint64_t off = i * cs, len = MIN(j * cs, size) - off;

		memcpy(buf, (char *)st->map + off, len);
		for (uint64_t k = i; k < j; k++)
			newfp[k] = dirty_chunk_hash(st->dm, buf - off, size, k);
		slots[s] = (struct slot){ .off = off, .len = len,
					  .direct = st->dfd >= 0 && len % 4096 == 0 };
		submit_write(c, st, s, &slots[s]);
		inflight++;
		written += len;
		i = j;
	}
	while (inflight) {
		unsigned done;
		int res = reap_one(c, st, slots, &done);

		if (res == -EAGAIN)
			continue;
		if (done == UINT32_MAX) {
			err = res;
			goto ring_failed;
		}
		inflight--;
		if (res < 0 && !err)
			err = res;
	}
	r = err;
	if (r)
		goto out;
	if (0) {
ring_failed:
		/* Writes may still be in flight into its buffers: never reuse this context. */
		log_err("commit ino=%" PRIu64 ": io_uring: %s", (uint64_t)st->ino->src_ino,
			strerror(-err));
		c = NULL;
		r = err;
		goto out;
	}
	if (size != st->committed_size && ftruncate(st->bfd, size) < 0) {
		r = -errno;
		goto out;
	}
	if (fdatasync(st->bfd) < 0) {
		r = -errno;
		goto out;
	}
	/* Durable: the snapshots become the committed content. */
	pthread_mutex_lock(&st->lock);
	for (uint64_t i = 0; i < nchunks; i++)
		if (bits[i / 64] & (1ull << (i % 64)))
			dirty_set(st->dm, i, newfp[i]);
	st->committed_size = size;
	st->stats.committed_bytes += written;
	st->stats.commit_ns += now_ns() - t0;
	st->stats.commits++;
	clock_gettime(CLOCK_REALTIME, &st->stats.last_commit);
	st->pending_error = 0;
	st->backoff = 0;
	pthread_mutex_unlock(&st->lock);
	log_debug("commit ino=%" PRIu64 ": %" PRIu64 " bytes in %.3f ms",
		  (uint64_t)st->ino->src_ino, written, (now_ns() - t0) / 1e6);
out:
	if (r) {
		if (!st->pending_error || st->pending_error != r)
			log_err("commit ino=%" PRIu64 ": %s (changes stay staged, will retry)",
				(uint64_t)st->ino->src_ino, strerror(-r));
		set_error(st, r);
	}
	if (c)
		ctx_put(c);
	free(slots);
	free(freelist);
	free(bits);
	free(newfp);
	return r;
}

int flusher_commit(struct staged *st)
{
	int r;

	pthread_mutex_lock(&st->commit_lock);
	r = commit_locked(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

bool flusher_is_dirty(struct staged *st)
{
	uint64_t size, cs = st->dm->chunk_size, *bits;
	bool dirty = true;

	pthread_mutex_lock(&st->commit_lock);
	pthread_mutex_lock(&st->lock);
	if (staging_sync_map(st) == 0 && dirty_resize(st->dm, st->size) == 0) {
		size = st->size;
		bits = calloc((size / cs + 1 + 63) / 64 + 1, sizeof(*bits));
		if (bits) {
			dirty = (size && dirty_scan(st->dm, st->map, size, bits)) ||
				size != st->committed_size;
			free(bits);
		}
	}
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_unlock(&st->commit_lock);
	return dirty;
}

int64_t flusher_dirty_bytes(struct staged *st)
{
	uint64_t size, cs = st->dm->chunk_size, *bits, changed = 0;
	int64_t r;

	pthread_mutex_lock(&st->commit_lock);
	pthread_mutex_lock(&st->lock);
	r = staging_sync_map(st);
	if (!r)
		r = dirty_resize(st->dm, st->size);
	size = st->size;
	bits = r ? NULL : calloc((size / cs + 1 + 63) / 64 + 1, sizeof(*bits));
	if (!r && !bits)
		r = -ENOMEM;
	if (!r && size && dirty_scan(st->dm, st->map, size, bits)) {
		for (uint64_t i = 0; i * cs < size; i++)
			if (bits[i / 64] & (1ull << (i % 64)))
				changed += MIN(cs, size - i * cs);
	}
	/* A shrink not yet applied to the backing file is a change too. */
	if (!r && st->committed_size != UINT64_MAX && st->committed_size > size)
		changed += st->committed_size - size;
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_unlock(&st->commit_lock);
	free(bits);
	return r ? r : (int64_t)changed;
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
 * One periodic pass: commit what may have changed, then freeze and drop staging that no
 * open, mapping, pin or lease can write any more.
 */
static void flush_pass(bool all)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];
		struct inode *ino = st->ino;
		bool sealed;

		/* Sealed: nobody can have written it, no scan. A leased file is never
		 * sealed (its holder's DMA sets no dirty bit): it is scanned every pass. */
		if (st->sealed && !st->pending_error && !all && !lease_count(st))
			goto idle;
		if (!all && !retry_due(st))
			continue;
		flusher_commit(st);
idle:
		pthread_mutex_lock(&ino->lock);
		sealed = ino->st == st && staging_try_seal(st);
		pthread_mutex_unlock(&ino->lock);
		if (sealed && flusher_commit(st) == 0)
			staging_release_if_idle(st);
	}
	staging_put_all(v, n);
}

static void *flusher_thread(void *arg)
{
	pthread_mutex_lock(&fl.lock);
	while (!fl.stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += cfg->flush_interval ? cfg->flush_interval : 3600;
		while (!fl.stop && !fl.kicked)
			if (pthread_cond_timedwait(&fl.cond, &fl.lock, &ts) == ETIMEDOUT)
				break;
		if (fl.stop)
			break;
		bool kicked = fl.kicked;

		fl.kicked = false;
		pthread_mutex_unlock(&fl.lock);
		if (cfg->flush_interval || kicked)
			flush_pass(false);
		pthread_mutex_lock(&fl.lock);
	}
	pthread_mutex_unlock(&fl.lock);
	return arg;
}

int flusher_init(void)
{
	int r = pthread_create(&fl.thread, NULL, flusher_thread, NULL);

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

static int rescue_one(int dirfd, FILE *manifest, struct staged *st, unsigned idx)
{
	char name[64], path[4096], proc[64];
	uint64_t size = 0, off = 0;
	ssize_t n;
	int fd, r = 0;

	n = readlink(inode_proc_path(st->ino, proc), path, sizeof(path) - 1);
	if (n < 0)
		return -errno;
	path[n] = 0;
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
		fprintf(manifest, "%s\t%" PRIu64 "\t%s\n", name, size, path);
	return r;
}

int flusher_rescue(const char *base)
{
	char dir[4200];
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
	dirfd = open(dir, O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	int mfd = openat(dirfd, "MANIFEST", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	manifest = mfd >= 0 ? fdopen(mfd, "w") : NULL;
	if (!manifest) {
		close(dirfd);
		return -errno;
	}
	fprintf(manifest, "# rdmafs rescue: data file, size, backing path. "
			  "Replay: rdmafsctl replay %s\n", dir);
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];

		if (!st->pending_error && !flusher_is_dirty(st))
			continue;
		pthread_mutex_lock(&st->commit_lock);
		pthread_mutex_lock(&st->lock);
		r = staging_sync_map(st);
		if (!r)
			r = rescue_one(dirfd, manifest, st, i);
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
