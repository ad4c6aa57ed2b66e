// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_staging.c - owns staged files: the shared memory (memfd) that holds a file's bytes
 * while it is open for writing, its fill from the backing file, resize and hole punch
 * applied to staging and backing alike, sealing of files nobody can write, the memory budget.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;		/* protects the list, every st->refs, used */
	struct staged *head;
	uint64_t used;			/* bytes of staging charged against the budget */
	size_t count;
} slist = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t page_size_of(struct staged *st)
{
	return st->page_size ? st->page_size : 4096;
}

int staging_init(void)
{
	return 0;
}

void staging_exit(void)
{
}

uint64_t staging_bytes_used(void)
{
	uint64_t u;

	pthread_mutex_lock(&slist.lock);
	u = slist.used;
	pthread_mutex_unlock(&slist.lock);
	return u;
}

void staging_charge(int64_t delta)
{
	pthread_mutex_lock(&slist.lock);
	slist.used += delta;
	pthread_mutex_unlock(&slist.lock);
}

/* Reserve @bytes against the budget; -ENOSPC if it does not fit. */
static int budget_reserve(uint64_t bytes)
{
	int r = 0;

	pthread_mutex_lock(&slist.lock);
	if (slist.used + bytes > cfg->staging_budget)
		r = -ENOSPC;
	else
		slist.used += bytes;
	pthread_mutex_unlock(&slist.lock);
	return r;
}

int staging_size(struct staged *st, uint64_t *size)
{
	struct stat sb;

	if (fstat(st->memfd, &sb) < 0)
		return -errno;
	*size = sb.st_size;
	return 0;
}

/* Open the memfd read-only: a mapping of it has no VM_MAYWRITE and so does not block
 * F_SEAL_WRITE (the seal is how we learn that no writable mapping or pin is left). */
static int map_ro(struct staged *st, uint64_t size)
{
	char path[64];
	int fd;
	void *p;

	if (st->map) {
		munmap(st->map, st->map_len);
		st->map = NULL;
		st->map_len = 0;
	}
	if (!size)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", st->memfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size = ALIGN_UP(size, page_size_of(st));
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	st->map = p;
	st->map_len = size;
	return 0;
}

int staging_sync_map(struct staged *st)
{
	uint64_t size;
	int r = staging_size(st, &size);

	if (r)
		return r;
	st->size = size;
	if (size <= st->map_len && st->map_len - size < page_size_of(st) && (size || !st->map))
		return 0;
	return map_ro(st, size);
}

static int open_backing(struct inode *ino, int flags)
{
	char path[64];

	return open(inode_proc_path(ino, path), flags | O_CLOEXEC);
}

/* O_DIRECT fd on the backing file if the filesystem supports it and config allows. */
static int open_direct(struct inode *ino)
{
	struct statx stx;
	int fd;

	if (cfg->direct_io == TRI_OFF)
		return -1;
	if (statx(ino->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) &&
	    (!stx.stx_dio_offset_align || stx.stx_dio_offset_align > 4096 ||
	     stx.stx_dio_mem_align > 4096))
		return -1;	/* no O_DIRECT, or alignment stricter than a page */
	fd = open_backing(ino, O_RDWR | O_DIRECT);
	if (fd < 0 && cfg->direct_io == TRI_ON)
		log_warn("ino=%" PRIu64 ": direct_io=on but O_DIRECT open failed: %s",
			 (uint64_t)ino->src_ino, strerror(errno));
	return fd;
}

