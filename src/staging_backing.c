// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_backing.c - owns the backing-file side of a staged file: its descriptors
 * (buffered and O_DIRECT, opened on demand), the stager lock (one rdmafs stages a file),
 * what the backing file looked like after the fill or the last commit, and the fill of new
 * staging from it (io_uring reads into bounce slots, fingerprinted as they land).
 */
#include "rdmafsd.h"
#include "ring.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* A new fd on the backing file, or -errno. */
int staging_open_backing(struct inode *ino, int flags)
{
	return inode_open(ino, flags);
}

/*
 * O_DIRECT fd on the backing file if the filesystem supports it and config allows. Not on
 * NFS unless direct_io=on: there an O_DIRECT write is a synchronous WRITE RPC per request
 * and drops the client's cached pages, while buffered writes go out in parallel and the
 * fdatasync is one COMMIT.
 */
static int open_direct(struct inode *ino)
{
	struct statx stx;
	struct statfs sfs;
	int fd, ifd;
	bool no;

	if (cfg->direct_io == TRI_OFF)
		return -1;
	ifd = inode_fd(ino);
	if (ifd < 0)
		return -1;
	no = (cfg->direct_io == TRI_AUTO && fstatfs(ifd, &sfs) == 0 &&
	      sfs.f_type == NFS_SUPER_MAGIC) ||
	     (statx(ifd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	      (stx.stx_mask & STATX_DIOALIGN) &&
	      (!stx.stx_dio_offset_align || stx.stx_dio_offset_align > 4096 ||
	       stx.stx_dio_mem_align > 4096));
	inode_fd_put(ino);
	if (no)
		return -1;	/* no O_DIRECT, or alignment stricter than a page */
	fd = staging_open_backing(ino, O_RDWR | O_DIRECT);
	if (fd < 0 && cfg->direct_io == TRI_ON)
		log_warn("ino=%" PRIu64 ": direct_io=on but O_DIRECT open failed: %s",
			 (uint64_t)ino->src_ino, strerror(-fd));
	return fd < 0 ? -1 : fd;
}

/*
 * The backing file is opened when staging needs it (fill, commit, truncate, fallocate)
 * and closed after: a staged file costs the daemon one descriptor, its memfd.
 *
 * O_DIRECT only for files of STAGING_DIRECT_MIN bytes or more (direct_io=auto): a small
 * file's commit is a few chunks, and a synchronous device write per chunk before the
 * fdatasync cost twice a buffered write + fdatasync (benchtool stress, files up to
 * 272 KiB: fsync median 6.1 vs 3.8 ms), besides the statfs, statx and second open that
 * finding out whether O_DIRECT works costs at every commit. Truncate and fallocate
 * (@size 0) never need it.
 */
int staging_backing_open(struct staged *st, uint64_t size)
{
	if (st->bfd >= 0)
		return 0;
	st->bfd = staging_open_backing(st->ino, O_RDWR);
	if (st->bfd < 0) {
		int r = st->bfd;

		st->bfd = -1;
		return r;
	}
	if (size >= STAGING_DIRECT_MIN || (size && cfg->direct_io == TRI_ON))
		st->dfd = open_direct(st->ino);
	return 0;
}

void staging_backing_close(struct staged *st)
{
	if (st->dfd >= 0)
		close(st->dfd);
	if (st->bfd >= 0)
		close(st->bfd);
	st->bfd = st->dfd = -1;
}

/* The buffered backing fd, opened if needed; -1 with errno if it cannot be. */
int staging_backing_fd(struct staged *st)
{
	int r = staging_backing_open(st, 0);

	if (r) {
		errno = -r;
		return -1;
	}
	return st->bfd;
}

/*
 * A new staging file of st->mode holding @size zero bytes; the fd or -errno. @alloc: its
 * pages are allocated now; else (shmem) only sized: the caller writes every byte with
 * write(2), which allocates each page dirty (staging_fill()).
 */
int staging_new_memfd(struct staged *st, uint64_t size, bool alloc)
{
	int fd = staging_mem_create(st), r;

	if (fd < 0)
		return fd;
	if (!size)
		r = 0;		/* a new memfd is empty */
	else if (!alloc && st->mode == STAGING_SHMEM)
		r = ftruncate(fd, size) < 0 ? -errno : 0;
	else
		r = staging_mem_resize(st, fd, 0, size, false);	/* the caller writes every byte */
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

#define FILL_COPY (1ull << 32)	/* user data of a fill's copy into staging */

/* pwrite all of @len bytes; 0 or -1 with errno. */
static int pwrite_full(int fd, const char *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * One fill's ring and bounce slots kept for the next fill: setting up uring_depth *
 * io_size bytes of slots again cost each fill a mapping and, where THP is off, a first
 * touch trap per 4 KiB page (ring.c: ~0.15 s for 16 MiB here; a 128 MiB fill is ~0.1 s).
 */
static struct {
	pthread_mutex_t lock;		/* protects ring */
	struct ring *ring;		/* parked: all slots free, nothing in flight */
} fill_spare = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int fill_ring_get(struct ring **out, unsigned depth, size_t slot_len)
{
	struct ring *rp;
	int r;

	pthread_mutex_lock(&fill_spare.lock);
	rp = fill_spare.ring;
	if (rp && rp->nslots == depth && rp->slot_len == slot_len)
		fill_spare.ring = NULL;
	else
		rp = NULL;
	pthread_mutex_unlock(&fill_spare.lock);
	if (rp) {
		*out = rp;
		return 0;
	}
	rp = malloc(sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	r = ring_init(rp, depth, depth, slot_len);
	if (r) {
		free(rp);
		return r;
	}
	*out = rp;
	return 0;
}

/* Park @rp for the next fill if @reuse (it drained cleanly) and none is parked; else free. */
static void fill_ring_put(struct ring *rp, bool reuse)
{
	if (!rp)
		return;
	if (reuse && rp->slot_len) {
		ring_free_reset(&rp->slots);
		pthread_mutex_lock(&fill_spare.lock);
		if (!fill_spare.ring) {
			fill_spare.ring = rp;
			rp = NULL;
		}
		pthread_mutex_unlock(&fill_spare.lock);
	}
	if (rp) {
		ring_exit(rp);
		free(rp);
	}
}

/*
 * Fill staging from the backing file with io_uring reads (O_DIRECT where possible) into
 * bounce slots; each completed read is fingerprinted while other reads are in flight and
 * copied into staging with pwrite(2). Reading straight into a mapping of staging would
 * save that copy but pays a page-table fault per 4 KiB when the hash first touches it
 * (measured: 1 GiB in ~2.5 s vs ~0.2 s for the copy). Huge-page staging (thp, hugetlb) is
 * filled through a mapping: 2 MiB pages fault 512 times less, and hugetlbfs has no write(2).
 */
int staging_fill(struct staged *st, uint64_t size)
{
	struct dirty_map *dm = st->dm;
	uint64_t cs = dirty_chunk_size(dm), io = MAX((uint64_t)cfg->io_size, cs);
	uint64_t direct_end = st->dfd >= 0 ? ALIGN_DOWN(size, 4096) : 0;
	unsigned depth = cfg->uring_depth, inflight = 0;
	struct req { uint64_t off, len; } *req;
	uint64_t next = 0, maplen = ALIGN_UP(size, staging_page_size(st));
	bool via_map = staging_page_size(st) > 4096;	/* huge pages: few faults */
	struct ring *rp = NULL;
	char *wmap = NULL;
	int r;

	if (!size)
		return 0;
	req = calloc(depth, sizeof(*req));
	if (!req)
		return -ENOMEM;
	/* Huge pages were allocated by staging_new_memfd() (dirty, so never dropped), which is
	 * ~3x faster than faulting them in one by one under the direct reads (measured:
	 * 1 GiB cold fill 0.8 -> 2.5 GB/s). Shmem pages are allocated by the copy's write(2)
	 * (dirty too): a fallocate first cost 0.4-0.6 s/GiB and made the copy no faster. The
	 * fill writes every byte: all uptodate. */
	if (via_map) {
		wmap = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
		if (wmap == MAP_FAILED) {
			r = -errno;
			goto out_free;
		}
	}
	/* Bounce slots only without the mapping: reads land in staging itself then. */
	r = fill_ring_get(&rp, depth, via_map ? 0 : io);
	if (r == -EMFILE) {
		inode_fd_reclaim();	/* a ring is a descriptor: idle cached ones go first */
		r = fill_ring_get(&rp, depth, via_map ? 0 : io);
	}
	if (r < 0)
		goto out_unmap;
	while (next < size || inflight) {
		struct io_uring_cqe *cqe;

		while (next < size && !ring_free_empty(&rp->slots)) {
			uint64_t len = MIN(io, (next < direct_end ? direct_end : size) - next);
			int fd = next < direct_end ? st->dfd : st->bfd;
			struct io_uring_sqe *sqe;
			unsigned slot;

			sqe = io_uring_get_sqe(&rp->ring);
			if (!sqe)
				break;
			slot = ring_free_get(&rp->slots);
			req[slot].off = next;
			req[slot].len = len;
			io_uring_prep_read(sqe, fd, via_map ? wmap + next : ring_slot(rp, slot),
					   req[slot].len, next);
			io_uring_sqe_set_data64(sqe, slot);
			next += req[slot].len;
			inflight++;
		}
		r = io_uring_submit_and_wait(&rp->ring, 1);
		if (r < 0)
			goto out_drain;
		while (io_uring_peek_cqe(&rp->ring, &cqe) == 0) {
			uint64_t data = io_uring_cqe_get_data64(cqe);
			unsigned slot = data & 0xffffffff;
			uint64_t off = req[slot].off, end = off + req[slot].len;
			char *buf = via_map ? wmap + off : ring_slot(rp, slot);
			int res = cqe->res;

			io_uring_cqe_seen(&rp->ring, cqe);
			inflight--;
			if (data & FILL_COPY) {	/* the copy into staging finished */
				if (res < 0 || (uint64_t)res < end - off) {
					if (res < 0 || pwrite_full(st->memfd, buf + res, end - off - res,
								   off + res) < 0) {
						r = res < 0 ? res : -errno;
						goto out_drain;
					}
				}
				ring_free_put(&rp->slots, slot);
				continue;
			}
			if (via_map)
				ring_free_put(&rp->slots, slot);
			if (res < 0) {
				r = res;
				goto out_drain;
			}
			if (res == 0) {	/* file shrank under us */
				r = -EIO;
				goto out_drain;
			}
			if (off + res < end) {	/* short read: fetch the rest synchronously */
				ssize_t n = pread(st->bfd, buf + res, end - off - res, off + res);

				if (n != (ssize_t)(end - off - res)) {
					r = n < 0 ? -errno : -EIO;
					goto out_drain;
				}
			}
			/* Chunks wholly inside this read are final: hash them while the
			 * other reads are in flight. */
			for (uint64_t i = (off + cs - 1) / cs; i * cs < end; i++)
				if (MIN((i + 1) * cs, size) <= end)
					dirty_set(dm, i, dirty_hash(buf + (i * cs - off),
								    MIN(cs, size - i * cs)));
			if (!via_map) {
				/* The copy runs in an io_uring worker: on the other core, beside
				 * the hashing of the next read here. */
				struct io_uring_sqe *sqe = io_uring_get_sqe(&rp->ring);

				io_uring_prep_write(sqe, st->memfd, buf, end - off, off);
				io_uring_sqe_set_data64(sqe, FILL_COPY | slot);
				sqe->flags |= IOSQE_ASYNC;
				inflight++;
			}
		}
	}
	/* A chunk split between two reads (at the direct/buffered boundary) is hashed now,
	 * from staging (the bounce slots are all free again). */
	for (uint64_t i = 0; i < dirty_nchunks(dm); i++) {
		uint64_t len = MIN(cs, size - i * cs);

		if (dirty_get(dm, i) != DIRTY_FP_NONE)
			continue;
		if (via_map) {
			dirty_set(dm, i, dirty_hash(wmap + i * cs, len));
			continue;
		}
		for (uint64_t got = 0; got < len;) {	/* io >= cs: one slot holds it */
			ssize_t n = pread(st->memfd, ring_slot(rp, 0) + got, len - got,
					  i * cs + got);

			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				goto out_ring;
			}
			got += n;
		}
		dirty_set(dm, i, dirty_hash(ring_slot(rp, 0), len));
	}
	r = 0;
	goto out_ring;
out_drain:
	ring_drain(rp, inflight);
	fill_ring_put(rp, false);
	rp = NULL;
out_ring:
	fill_ring_put(rp, !r);
out_unmap:
	if (wmap)
		munmap(wmap, maplen);
out_free:
	free(req);
	return r;
}

/*
 * One stager per backing file: an OFD write lock on all of it while it is staged. Two
 * rdmafs daemons staging one file (two nodes over NFS, two mounts of one directory) would
 * each commit their own copy and the last commit would win silently; the second writable
 * open fails with EBUSY instead. NFSv4 (v3 with lockd) takes the lock on the server. Where
 * the filesystem has no locks (ENOLCK: NFS mounted nolock; EOPNOTSUPP) staging goes on.
 * The lock lives on its own fd (st->lockfd), held only while this node's staging may hold
 * changes the backing file lacks; a clean resident file holds no lock (another node may
 * stage it) and takes it again at its next writable open (staging_lock_writer()).
 */
int staging_lock_backing(struct staged *st, int fd)
{
	static bool said;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES) {
		log_warn("stage ino=%" PRIu64 ": the backing file is staged by another rdmafs "
			 "(its lock is held): writable open refused (EBUSY)",
			 (uint64_t)st->ino->src_ino);
		return -EBUSY;
	}
	if (!__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))	/* once: per file would flood */
		log_notice("stage ino=%" PRIu64 ": backing file not locked (%s): another node "
			   "staging it would not be detected", (uint64_t)st->ino->src_ino,
			   strerror(errno));
	return 0;
}

void staging_note_backing(struct staged *st)
{
	struct stat sb;
	int fd = st->bfd >= 0 ? st->bfd : inode_fd(st->ino), r;

	if (fd < 0)
		return;
	r = fstat(fd, &sb);
	if (fd != st->bfd)
		inode_fd_put(st->ino);
	if (r < 0)
		return;
	staging_note_backing_stat(st, &sb);
}

void staging_note_backing_stat(struct staged *st, const struct stat *sb)
{
	st->bk_mtim = sb->st_mtim;
	st->bk_ctim = sb->st_ctim;
	st->bk_size = sb->st_size;
	staging_rec_update(st);
}

int staging_lock_writer(struct staged *st)
{
	struct inode *ino = st->ino;
	struct stat sb;
	int fd, r;

	if (st->lockfd >= 0)
		return 0;
	fd = staging_open_backing(ino, O_RDWR);
	if (fd < 0)
		return fd;
	r = staging_lock_backing(st, fd);
	if (r)
		goto err_close;
	/* Unlocked, another node may have staged and committed it: our copy is stale then
	 * and must never be committed over theirs. */
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto err_close;
	}
	if (staging_backing_changed(st, &sb)) {
		log_info("open ino=%" PRIu64 ": backing file changed while this node did not "
			 "stage it for writing: resident copy is stale", (uint64_t)ino->src_ino);
		r = -ESTALE;
		goto err_close;
	}
	st->lockfd = fd;
	staging_rec_lock(st, true);	/* held by the store too: survives a restart */
	log_debug("locked ino=%" PRIu64 " (stager again)", (uint64_t)ino->src_ino);
	return 0;

err_close:
	close(fd);
	return r;
}

void staging_unlock_writer(struct staged *st)
{
	if (st->lockfd < 0)
		return;
	staging_rec_lock(st, false);	/* the store's copy would keep the lock */
	close(st->lockfd);
	st->lockfd = -1;
	log_debug("unlocked ino=%" PRIu64 " (committed, clean, no writer)",
		  (uint64_t)st->ino->src_ino);
}

bool staging_backing_changed(struct staged *st, const struct stat *sb)
{
	bool changed;

	pthread_mutex_lock(&st->lock);
	changed = (uint64_t)sb->st_size != st->bk_size ||
		  sb->st_mtim.tv_sec != st->bk_mtim.tv_sec ||
		  sb->st_mtim.tv_nsec != st->bk_mtim.tv_nsec ||
		  sb->st_ctim.tv_sec != st->bk_ctim.tv_sec ||
		  sb->st_ctim.tv_nsec != st->bk_ctim.tv_nsec;
	pthread_mutex_unlock(&st->lock);
	return changed;
}
