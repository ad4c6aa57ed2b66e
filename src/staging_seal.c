// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_seal.c - owns sealing: the proof that nobody can write a staged file any more
 * (F_SEAL_WRITE, or a write lease for thp), and the writable copy that a reopen for
 * writing makes of a sealed file.
 */
#include "rdmafsd.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * True if some file other than ours may write the staging file: a passthrough open for
 * writing, or a writable shared mapping, which keeps the backing file it maps open after
 * close(2) and the FUSE RELEASE. shmem: a read lease through a read-only reopen is refused
 * exactly while some file is open for writing (the memfd's own descriptor is not counted as
 * one; our own view is a private mapping, staging_map_ro()). thp: a write lease on our own
 * tmpfs file, also refused by readers (conservative). The lease is dropped at once; an
 * opener that raced it waits that long (SIGIO, which a break sends us, is ignored: main()).
 * Errors answer true (keep scanning). hugetlb staging is served by the daemon: its opens
 * are counted already.
 */
bool staging_open_elsewhere(struct staged *st, bool just_closed)
{
	char path[PROC_FD_PATH_MAX];
	int fd = st->memfd;
	bool busy;

	if (st->mode == STAGING_HUGETLB)
		return false;
	int lease = F_WRLCK;

	if (st->mode == STAGING_SHMEM) {
		/* A read lease through a read-only reopen: refused only while some file is
		 * open for writing (the memfd's own descriptor is not counted as one), so
		 * readers (cmp, rdmafsctl stat's descriptor) do not keep the file scanned. */
		fd = open(proc_fd_path(path, st->memfd), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return true;
		lease = F_RDLCK;
	}
	/*
	 * The kernel drops a passthrough open's backing file when the closing task returns to
	 * user space, which may come after its RELEASE reached us: a file @just_closed is
	 * asked again for up to ~30 ms before it counts as still open (a mapping stays).
	 * Other callers ask again at their next pass.
	 */
	for (unsigned us = 1000;; us *= 2) {
		busy = fcntl(fd, F_SETLEASE, lease) < 0;
		if (!busy) {
			fcntl(fd, F_SETLEASE, F_UNLCK);
			break;
		}
		if (!just_closed || errno != EAGAIN || us > 16000)
			break;
		usleep(us);
	}
	if (fd != st->memfd)
		close(fd);
	return busy;
}

/*
 * thp files cannot be sealed (tmpfs files carry F_SEAL_SEAL; only memfds take seals).
 * The nearest thing user space can learn: a write lease is granted only while no other
 * file is open for writing on the inode, and a writable shared mapping keeps its
 * (passthrough backing) file open for writing. So with no opens, a granted lease proves
 * that no writable mapping is left (read-only mappings and opens make it fail too: such a
 * file stays staged until they go). It does not see a long-term pin that outlived its
 * munmap (a memfd seal does): holders must take an rdmafs lease (see doc/staging.md).
 * "sealed" is then our own promise: no writer exists, and opens go through open_common.
 */
static bool thp_try_freeze(struct staged *st)
{
	if (fcntl(st->memfd, F_SETLEASE, F_WRLCK) < 0) {
		if (errno != EAGAIN && errno != EBUSY)
			log_warn("freeze ino=%" PRIu64 ": write lease: %s",
				 (uint64_t)st->ino->src_ino, strerror(errno));
		return false;
	}
	fcntl(st->memfd, F_SETLEASE, F_UNLCK);
	st->sealed = true;
	log_debug("frozen ino=%" PRIu64 " (thp: no writable mapping left)",
		  (uint64_t)st->ino->src_ino);
	return true;
}

/*
 * F_ADD_SEALS failed with EPERM: a holder of a writable map fd (rdmafs_map) added
 * F_SEAL_SEAL. If it sealed writes too, no writer can exist: that is our seal. Otherwise
 * the memfd can never be sealed; the file stays staged (as if it were mapped for ever)
 * until unmount, and its data is committed as usual. Logged once per file.
 */
static bool seal_refused(struct staged *st)
{
	int seals = fcntl(st->memfd, F_GET_SEALS);

	if (seals >= 0 && (seals & F_SEAL_WRITE)) {
		st->sealed = true;
		log_debug("sealed ino=%" PRIu64 " (by a map holder)", (uint64_t)st->ino->src_ino);
		return true;
	}
	if (!st->seal_refused)
		log_warn("seal ino=%" PRIu64 ": a map holder sealed the staging memfd against "
			 "seals (seals 0x%x): it stays staged until unmount",
			 (uint64_t)st->ino->src_ino, seals);
	st->seal_refused = true;
	staging_rec_update(st);
	return false;
}

bool staging_try_seal(struct staged *st)
{
	int r;

	if (st->sealed)
		return true;
	/* A leased file stays writable (its pin holder may write through DMA at any time),
	 * so the flusher keeps scanning it and it is never dropped. */
	if (st->ino->nopen || (staging_pol.leases && staging_pol.leases(st)))
		return false;
	if (st->mode == STAGING_THP)
		return thp_try_freeze(st);
	/* Fails with EBUSY while a writable shared mapping or a page pin remains. */
	r = fcntl(st->memfd, F_ADD_SEALS, F_SEAL_WRITE);
	if (r == 0) {
		st->sealed = true;
		log_debug("sealed ino=%" PRIu64, (uint64_t)st->ino->src_ino);
		return true;
	}
	if (errno == EPERM)
		return seal_refused(st);
	if (errno != EBUSY)
		log_warn("seal ino=%" PRIu64 ": %s", (uint64_t)st->ino->src_ino, strerror(errno));
	return false;
}

/* Read @len bytes at 0 of @fd into @buf; 0, or -EIO if it is shorter, or -errno. */
static int pread_full(int fd, char *buf, uint64_t len)
{
	uint64_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += n;
	}
	return 0;
}

