// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_mem.c - owns the three kinds of staging memory: a shmem memfd, a file on a
 * private tmpfs mounted with huge=always (thp), a hugetlb memfd; their creation, page
 * size, allocation (so no page can be dropped) and resize.
 */
#include "rdmafsd.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/memfd.h>
#include <linux/mount.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * thp: a tmpfs with huge=always, mounted with the new mount API and never attached to
 * any path (fsmount gives a detached mount fd): staging files are O_TMPFILEs in it, so
 * nothing is visible and nothing leaks when the daemon exits. FUSE passthrough accepts
 * them (tmpfs stacks), and mappings of them get 2 MiB pages.
 */
static struct {
	pthread_mutex_t lock;		/* protects mntfd creation */
	int mntfd;			/* detached tmpfs mount, or -1 */
} thp = { .lock = PTHREAD_MUTEX_INITIALIZER, .mntfd = -1 };

static int thp_mount(void)
{
	int fsfd, mfd, r;

	pthread_mutex_lock(&thp.lock);
	if (thp.mntfd >= 0)
		goto out;
	fsfd = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fsfd < 0) {
		r = -errno;
		log_err("staging=thp: fsopen(tmpfs): %s", strerror(-r));
		goto out_r;
	}
	char size[32];

	/* size=staging_budget: the kernel refuses growth past the budget with ENOSPC to the
	 * writer, also growth the daemon does not see (passthrough writes past EOF). */
	snprintf(size, sizeof(size), "%" PRIu64, ALIGN_UP(cfg->staging_budget, 2 << 20));
	if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "huge", "always", 0) < 0 ||
	    syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
	    syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		r = -errno;
		log_err("staging=thp: tmpfs huge=always: %s", strerror(-r));
		close(fsfd);
		goto out_r;
	}
	mfd = syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	r = -errno;
	close(fsfd);
	if (mfd < 0) {
		log_err("staging=thp: fsmount: %s", strerror(-r));
		goto out_r;
	}
	thp.mntfd = mfd;
	log_info("staging=thp: private tmpfs with huge=always ready");
out:
	r = 0;
out_r:
	pthread_mutex_unlock(&thp.lock);
	return r;
}

/* 1 GiB pages only where the kernel has a pool for them. */
static int hugetlb_sysfs_read(uint64_t page_size, const char *what, uint64_t *out)
{
	char path[128];
	unsigned long long v;
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/%s",
		 page_size >> 10, what);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	r = fscanf(f, "%llu", &v) == 1 ? 0 : -EIO;
	fclose(f);
	*out = v;
	return r;
}

/* Free, unreserved pages of the hugetlb pool of @page_size. */
static int hugetlb_available(uint64_t page_size, uint64_t *pages)
{
	uint64_t free_p, resv;
	int r = hugetlb_sysfs_read(page_size, "free_hugepages", &free_p);

	if (!r)
		r = hugetlb_sysfs_read(page_size, "resv_hugepages", &resv);
	if (r)
		return r;
	*pages = free_p > resv ? free_p - resv : 0;
	return 0;
}

uint64_t staging_mem_page_size(enum staging_mode mode)
{
	switch (mode) {
	case STAGING_THP:
		return 2 << 20;		/* PMD size: what huge=always allocates */
	case STAGING_HUGETLB:
		return cfg->hugetlb_page_size;
	case STAGING_SHMEM:
	default:
		return sysconf(_SC_PAGESIZE);
	}
}

/* Size of the staging file for a logical size: hugetlb files are whole pages. */
uint64_t staging_phys_size(struct staged *st, uint64_t size)
{
	return st->mode == STAGING_HUGETLB ? ALIGN_UP(size, staging_page_size(st)) : size;
}

static int mem_create(struct staged *st)
{
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd, r;

	switch (st->mode) {
	case STAGING_THP:
		r = thp_mount();
		if (r)
			return r;
		fd = openat(thp.mntfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		break;
	case STAGING_HUGETLB:
		flags |= MFD_HUGETLB | (__builtin_ctzll(staging_page_size(st)) << MFD_HUGE_SHIFT);
		fd = memfd_create("rdmafs-staging", flags);
		break;
	case STAGING_SHMEM:
	default:
		fd = memfd_create("rdmafs-staging", flags);
		break;
	}
	return fd < 0 ? -errno : fd;
}

/* A new, empty staging file of st->mode; returns the fd or -errno. */
int staging_mem_create(struct staged *st)
{
	int fd = mem_create(st);

	if (fd == -EMFILE) {
		inode_fd_reclaim();	/* idle cached O_PATH fds are given back */
		fd = mem_create(st);
	}
	return fd;
}

/*
 * Allocate the pages of [from, to) of staging file @fd. shmem marks every page it
 * allocates (and every page already there) dirty, and the kernel never drops a dirty shmem
 * page: a page first faulted in by a read is clean, and once the pin that wrote it is gone
 * page-cache invalidation (drop_caches, reclaim) frees it with the data a DMA put there.
 * With @populate the pages are also read-faulted once (zeroed, made uptodate, still
 * dirty), so that a page missing later is seen as lost (staging_check_lost(): mincore and
 * SEEK_DATA tell an allocated page from a hole only once it is uptodate); without, the
 * caller writes every byte of the range itself (fill, unseal copy). hugetlb pages are
 * never dropped: allocated by staging_mem_resize().
 */
int staging_mem_alloc(struct staged *st, int fd, uint64_t from, uint64_t to, bool populate)
{
	uint64_t a, b;
	void *p;

	if (st->mode == STAGING_HUGETLB || from >= to)
		return 0;
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, from, to - from) < 0)
		return errno == ENOMEM ? -ENOSPC : -errno;
	if (!populate)
		return 0;
	a = ALIGN_DOWN(from, 4096);
	b = ALIGN_UP(to, 4096);
	p = mmap(NULL, b - a, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, a);
	if (p == MAP_FAILED)
		return -errno;
	munmap(p, b - a);
	return 0;
}