static int new_memfd(struct staged *st, uint64_t size)
{
	int fd = memfd_create("rdmafs-staging", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (size && ftruncate(fd, size) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	(void)st;
	return fd;
}

/*
 * Fill staging from the backing file: io_uring reads straight into a temporary writable
 * mapping (O_DIRECT where possible), fingerprinting each chunk as its read completes so
 * hashing overlaps the I/O still in flight.
 */
static int fill(struct staged *st, uint64_t size)
{
	struct dirty_map *dm = st->dm;
	uint64_t cs = dm->chunk_size, io = MAX((uint64_t)cfg->io_size, cs);
	uint64_t direct_end = st->dfd >= 0 ? ALIGN_DOWN(size, 4096) : 0;
	unsigned depth = cfg->uring_depth, inflight = 0, nfree = depth;
	struct req { uint64_t off, len; } *req;
	unsigned *freelist;
	uint64_t next = 0;
	struct io_uring ring;
	char *wmap;
	int r;

	if (!size)
		return 0;
	req = calloc(depth, sizeof(*req));
	freelist = calloc(depth, sizeof(*freelist));
	if (!req || !freelist) {
		r = -ENOMEM;
		goto out_free;
	}
	for (unsigned i = 0; i < depth; i++)
		freelist[i] = i;
	wmap = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
	if (wmap == MAP_FAILED) {
		r = -errno;
		goto out_free;
	}
	r = io_uring_queue_init(depth, &ring, 0);
	if (r < 0)
		goto out_unmap;
	while (next < size || inflight) {
		struct io_uring_cqe *cqe;

		while (next < size && nfree) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			unsigned slot;
			int fd;

			if (!sqe)
				break;
			slot = freelist[--nfree];
			req[slot].off = next;
			if (next < direct_end) {
				req[slot].len = MIN(io, direct_end - next);
				fd = st->dfd;
			} else {
				req[slot].len = MIN(io, size - next);
				fd = st->bfd;
			}
			io_uring_prep_read(sqe, fd, wmap + next, req[slot].len, next);
			io_uring_sqe_set_data64(sqe, slot);
			next += req[slot].len;
			inflight++;
		}
		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0)
			goto out_drain;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			unsigned slot = io_uring_cqe_get_data64(cqe);
			uint64_t off = req[slot].off, end = off + req[slot].len;
			int res = cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			freelist[nfree++] = slot;
			if (res < 0) {
				r = res;
				goto out_drain;
			}
			if (res == 0) {	/* file shrank under us */
				r = -EIO;
				goto out_drain;
			}
			if (off + res < end) {	/* short read: fetch the rest synchronously */
				ssize_t n = pread(st->bfd, wmap + off + res, end - off - res, off + res);

				if (n != (ssize_t)(end - off - res)) {
					r = n < 0 ? -errno : -EIO;
					goto out_drain;
				}
			}
			/* Chunks wholly inside this read are final: hash them while the
			 * other reads are in flight. */
			for (uint64_t i = (off + cs - 1) / cs; i * cs < end; i++)
				if (MIN((i + 1) * cs, size) <= end)
					dirty_set(dm, i, dirty_chunk_hash(dm, wmap, size, i));
		}
	}
	/* A chunk split between two reads (at the direct/buffered boundary) is hashed now. */
	for (uint64_t i = 0; i < dm->nchunks; i++)
		if (dm->fp[i] == DIRTY_FP_NONE)
			dirty_set(dm, i, dirty_chunk_hash(dm, wmap, size, i));
	r = 0;
	goto out_ring;
out_drain:
	while (inflight) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
	}
out_ring:
	io_uring_queue_exit(&ring);
out_unmap:
	munmap(wmap, size);
out_free:
	free(req);
	free(freelist);
	return r;
}

static void list_add(struct staged *st)
{
	pthread_mutex_lock(&slist.lock);
	st->next = slist.head;
	st->prev = NULL;
	if (slist.head)
		slist.head->prev = st;
	slist.head = st;
	slist.count++;
	st->refs = 1;	/* the list's reference */
	pthread_mutex_unlock(&slist.lock);
}

static void staged_free(struct staged *st)
{
	if (st->map)
		munmap(st->map, st->map_len);
	if (st->memfd >= 0)
		close(st->memfd);
	if (st->bfd >= 0)
		close(st->bfd);
	if (st->dfd >= 0)
		close(st->dfd);
	dirty_destroy(st->dm);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->commit_lock);
	if (st->ino)
		inode_unref(st->ino);
	free(st);
}