static int unseal_locked(struct staged *st)
{
	uint64_t size = 0;
	loff_t in = 0, out = 0;
	int fd, r;

	if (st->mode == STAGING_THP) {	/* never really sealed: see thp_try_freeze() */
		st->sealed = false;
		return 0;
	}
	staging_adopt_shrink(st);
	r = staging_size(st, &size);
	if (r)
		return r;
	/* A page lost from the sealed file would be copied as zeros: not silently. */
	staging_check_lost(st, 0, size);
	fd = staging_new_memfd(st, size, true);
	if (fd < 0) {
		log_err("unseal ino=%" PRIu64 ": new %s staging: %s", (uint64_t)st->ino->src_ino,
			conf_staging_name(st->mode), strerror(-fd));
		return fd == -ENOSPC ? -ENOMEM : fd;
	}
	/* hugetlbfs has no write(): copy through a mapping */
	if (st->mode == STAGING_HUGETLB && size) {
		uint64_t len = ALIGN_UP(size, staging_page_size(st));
		void *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (dst == MAP_FAILED) {
			r = -errno;
			close(fd);
			return r;
		}
		/* pread, not memcpy from st->map: the kernel copy stops short where a map
		 * holder shrank the memfd, where a load would raise SIGBUS */
		r = pread_full(st->memfd, dst, size);
		munmap(dst, len);
		if (r) {
			close(fd);
			log_err("unseal ino=%" PRIu64 ": copy: %s", (uint64_t)st->ino->src_ino,
				strerror(-r));
			return r;
		}
		in = size;
	}
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
	if (staging_detach_hook)
		staging_detach_hook(st->ino);	/* its backing id refers to the old memfd */
	pthread_mutex_lock(&st->lock);
	close(st->memfd);
	st->memfd = fd;
	staging_rec_memfd(st);	/* after the old backing id went (staging_detach_hook) */
	st->alloc_size = size;	/* staging_new_memfd() allocated it, the copy wrote it all */
	st->sealed = false;
	r = staging_map_ro(st, size);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int staging_unseal(struct staged *st)
{
	int r;

	if (!st->sealed)
		return 0;
	/* Commits (periodic pass, ctl flush, shutdown) read st->map holding only commit_lock:
	 * replacing the memfd and the map under them faulted in their snapshot copy. */
	pthread_mutex_lock(&st->commit_lock);
	st->sealed_clean = false;
	r = unseal_locked(st);
	pthread_mutex_unlock(&st->commit_lock);
	return r;
}