/*
 * Write zeros to [from, to) of staging file @fd, growing it from @from (its size): the
 * pages are allocated, uptodate and dirty, as staging_mem_alloc() with populate makes
 * them, at 0.6 of its cost (no fallocate pass, no page-table walk; bench/run "grow"). Only
 * for growth the daemon makes itself: the kernel holds the FUSE inode lock over setattr,
 * fallocate and a growing write, so no write(2) can put bytes past @from meanwhile, and
 * no mapping can store past the end of the file. Growth nobody told us of may hold data:
 * staging_mem_alloc() there. Returns 0 or -errno (-ENOSPC: out of memory or thp tmpfs
 * full).
 */
int staging_mem_write_zeros(int fd, uint64_t from, uint64_t to)
{
	static const char zpage[4096] __attribute__((aligned(4096)));
	struct iovec iov[256];

	for (size_t i = 0; i < ARRAY_SIZE(iov); i++)
		iov[i] = (struct iovec){ .iov_base = (void *)zpage, .iov_len = sizeof(zpage) };
	while (from < to) {
		uint64_t left = to - from;
		int n = MIN(left / sizeof(zpage), ARRAY_SIZE(iov));
		ssize_t w;

		if (!n) {	/* the tail of a page */
			n = 1;
			iov[0].iov_len = left;
		}
		w = pwritev(fd, iov, n, from);
		iov[0].iov_len = sizeof(zpage);
		if (w < 0)
			return errno == ENOMEM ? -ENOSPC : -errno;
		if (w == 0)
			return -ENOSPC;
		from += w;
	}
	return 0;
}

/*
 * Set the size of staging file @fd from @old to @size (logical sizes). Growth allocates
 * its pages now (staging_mem_write_zeros(); without @populate staging_mem_alloc(), the
 * caller then writes every byte). hugetlb: whole pages, and growth allocates them now (fallocate), so that a short pool fails here with -ENOSPC instead of
 * a SIGBUS at a later fault.
 */
int staging_mem_resize(struct staged *st, int fd, uint64_t old, uint64_t size,
		       bool populate)
{
	uint64_t pold = staging_phys_size(st, old), pnew = staging_phys_size(st, size);
	uint64_t zfrom = MIN(old, size), zto = MIN(pold, pnew);
	int r;

	/* hugetlb: bytes past the logical size within the last page read as zeros after
	 * a resize (a punch of a partial huge page zeroes it). */
	if (st->mode == STAGING_HUGETLB && zfrom < zto &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, zfrom, zto - zfrom) < 0)
		return -errno;
	if (pnew > pold && populate && st->mode != STAGING_HUGETLB)
		r = staging_mem_write_zeros(fd, pold, pnew);	/* grows the file as it goes */
	else if (pnew != pold && ftruncate(fd, pnew) < 0)
		return -errno;
	else if (pnew <= pold)
		return 0;
	else if (st->mode == STAGING_HUGETLB)
		r = fallocate(fd, 0, pold, pnew - pold) < 0 ? -errno : 0;
	else
		r = staging_mem_alloc(st, fd, pold, pnew, populate);
	if (r) {
		if (ftruncate(fd, pold) < 0)
			log_warn("staging ino=%" PRIu64 ": cannot undo a resize: %s",
				 (uint64_t)st->ino->src_ino, strerror(errno));
		return r == -ENOMEM ? -ENOSPC : r;
	}
	return 0;
}

/*
 * Staging of mode hugetlb needs @size bytes of the pool now: -ENOSPC if the pool is too
 * small (logged once here, naming the pool).
 */
int staging_mem_check_pool(struct staged *st, uint64_t size)
{
	uint64_t ps = staging_page_size(st), need = staging_phys_size(st, size) / ps, avail = 0;
	int r = hugetlb_available(ps, &avail);

	if (r == -ENOENT) {
		log_err("staging=hugetlb: this kernel has no %" PRIu64 " kB huge pages", ps >> 10);
		return -ENOSPC;
	}
	if (r)
		return r;
	if (need > avail) {
		log_notice("staging=hugetlb ino=%" PRIu64 ": pool of %" PRIu64 " kB pages too "
			   "small: need %" PRIu64 ", %" PRIu64 " free (raise "
			   "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages)",
			   (uint64_t)st->ino->src_ino, ps >> 10, need, avail, ps >> 10);
		return -ENOSPC;
	}
	return 0;
}

int staging_mem_init(void)
{
	if (cfg->staging == STAGING_THP)
		return thp_mount();	/* fail at start-up, not at the first open */
	return 0;
}

void staging_mem_exit(void)
{
	pthread_mutex_lock(&thp.lock);
	if (thp.mntfd >= 0)
		close(thp.mntfd);	/* the tmpfs goes away with its last file */
	thp.mntfd = -1;
	pthread_mutex_unlock(&thp.lock);
}