void staging_get(struct staged *st)
{
	pthread_mutex_lock(&slist.lock);
	st->refs++;
	pthread_mutex_unlock(&slist.lock);
}

void staging_put(struct staged *st)
{
	bool last;

	pthread_mutex_lock(&slist.lock);
	last = --st->refs == 0;
	pthread_mutex_unlock(&slist.lock);
	if (last)
		staged_free(st);
}

struct staged **staging_get_all(size_t *n)
{
	struct staged **v, *st;
	size_t i = 0;

	pthread_mutex_lock(&slist.lock);
	v = calloc(slist.count + 1, sizeof(*v));
	if (v) {
		for (st = slist.head; st; st = st->next) {
			st->refs++;
			v[i++] = st;
		}
	}
	pthread_mutex_unlock(&slist.lock);
	*n = i;
	return v;
}

void staging_put_all(struct staged **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		staging_put(v[i]);
	free(v);
}

int staging_create(struct inode *ino, struct staged **out)
{
	uint64_t t0 = now_ns(), size, charge;
	struct staged *st;
	struct stat sb;
	int r;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->memfd = st->bfd = st->dfd = -1;
	st->mode = STAGING_SHMEM;
	st->page_size = sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->commit_lock, NULL);
	st->bfd = open_backing(ino, O_RDWR);
	if (st->bfd < 0) {
		r = -errno;
		goto err_free;
	}
	if (fstat(st->bfd, &sb) < 0) {
		r = -errno;
		goto err_free;
	}
	size = sb.st_size;
	charge = ALIGN_UP(size, page_size_of(st));
	r = budget_reserve(charge);
	if (r)
		goto err_free;
	st->dfd = open_direct(ino);
	st->dm = dirty_create(cfg->chunk_size);
	if (!st->dm) {
		r = -ENOMEM;
		goto err_uncharge;
	}
	r = dirty_resize(st->dm, size);
	if (r)
		goto err_uncharge;
	r = new_memfd(st, size);
	if (r < 0)
		goto err_uncharge;
	st->memfd = r;
	r = fill(st, size);
	if (r) {
		log_err("stage ino=%" PRIu64 ": fill of %" PRIu64 " bytes failed: %s",
			(uint64_t)ino->src_ino, size, strerror(-r));
		goto err_uncharge;
	}
	r = map_ro(st, size);
	if (r)
		goto err_uncharge;
	st->size = st->committed_size = size;
	st->last_use = now_ns();
	st->ino = ino;
	inode_ref(ino);
	list_add(st);
	*out = st;
	uint64_t dt = now_ns() - t0;

	log_debug("staged ino=%" PRIu64 " size=%" PRIu64 " in %.3f ms (%.0f MB/s, %s)",
		  (uint64_t)ino->src_ino, size, dt / 1e6, dt ? size * 1e3 / dt : 0.0,
		  st->dfd >= 0 ? "direct" : "buffered");
	return 0;

err_uncharge:
	staging_charge(-(int64_t)charge);
err_free:
	staged_free(st);
	return r;
}

/* Take @st off its inode and the list; ino->lock held. The caller's refs stay valid. */
static void staging_detach(struct staged *st)
{
	uint64_t charge = ALIGN_UP(st->size, page_size_of(st));

	st->ino->st = NULL;
	pthread_mutex_lock(&slist.lock);
	if (st->prev)
		st->prev->next = st->next;
	else
		slist.head = st->next;
	if (st->next)
		st->next->prev = st->prev;
	slist.count--;
	slist.used -= MIN(charge, slist.used);
	pthread_mutex_unlock(&slist.lock);
	staging_put(st);	/* the list's reference */
}

