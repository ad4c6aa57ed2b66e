// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_resize.c - owns changes of a staged file's size and holes, applied to staging
 * and backing alike under commit_lock (truncate, fallocate), and the daemon-served I/O of
 * files that cannot be passed through (hugetlb).
 */
#include "rdmafsd.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* Committed fingerprints after [old, new) became zeros in staging and backing alike. */
static void zero_range_fps(struct staged *st, uint64_t start, uint64_t end, uint64_t size)
{
	struct dirty_map *dm = st->dm;
	uint64_t cs = dirty_chunk_size(dm);
	static const char zeros[64 << 10];
	char *buf = NULL;

	for (uint64_t i = start / cs; i * cs < end && i < dirty_nchunks(dm); i++) {
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
/*
 * Set the backing file's size: through the descriptor the commit has open, else by the
 * path of the inode's cached O_PATH fd (one call, where opening the commit's buffered and
 * O_DIRECT descriptors for it costs six). 0 or -1 with errno.
 */
static int backing_truncate(struct staged *st, uint64_t size)
{
	char path[PROC_FD_PATH_MAX];
	int fd, r;

	if (st->bfd >= 0)
		return ftruncate(st->bfd, size);
	fd = inode_fd(st->ino);
	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	r = truncate(proc_fd_path(path, fd), size);
	inode_fd_put(st->ino);
	return r;
}

int staging_truncate(struct staged *st, uint64_t size)
{
	uint64_t old, cs = dirty_chunk_size(st->dm);
	bool broke = false;
	int r;

	/*
	 * Shrinking frees pages a pin may hold: the holders unpin first. The wait is outside
	 * commit_lock: a dying holder's close (FUSE FLUSH -> commit) and the flusher must not
	 * wait for us. Until lease_break_done() no new lease can be taken.
	 */
	r = staging_size(st, &old);
	if (!r && size < old) {
		r = staging_pol.break_start ? staging_pol.break_start(st, "truncate") : 0;
		broke = !r;
	}
	if (r)
		return r;
	pthread_mutex_lock(&st->commit_lock);
	st->sealed_clean = false;
	staging_note_change(st);
	r = staging_size(st, &old);
	if (r)
		goto out;
	if (size < old && !broke) {	/* it grew since we looked: break first */
		pthread_mutex_unlock(&st->commit_lock);
		return staging_truncate(st, size);
	}
	if (size > old) {
		r = staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), st->ino, false);
		if (r) {
			log_notice("truncate ino=%" PRIu64 " to %" PRIu64 " bytes: refused, "
				   "staging_budget=%" PRIu64 " reached (%" PRIu64 " bytes staged)",
				   (uint64_t)st->ino->src_ino, size, cfg->staging_budget,
				   staging_bytes_used());
			goto out;
		}
	}
	r = staging_set_size(st, old, size);
	if (r) {
		if (size > old)
			staging_budget_set(st, ALIGN_UP(old, staging_page_size(st)), NULL, true);
		goto out;
	}
	st->needs_sync = true;	/* the next commit fdatasyncs the new size */
	if (backing_truncate(st, size) < 0) {
		r = -errno;
		log_err("truncate ino=%" PRIu64 " backing to %" PRIu64 ": %s",
			(uint64_t)st->ino->src_ino, size, strerror(-r));
		/* Staging has the new size; the next commit sets the backing size. */
		st->committed_size = UINT64_MAX;
	}
	if (size < old)
		staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), NULL, true);
	pthread_mutex_lock(&st->lock);
	if (!r) {
		st->committed_size = size;
		staging_note_backing(st);	/* our own truncate: not a change behind us */
	}
	if (size <= st->lost_from)
		st->lost_from = UINT64_MAX;	/* the lost pages are cut off */
	if (size < old) {
		dirty_shrink(st->dm, size);
		if (size % cs)
			dirty_invalidate(st->dm, size / cs, size / cs);
	} else {
		dirty_resize(st->dm, size);
		zero_range_fps(st, old, size, size);
	}
	r = staging_map_ro(st, size);
	st->size = size;
	pthread_mutex_unlock(&st->lock);
out:
	if (broke && staging_pol.break_done)
		staging_pol.break_done(st);
	staging_backing_close(st);
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
		r = !staging_pol.break_start ? 0 :
		    staging_pol.break_start(st, mode & FALLOC_FL_PUNCH_HOLE ? "punch hole" :
										"zero range");
		if (r)
			return r;
		broke = true;
	}
	pthread_mutex_lock(&st->commit_lock);
	st->sealed_clean = false;
	staging_note_change(st);
	r = staging_size(st, &old);
	if (r)
		goto out;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		/* shmem has no ZERO_RANGE: punching gives the same zeros. */
		if (fallocate(st->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
			r = -errno;
			goto out;
		}
		/* Allocate the punched pages again: hugetlb, so that a mapping never faults on
		 * an empty pool (SIGBUS) later; shmem and thp, so that no page of the range
		 * can appear clean (a read fault) and be dropped (see staging_mem_alloc()). */
		if (off < (off_t)staging_phys_size(st, old)) {
			uint64_t ps = staging_page_size(st), a = ALIGN_DOWN((uint64_t)off, ps);
			uint64_t b = MIN(ALIGN_UP(end, ps), staging_phys_size(st, old));
			int ra = st->mode == STAGING_HUGETLB ?
				 (fallocate(st->memfd, FALLOC_FL_KEEP_SIZE, a, b - a) < 0 ? -errno : 0) :
				 staging_mem_alloc(st, st->memfd, a, b, true);

			if (ra) {
				log_err("punch ino=%" PRIu64 ": staging pages not allocated again: %s",
					(uint64_t)st->ino->src_ino, strerror(-ra));
				pthread_mutex_lock(&st->lock);
				st->alloc_size = MIN(st->alloc_size, a);
				pthread_mutex_unlock(&st->lock);
			}
		}
		st->needs_sync = true;	/* blocks freed: the next commit fdatasyncs */
		if (staging_backing_fd(st) < 0 || (fallocate(st->bfd, mode, off, len) < 0 &&
		    fallocate(st->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)) {
			/* Backing keeps old bytes there: mark the range for rewrite. */
			pthread_mutex_lock(&st->lock);
			dirty_invalidate(st->dm, off / dirty_chunk_size(st->dm),
					 (end - 1) / dirty_chunk_size(st->dm));
			pthread_mutex_unlock(&st->lock);
			goto grow;
		}
		pthread_mutex_lock(&st->lock);
		zero_range_fps(st, off, MIN(end, old), old);
		pthread_mutex_unlock(&st->lock);
	} else {
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > old) {
			r = staging_budget_set(st, ALIGN_UP(end, staging_page_size(st)), st->ino,
					       false);
			if (r)
				goto out;
		}
		/* Growth past the old end is written with zeros by staging_set_size() (below). */
		uint64_t fend = (mode & FALLOC_FL_KEEP_SIZE) ? end : MIN(end, old);

		if (st->mode == STAGING_HUGETLB) {
			/* Whole pages up to the new size are allocated when it grows (below);
			 * the hugetlb pages of the rest are allocated already. */
		} else if ((uint64_t)off < fend &&
			   fallocate(st->memfd, mode | FALLOC_FL_KEEP_SIZE, off, fend - off) < 0) {
			r = -errno;
			goto out;
		}
		/* Reserve the disk space too: that is why applications preallocate. */
		st->needs_sync = true;
		if (staging_backing_fd(st) < 0) {
			r = -errno;
			goto out;
		}
		if (fallocate(st->bfd, mode, off, len) < 0 && errno != EOPNOTSUPP) {
			r = -errno;
			goto out;
		}
	}
grow:
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > old) {
		int rs = staging_set_size(st, old, end);

		if (rs && !r)
			r = rs;
		if (rs) {
			staging_budget_set(st, ALIGN_UP(old, staging_page_size(st)), NULL, true);
			goto out;
		}
		st->needs_sync = true;
		if ((staging_backing_fd(st) < 0 || ftruncate(st->bfd, end) < 0) && !r)
			r = -errno;
		pthread_mutex_lock(&st->lock);
		dirty_resize(st->dm, end);
		zero_range_fps(st, old, end, end);
		if (!r)
			st->committed_size = end;
		pthread_mutex_unlock(&st->lock);
	}
out:
	if (broke && staging_pol.break_done)
		staging_pol.break_done(st);
	staging_backing_close(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}

ssize_t staging_pread(struct staged *st, void *buf, size_t len, uint64_t off)
{
	uint64_t size;
	ssize_t n;
	int r = staging_size(st, &size);

	if (r)
		return r;
	if (off >= size)
		return 0;
	n = pread(st->memfd, buf, MIN((uint64_t)len, size - off), off);
	return n < 0 ? -errno : n;
}

/*
 * memcpy into a mapping of the memfd that a map holder may shrink at any moment: the
 * kernel does the copy (process_vm_writev to ourselves), so a page cut off fails the
 * copy (-EIO) instead of raising SIGBUS in the daemon.
 */
static int copy_to_map(void *dst, const void *src, size_t len)
{
	struct iovec local = { .iov_base = (void *)src, .iov_len = len };
	struct iovec remote = { .iov_base = dst, .iov_len = len };
	ssize_t n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	return n < 0 && errno != EFAULT ? -errno : -EIO;
}

/*
 * hugetlbfs has no write(): copy through a mapping of the pages concerned (allocated
 * already, so the mapping costs a page-table entry per huge page). Taking commit_lock
 * keeps a concurrent shrinking truncate from freeing the pages under the copy.
 */
ssize_t staging_pwrite(struct staged *st, const void *buf, size_t len, uint64_t off)
{
	uint64_t ps = staging_page_size(st), old, end = off + len, moff, mlen;
	char *p;
	int r;

	if (!len)
		return 0;
	pthread_mutex_lock(&st->commit_lock);
	st->sealed_clean = false;
	staging_note_change(st);
	r = staging_size(st, &old);
	if (r)
		goto out;
	if (end > old) {
		r = staging_budget_set(st, ALIGN_UP(end, ps), NULL, false);
		if (r)
			goto out;
		r = staging_set_size(st, old, end);
		if (r) {
			staging_budget_set(st, ALIGN_UP(old, ps), NULL, true);
			goto out;
		}
	}
	moff = ALIGN_DOWN(off, ps);
	mlen = ALIGN_UP(end, ps) - moff;
	p = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, moff);
	if (p == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	r = copy_to_map(p + (off - moff), buf, len);
	munmap(p, mlen);
out:
	pthread_mutex_unlock(&st->commit_lock);
	if (r)
		log_debug("write ino=%" PRIu64 " off=%" PRIu64 " len=%zu: %s",
			  (uint64_t)st->ino->src_ino, off, len, strerror(-r));
	return r ? r : (ssize_t)len;
}