bool staging_try_seal(struct staged *st)
{
	int r;

	if (st->sealed)
		return true;
	/* A leased file stays writable (its pin holder may write through DMA at any time),
	 * so the flusher keeps scanning it and it is never dropped. */
	if (st->ino->nopen || lease_count(st))
		return false;
	/* Fails with EBUSY while a writable shared mapping or a page pin remains. */
	r = fcntl(st->memfd, F_ADD_SEALS, F_SEAL_WRITE);
	if (r == 0) {
		st->sealed = true;
		log_debug("sealed ino=%" PRIu64, (uint64_t)st->ino->src_ino);
		return true;
	}
	if (errno != EBUSY)
		log_warn("seal ino=%" PRIu64 ": %s", (uint64_t)st->ino->src_ino, strerror(errno));
	return false;
}

int staging_unseal(struct staged *st)
{
	uint64_t size = 0;
	loff_t in = 0, out = 0;
	int fd, r;

	if (!st->sealed)
		return 0;
	r = staging_size(st, &size);
	if (r)
		return r;
	fd = new_memfd(st, size);
	if (fd < 0)
		return fd;
	while ((uint64_t)in < size) {
		ssize_t n = copy_file_range(st->memfd, &in, fd, &out, size - in, 0);

		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			close(fd);
			log_err("unseal ino=%" PRIu64 ": copy: %s", (uint64_t)st->ino->src_ino,
				strerror(-r));
			return r;
		}
	}
	pthread_mutex_lock(&st->lock);
	close(st->memfd);
	st->memfd = fd;
	st->sealed = false;
	r = map_ro(st, size);
	pthread_mutex_unlock(&st->lock);
	return r;
}

bool staging_release_if_idle(struct staged *st)
{
	struct inode *ino = st->ino;
	bool dropped = false;

	pthread_mutex_lock(&ino->lock);
	if (ino->st == st && !ino->nopen && !lease_count(st) && st->sealed && !st->pending_error &&
	    !flusher_is_dirty(st)) {
		staging_detach(st);
		dropped = true;
	}
	pthread_mutex_unlock(&ino->lock);
	return dropped;
}

/* Committed fingerprints after [old, new) became zeros in staging and backing alike. */
static void zero_range_fps(struct staged *st, uint64_t start, uint64_t end, uint64_t size)
{
	struct dirty_map *dm = st->dm;
	uint64_t cs = dm->chunk_size;
	static const char zeros[64 << 10];
	char *buf = NULL;

	for (uint64_t i = start / cs; i * cs < end && i < dm->nchunks; i++) {
		uint64_t cstart = i * cs, clen = MIN(cs, size - cstart);

		if (cstart < start || cstart + clen > end) {
			dirty_invalidate(dm, i, i);	/* partly covered: rewrite it */
			continue;
		}
		if (clen <= sizeof(zeros)) {
			dirty_set(dm, i, dirty_hash(zeros, clen));
			continue;
		}
		if (!buf)
			buf = calloc(1, cs);
		if (buf)
			dirty_set(dm, i, dirty_hash(buf, clen));
		else
			dirty_invalidate(dm, i, i);
	}
	free(buf);
}

/* ino->lock not needed: commit_lock makes us the only one touching backing and map. */
int staging_truncate(struct staged *st, uint64_t size)
{
	uint64_t old, cs = st->dm->chunk_size;
	bool broke = false;
	int r;

	/*
	 * Shrinking frees pages a pin may hold: the holders unpin first. The wait is outside
	 * commit_lock: a dying holder's close (FUSE FLUSH -> commit) and the flusher must not
	 * wait for us. Until lease_break_done() no new lease can be taken.
	 */
	r = staging_size(st, &old);
	if (!r && size < old) {
		r = lease_break(st, "truncate");
		broke = !r;
	}
	if (r)
		return r;
	pthread_mutex_lock(&st->commit_lock);
	r = staging_size(st, &old);
	if (r)
		goto out;
	if (size < old && !broke) {	/* it grew since we looked: break first */
		pthread_mutex_unlock(&st->commit_lock);
		return staging_truncate(st, size);
	}
	if (size > old) {
		r = budget_reserve(ALIGN_UP(size, page_size_of(st)) - ALIGN_UP(old, page_size_of(st)));
		if (r)
			goto out;
	}
	if (ftruncate(st->memfd, size) < 0) {
		r = -errno;
		goto out;
	}
	if (ftruncate(st->bfd, size) < 0) {
		r = -errno;
		log_err("truncate ino=%" PRIu64 " backing to %" PRIu64 ": %s",
			(uint64_t)st->ino->src_ino, size, strerror(-r));
		/* Staging has the new size; the next commit sets the backing size. */
		st->committed_size = UINT64_MAX;
	}
	if (size < old)
		staging_charge(-(int64_t)(ALIGN_UP(old, page_size_of(st)) -
					  ALIGN_UP(size, page_size_of(st))));
	pthread_mutex_lock(&st->lock);
	if (!r)
		st->committed_size = size;
	if (size < old) {
		st->dm->nchunks = MIN(st->dm->nchunks, (size + cs - 1) / cs);
		if (size % cs)
			dirty_invalidate(st->dm, size / cs, size / cs);
	} else {
		dirty_resize(st->dm, size);
		zero_range_fps(st, old, size, size);
	}
	r = map_ro(st, size);
	st->size = size;
	pthread_mutex_unlock(&st->lock);
out:
	if (broke)
		lease_break_done(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

int staging_fallocate(struct staged *st, int mode, off_t off, off_t len)
{
	uint64_t old, end = off + len;
	bool broke = false;
	int r;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;	/* collapse/insert would move pinned pages */
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		/* Both free the staging pages of the range (shmem zeroes by punching); the
		 * holders unpin first, outside commit_lock as in staging_truncate(). */
		r = lease_break(st, mode & FALLOC_FL_PUNCH_HOLE ? "punch hole" : "zero range");
		if (r)
			return r;
		broke = true;
	}
	pthread_mutex_lock(&st->commit_lock);
	r = staging_size(st, &old);
	if (r)
		goto out;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		/* shmem has no ZERO_RANGE: punching gives the same zeros. */
		if (fallocate(st->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
			r = -errno;
			goto out;
		}
		if (fallocate(st->bfd, mode, off, len) < 0 &&
		    fallocate(st->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
			/* Backing keeps old bytes there: mark the range for rewrite. */
			pthread_mutex_lock(&st->lock);
			dirty_invalidate(st->dm, off / st->dm->chunk_size,
					 (end - 1) / st->dm->chunk_size);
			pthread_mutex_unlock(&st->lock);
			goto grow;
		}
		pthread_mutex_lock(&st->lock);
		zero_range_fps(st, off, MIN(end, old), old);
		pthread_mutex_unlock(&st->lock);
	} else {
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > old) {
			r = budget_reserve(ALIGN_UP(end, page_size_of(st)) - ALIGN_UP(old, page_size_of(st)));
			if (r)
				goto out;
		}
		if (fallocate(st->memfd, mode, off, len) < 0) {
			r = -errno;
			goto out;
		}
		/* Reserve the disk space too: that is why applications preallocate. */
		if (fallocate(st->bfd, mode, off, len) < 0 && errno != EOPNOTSUPP) {
			r = -errno;
			goto out;
		}
	}
grow:
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > old) {
		if (ftruncate(st->memfd, end) < 0 && !r)
			r = -errno;
		if (ftruncate(st->bfd, end) < 0 && !r)
			r = -errno;
		pthread_mutex_lock(&st->lock);
		dirty_resize(st->dm, end);
		zero_range_fps(st, old, end, end);
		if (!r)
			st->committed_size = end;
		pthread_mutex_unlock(&st->lock);
	}
out:
	if (broke)
		lease_break_done(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}
