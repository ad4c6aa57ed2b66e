// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_staging.c - owns staged files: the shared memory (memfd) that holds a file's bytes
 * while it is open for writing, its fill from the backing file, resize and hole punch
 * applied to staging and backing alike, sealing of files nobody can write, the memory budget
 * and eviction. Three kinds of staging memory (one small backend each, below): a shmem
 * memfd, a file on a private tmpfs mounted with huge=always (thp), a hugetlb memfd.
 */
#include "rdmafsd.h"
#include "metrics.h"

#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <linux/memfd.h>
#include <linux/mount.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;		/* protects the list, every st->refs, used */
	struct staged *head;
	uint64_t used;			/* bytes of staging charged against the budget */
	size_t count;
	/*
	 * Staged files kept beyond which idle ones are evicted (LRU), whatever the budget:
	 * each holds descriptors (memfd, backing fds), and resident staging must not run the
	 * daemon out of them. From RLIMIT_NOFILE at start-up.
	 */
	size_t resident_max;
} slist = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t page_size_of(struct staged *st)
{
	return st->page_size ? st->page_size : 4096;
}

/* ---- backends: create, size and page size of each kind of staging memory ---- */

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

static uint64_t mode_page_size(enum staging_mode mode)
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
static uint64_t phys_size(struct staged *st, uint64_t size)
{
	return st->mode == STAGING_HUGETLB ? ALIGN_UP(size, page_size_of(st)) : size;
}

/* A new, empty staging file of st->mode; returns the fd or -errno. */
static int backend_create(struct staged *st)
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
		flags |= MFD_HUGETLB | (__builtin_ctzll(page_size_of(st)) << MFD_HUGE_SHIFT);
		fd = memfd_create("rdmafs-staging", flags);
		break;
	case STAGING_SHMEM:
	default:
		fd = memfd_create("rdmafs-staging", flags);
		break;
	}
	return fd < 0 ? -errno : fd;
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
 * never dropped: allocated by backend_resize().
 */
static int alloc_range(struct staged *st, int fd, uint64_t from, uint64_t to, bool populate)
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
 * pages are allocated, uptodate and dirty, as alloc_range() with populate makes them, at
 * 0.6 of its cost (no fallocate pass, no page-table walk; bench/run "grow"). Only for
 * growth the daemon makes itself: the kernel holds the FUSE inode lock over setattr,
 * fallocate and a growing write, so no write(2) can put bytes past @from meanwhile, and
 * no mapping can store past the end of the file. Growth nobody told us of may hold data:
 * alloc_range() there. Returns 0 or -errno (-ENOSPC: out of memory or thp tmpfs full).
 */
static int write_zeros(int fd, uint64_t from, uint64_t to)
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
 * its pages now (write_zeros(); without @populate alloc_range(), the caller then writes
 * every byte). hugetlb: whole pages, and growth
 * allocates them now (fallocate), so that a short pool fails here with -ENOSPC instead of
 * a SIGBUS at a later fault.
 */
static int backend_resize(struct staged *st, int fd, uint64_t old, uint64_t size,
			  bool populate)
{
	uint64_t pold = phys_size(st, old), pnew = phys_size(st, size);
	uint64_t zfrom = MIN(old, size), zto = MIN(pold, pnew);
	int r;

	/* hugetlb: bytes past the logical size within the last page read as zeros after
	 * a resize (a punch of a partial huge page zeroes it). */
	if (st->mode == STAGING_HUGETLB && zfrom < zto &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, zfrom, zto - zfrom) < 0)
		return -errno;
	if (pnew > pold && populate && st->mode != STAGING_HUGETLB)
		r = write_zeros(fd, pold, pnew);	/* grows the file as it goes */
	else if (pnew != pold && ftruncate(fd, pnew) < 0)
		return -errno;
	else if (pnew <= pold)
		return 0;
	else if (st->mode == STAGING_HUGETLB)
		r = fallocate(fd, 0, pold, pnew - pold) < 0 ? -errno : 0;
	else
		r = alloc_range(st, fd, pold, pnew, populate);
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
static int hugetlb_check_pool(struct staged *st, uint64_t size)
{
	uint64_t ps = page_size_of(st), need = phys_size(st, size) / ps, avail = 0;
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

/*
 * Descriptors a staged file may hold between commits: its memfd, and its stager lock fd
 * while it may hold changes the backing file lacks (an idle clean file holds only the
 * memfd; backing fds are opened for fill, commit, truncate, fallocate and closed after).
 */
#define FDS_PER_STAGED 2
/* Descriptors kept for the rest: commits' transient backing fds, control, rings, logs. */
#define FDS_RESERVE 256

int staging_init(void)
{
	struct rlimit rl;

	/*
	 * What the inode fd cache leaves (inode.c: half the limit, at most 16384), for up to
	 * 1.5 x resident_max staged files (past resident_max idle clean files go; past 1.5 x
	 * idle dirty ones are committed and go too), each at worst with its lock fd:
	 * 20,000 descriptors give 3,248 resident files (was 2,500 at 4 fds each).
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		uint64_t n = rl.rlim_cur, cache = MIN(MAX(n / 2, 64), 16384);
		uint64_t left = n > cache + FDS_RESERVE ? n - cache - FDS_RESERVE : 0;

		slist.resident_max = MAX(left * 2 / 3 / FDS_PER_STAGED, 16);
	} else {
		slist.resident_max = 1 << 20;
	}
	if (cfg->staging == STAGING_THP)
		return thp_mount();	/* fail at start-up, not at the first open */
	return 0;
}

void staging_exit(void)
{
	pthread_mutex_lock(&thp.lock);
	if (thp.mntfd >= 0)
		close(thp.mntfd);	/* the tmpfs goes away with its last file */
	thp.mntfd = -1;
	pthread_mutex_unlock(&thp.lock);
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

static uint64_t evict_lru(uint64_t need, struct inode *self, size_t nfiles, bool commit);
static int relative_path(struct inode *ino, char *buf, size_t len);

/*
 * Charge @st @bytes (its page-rounded size) instead of what it was charged so far. Growth
 * that does not fit evicts idle staging of other files first (not @self: its lock is
 * held), then fails with -ENOSPC; with @force (growth that already happened, e.g. a
 * passthrough write past EOF) it is charged anyway.
 */
static int budget_set(struct staged *st, uint64_t bytes, struct inode *self, bool force)
{
	for (int tries = 0;; tries++) {
		uint64_t need = 0;

		pthread_mutex_lock(&slist.lock);
		if (bytes > st->charged &&
		    slist.used - st->charged + bytes > cfg->staging_budget && !force)
			need = slist.used - st->charged + bytes - cfg->staging_budget;
		else {
			slist.used = slist.used - MIN(st->charged, slist.used) + bytes;
			st->charged = bytes;
		}
		pthread_mutex_unlock(&slist.lock);
		if (!need)
			return 0;
		if (tries || !evict_lru(need, self, 0, false))
			return -ENOSPC;
	}
}

int staging_size(struct staged *st, uint64_t *size)
{
	struct stat sb;

	if (st->mode == STAGING_HUGETLB) {
		*size = __atomic_load_n(&st->logical_size, __ATOMIC_ACQUIRE);
		return 0;
	}
	if (fstat(st->memfd, &sb) < 0)
		return -errno;
	*size = sb.st_size;
	return 0;
}

static void alloc_growth_locked(struct staged *st, uint64_t size);

/* Resize staging to @size (from @old); the caller holds commit_lock. */
static int set_size(struct staged *st, uint64_t old, uint64_t size)
{
	int r;

	pthread_mutex_lock(&st->lock);
	alloc_growth_locked(st, old);	/* growth nobody told us of, first */
	pthread_mutex_unlock(&st->lock);
	r = backend_resize(st, st->memfd, old, size, true);
	if (r)
		return r;
	if (st->mode == STAGING_HUGETLB)
		__atomic_store_n(&st->logical_size, size, __ATOMIC_RELEASE);
	pthread_mutex_lock(&st->lock);
	if (size <= old)
		st->alloc_size = MIN(st->alloc_size, size);
	else if (st->alloc_size >= old)
		st->alloc_size = size;
	pthread_mutex_unlock(&st->lock);
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
	/*
	 * thp files are never sealed, and thp_try_freeze()'s write lease is refused while
	 * any read-only open exists: map through the memfd itself. shmem: a private read-only
	 * mapping of the memfd's own file maps the page cache's pages (nothing is ever
	 * copied: no store is made through it) and counts neither as a writable mapping
	 * (F_SEAL_WRITE) nor as another open (staging_open_elsewhere()'s write lease).
	 * hugetlb: a private mapping would reserve pool pages; a read-only open is used.
	 */
	if (st->mode != STAGING_HUGETLB) {
		fd = dup(st->memfd);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", st->memfd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	size = ALIGN_UP(size, page_size_of(st));
	p = mmap(NULL, size, PROT_READ, st->mode == STAGING_SHMEM ? MAP_PRIVATE : MAP_SHARED,
		 fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	st->map = p;
	st->map_len = size;
	return 0;
}

/*
 * A holder of a writable map fd (rdmafs_map) can ftruncate the hugetlb memfd: a logical
 * size past its end would be read short, or fault (SIGBUS) through a mapping, forever.
 * Adopt the shorter size, as shmem staging does by itself (its size is the memfd's);
 * st->lock or commit_lock held.
 */
static void hugetlb_adopt_shrink(struct staged *st)
{
	struct stat sb;

	if (st->mode != STAGING_HUGETLB || fstat(st->memfd, &sb) < 0 ||
	    (uint64_t)sb.st_size >= st->logical_size)
		return;
	log_warn("staging ino=%" PRIu64 ": truncated to %" PRIu64 " bytes behind the daemon "
		 "(a mapped fd), size %" PRIu64 " adopted", (uint64_t)st->ino->src_ino,
		 (uint64_t)sb.st_size, st->logical_size);
	__atomic_store_n(&st->logical_size, sb.st_size, __ATOMIC_RELEASE);
}

/*
 * Allocate staging up to @size if it grew without us (a passthrough write past EOF leaves
 * a hole before the written range: a page faulted in there by a read would be clean and
 * droppable). st->lock held.
 */
static void alloc_growth_locked(struct staged *st, uint64_t size)
{
	int r;

	if (size <= st->alloc_size || st->mode == STAGING_HUGETLB)
		return;
	r = alloc_range(st, st->memfd, st->alloc_size, size, true);
	if (r) {
		log_err("staging ino=%" PRIu64 ": cannot allocate its growth %" PRIu64 "..%" PRIu64
			": %s", (uint64_t)st->ino->src_ino, st->alloc_size, size, strerror(-r));
		return;
	}
	st->alloc_size = size;
}

/* Growth charged after the fact (passthrough writes): say so once per file if over. */
static void budget_note_growth(struct staged *st, uint64_t size)
{
	uint64_t used = staging_bytes_used();
	char path[PATH_MAX];

	if (used <= cfg->staging_budget || st->over_budget_logged)
		return;
	st->over_budget_logged = true;
	if (relative_path(st->ino, path, sizeof(path)))
		snprintf(path, sizeof(path), "(path unknown)");
	log_warn("staging ino=%" PRIu64 " %s grew to %" PRIu64 " bytes by write(2): %" PRIu64
		 " bytes staged, over staging_budget=%" PRIu64 " (%s staging, budget_enforce=%s: "
		 "writes passed through or by a map fd are not refused, see doc/staging.md)",
		 (uint64_t)st->ino->src_ino, path, size, used, cfg->staging_budget,
		 conf_staging_name(st->mode),
		 cfg->budget_enforce == BUDGET_STRICT ? "strict" : "deferred");
}

void staging_watch_growth(struct staged *st)
{
	uint64_t size;

	pthread_mutex_lock(&st->lock);
	if (!st->sealed && staging_size(st, &size) == 0 && size > st->alloc_size) {
		budget_set(st, ALIGN_UP(size, page_size_of(st)), NULL, true);
		budget_note_growth(st, size);
		alloc_growth_locked(st, size);
		staging_note_change(st);
	}
	pthread_mutex_unlock(&st->lock);
}

/* The most @st may be charged now without passing staging_budget (whole pages). */
static uint64_t budget_room(struct staged *st)
{
	uint64_t others, room;

	pthread_mutex_lock(&slist.lock);
	others = slist.used - MIN(st->charged, slist.used);
	room = others < cfg->staging_budget ? cfg->staging_budget - others : 0;
	pthread_mutex_unlock(&slist.lock);
	return ALIGN_DOWN(room, page_size_of(st));
}

/* A write past the budget refused: count it, log it once per episode naming the file. */
static void budget_refused(struct staged *st, uint64_t off, uint64_t len)
{
	char path[PATH_MAX];
	bool logged;

	pthread_mutex_lock(&st->lock);
	st->stats.budget_refusals++;
	logged = st->over_budget_logged;
	st->over_budget_logged = true;
	pthread_mutex_unlock(&st->lock);
	if (logged)
		return;
	if (relative_path(st->ino, path, sizeof(path)))
		snprintf(path, sizeof(path), "(path unknown)");
	log_notice("write ino=%" PRIu64 " %s off=%" PRIu64 " len=%" PRIu64 ": refused (ENOSPC), "
		   "staging_budget=%" PRIu64 " reached (%" PRIu64 " bytes staged); logged once "
		   "until a growth of this file fits again", (uint64_t)st->ino->src_ino, path, off,
		   len, cfg->staging_budget, staging_bytes_used());
}

ssize_t staging_write_begin(struct staged *st, uint64_t off, size_t len)
{
	uint64_t ps = page_size_of(st), old, end = off + len, room;
	int r;

	if (!len)
		return 0;
	staging_note_change(st);	/* as a writable open does for passthrough writes */
	if (end <= __atomic_load_n(&st->alloc_size, __ATOMIC_RELAXED))
		return len;		/* in place (alloc_size <= size): no syscall */
	r = staging_size(st, &old);
	if (r)
		return r;
	if (end <= old)
		return len;		/* in place: nothing to charge */
	r = budget_set(st, ALIGN_UP(end, ps), st->ino, false);
	if (r == -ENOSPC) {
		/* Write what fits, as a full filesystem does; the next write gets ENOSPC. */
		room = budget_room(st);
		if (room > off && room > old) {
			len = room - off;
			end = room;
			r = budget_set(st, end, st->ino, false);
		}
	}
	if (r) {
		budget_refused(st, off, end - off);
		return r;
	}
	pthread_mutex_lock(&st->lock);
	st->over_budget_logged = false;		/* the episode is over: growth fits */
	alloc_growth_locked(st, old);		/* growth nobody told us of, first */
	pthread_mutex_unlock(&st->lock);
	if (off > old) {
		/* The hole before the write: allocated now (see write_zeros()). */
		r = write_zeros(st->memfd, old, off);
		if (r) {
			if (ftruncate(st->memfd, old) < 0)
				log_warn("staging ino=%" PRIu64 ": cannot undo a resize: %s",
					 (uint64_t)st->ino->src_ino, strerror(errno));
			budget_set(st, ALIGN_UP(old, ps), NULL, true);
			return r;
		}
		pthread_mutex_lock(&st->lock);
		if (st->alloc_size >= old)
			st->alloc_size = off;
		pthread_mutex_unlock(&st->lock);
	}
	return len;
}

void staging_write_end(struct staged *st, uint64_t off, ssize_t n)
{
	uint64_t size;

	if (n >= 0 && off + n <= __atomic_load_n(&st->alloc_size, __ATOMIC_RELAXED))
		return;			/* in place */
	if (staging_size(st, &size))
		return;
	pthread_mutex_lock(&st->lock);
	/* write(2) leaves its pages dirty: never dropped, like those alloc_range() makes */
	if (n > 0 && st->alloc_size >= off && st->alloc_size < MIN(off + n, size))
		st->alloc_size = MIN(off + n, size);
	pthread_mutex_unlock(&st->lock);
	/* A short or failed write grew staging less than was charged. */
	if (ALIGN_UP(size, page_size_of(st)) < __atomic_load_n(&st->charged, __ATOMIC_RELAXED))
		budget_set(st, ALIGN_UP(size, page_size_of(st)), NULL, true);
}

int staging_check_lost(struct staged *st, uint64_t off, uint64_t len)
{
	uint64_t end, first = UINT64_MAX, n = 0;
	unsigned char vec[512];
	char path[PATH_MAX];

	if (st->mode == STAGING_HUGETLB)	/* hugetlb pages are never dropped */
		return 0;
	pthread_mutex_lock(&st->lock);
	end = MIN(MIN(off + len, st->alloc_size), st->map_len);
	pthread_mutex_unlock(&st->lock);
	off = ALIGN_DOWN(off, 4096);
	while (off < end) {
		uint64_t pages = MIN((end - off + 4095) / 4096, (uint64_t)sizeof(vec));

		if (mincore((char *)st->map + off, pages * 4096, vec) < 0)
			return 0;	/* cannot tell: the content checks still run */
		for (uint64_t i = 0; i < pages; i++) {
			uint64_t p = off + i * 4096;

			/* Not uptodate in memory: allocated-but-unwritten pages are uptodate
			 * (alloc_range()), so it is swapped out (SEEK_DATA finds it) or gone. */
			if ((vec[i] & 1) || lseek(st->memfd, p, SEEK_DATA) == (off_t)p)
				continue;
			first = MIN(first, p);
			n++;
		}
		off += pages * 4096;
	}
	if (!n)
		return 0;
	if (relative_path(st->ino, path, sizeof(path)))
		snprintf(path, sizeof(path), "(path unknown)");
	pthread_mutex_lock(&st->lock);
	st->stats.lost_pages += n;
	st->lost_from = MIN(st->lost_from, first);
	pthread_mutex_unlock(&st->lock);
	log_err("staging ino=%" PRIu64 " %s: the kernel dropped %" PRIu64 " staged page(s) from "
		"offset %" PRIu64 ": not committed, the backing file keeps its data; fsync and "
		"flush of it fail with EIO", (uint64_t)st->ino->src_ino, path, n, first);
	return -EIO;
}

int staging_sync_map(struct staged *st)
{
	uint64_t size;
	int r;

	hugetlb_adopt_shrink(st);
	r = staging_size(st, &size);

	if (r)
		return r;
	if (size != st->size) {	/* passthrough writes past EOF grew it: charge that */
		budget_set(st, ALIGN_UP(size, page_size_of(st)), NULL, true);
		if (size > st->size)
			budget_note_growth(st, size);
	}
	if (!st->sealed)
		alloc_growth_locked(st, size);
	st->size = size;
	if (size <= st->map_len && st->map_len - size < page_size_of(st) && (size || !st->map))
		return 0;
	return map_ro(st, size);
}

/* A new fd on the backing file, or -errno. */
static int open_backing(struct inode *ino, int flags)
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
	fd = open_backing(ino, O_RDWR | O_DIRECT);
	if (fd < 0 && cfg->direct_io == TRI_ON)
		log_warn("ino=%" PRIu64 ": direct_io=on but O_DIRECT open failed: %s",
			 (uint64_t)ino->src_ino, strerror(-fd));
	return fd < 0 ? -1 : fd;
}

/*
 * The backing file is opened when staging needs it (fill, commit, truncate, fallocate)
 * and closed after: a staged file costs the daemon one descriptor, its memfd.
 */
int staging_backing_open(struct staged *st)
{
	if (st->bfd >= 0)
		return 0;
	st->bfd = open_backing(st->ino, O_RDWR);
	if (st->bfd < 0) {
		int r = st->bfd;

		st->bfd = -1;
		return r;
	}
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
static int backing_fd(struct staged *st)
{
	int r = staging_backing_open(st);

	if (r) {
		errno = -r;
		return -1;
	}
	return st->bfd;
}

/* A new staging file of st->mode holding @size zero bytes; the fd or -errno. */
static int new_memfd(struct staged *st, uint64_t size)
{
	int fd = backend_create(st), r;

	if (fd < 0)
		return fd;
	r = backend_resize(st, fd, 0, size, false);	/* the caller writes every byte */
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
 * Fill staging from the backing file with io_uring reads (O_DIRECT where possible) into
 * bounce slots; each completed read is fingerprinted while other reads are in flight and
 * copied into staging with pwrite(2). Reading straight into a mapping of staging would
 * save that copy but pays a page-table fault per 4 KiB when the hash first touches it
 * (measured: 1 GiB in ~2.5 s vs ~0.2 s for the copy). Huge-page staging (thp, hugetlb) is
 * filled through a mapping: 2 MiB pages fault 512 times less, and hugetlbfs has no write(2).
 */
static int fill(struct staged *st, uint64_t size)
{
	struct dirty_map *dm = st->dm;
	uint64_t cs = dm->chunk_size, io = MAX((uint64_t)cfg->io_size, cs);
	uint64_t direct_end = st->dfd >= 0 ? ALIGN_DOWN(size, 4096) : 0;
	unsigned depth = cfg->uring_depth, inflight = 0, nfree = depth;
	struct req { uint64_t off, len; } *req;
	unsigned *freelist;
	uint64_t next = 0, maplen = ALIGN_UP(size, page_size_of(st));
	bool via_map = page_size_of(st) > 4096;	/* huge pages: few faults */
	struct io_uring ring;
	char *wmap = NULL, *bounce = NULL;
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
	/* new_memfd() allocated all pages up front (dirty, so never dropped), which is also
	 * ~3x faster than faulting them in one by one under the direct reads (measured:
	 * 1 GiB cold fill 0.8 -> 2.5 GB/s). The fill writes every byte: all uptodate. */
	if (via_map) {
		wmap = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, 0);
		if (wmap == MAP_FAILED) {
			r = -errno;
			goto out_free;
		}
	} else {
		bounce = mmap(NULL, (size_t)depth * io, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (bounce == MAP_FAILED) {
			bounce = NULL;
			r = -errno;
			goto out_free;
		}
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
			io_uring_prep_read(sqe, fd, via_map ? wmap + next : bounce + (size_t)slot * io,
					   req[slot].len, next);
			io_uring_sqe_set_data64(sqe, slot);
			next += req[slot].len;
			inflight++;
		}
		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0)
			goto out_drain;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t data = io_uring_cqe_get_data64(cqe);
			unsigned slot = data & 0xffffffff;
			uint64_t off = req[slot].off, end = off + req[slot].len;
			char *buf = via_map ? wmap + off : bounce + (size_t)slot * io;
			int res = cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			if (data & FILL_COPY) {	/* the copy into staging finished */
				if (res < 0 || (uint64_t)res < end - off) {
					if (res < 0 || pwrite_full(st->memfd, buf + res, end - off - res,
								   off + res) < 0) {
						r = res < 0 ? res : -errno;
						goto out_drain;
					}
				}
				freelist[nfree++] = slot;
				continue;
			}
			if (via_map)
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
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				io_uring_prep_write(sqe, st->memfd, buf, end - off, off);
				io_uring_sqe_set_data64(sqe, FILL_COPY | slot);
				sqe->flags |= IOSQE_ASYNC;
				inflight++;
			}
		}
	}
	/* A chunk split between two reads (at the direct/buffered boundary) is hashed now,
	 * from staging (the bounce slots are all free again). */
	for (uint64_t i = 0; i < dm->nchunks; i++) {
		uint64_t len = MIN(cs, size - i * cs);

		if (dm->fp[i] != DIRTY_FP_NONE)
			continue;
		if (via_map) {
			dirty_set(dm, i, dirty_hash(wmap + i * cs, len));
			continue;
		}
		for (uint64_t got = 0; got < len;) {	/* io >= cs: one slot holds it */
			ssize_t n = pread(st->memfd, bounce + got, len - got, i * cs + got);

			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				goto out_ring;
			}
			got += n;
		}
		dirty_set(dm, i, dirty_hash(bounce, len));
	}
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
	if (wmap)
		munmap(wmap, maplen);
out_free:
	if (bounce)
		munmap(bounce, (size_t)depth * io);
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
	if (st->lockfd >= 0)
		close(st->lockfd);
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

/* The file's path below the mount root ("/dir/name") into @buf, or -errno. */
static int relative_path(struct inode *ino, char *buf, size_t len)
{
	char root[PATH_MAX];
	ssize_t n, rn;

	n = inode_readlink(ino, buf, len - 1);
	rn = inode_readlink(inode_root(), root, sizeof(root) - 1);
	if (n < 0 || rn < 0)
		return -errno;
	buf[n] = 0;
	root[rn] = 0;
	if (rn == 1)	/* the source is "/" */
		rn = 0;
	if (strncmp(buf, root, rn) || buf[rn] != '/')
		return -EXDEV;
	memmove(buf, buf + rn, n - rn + 1);
	return 0;
}

/* The mode staging_paths gives @ino (the mount's staging when no rule matches). */
static enum staging_mode choose_mode(struct inode *ino)
{
	char path[PATH_MAX];

	if (!cfg->nstaging_rules)
		return cfg->staging;
	if (relative_path(ino, path, sizeof(path))) {
		log_warn("stage ino=%" PRIu64 ": path unknown, staging_paths not applied",
			 (uint64_t)ino->src_ino);
		return cfg->staging;
	}
	return conf_staging_mode_for(cfg, path);
}

static void set_mode(struct staged *st, enum staging_mode mode)
{
	st->mode = mode;
	st->page_size = mode_page_size(mode);
}

/* hugetlb pool too small for @size: shmem if configured, else a clear error. */
static int hugetlb_short(struct staged *st, uint64_t size)
{
	if (!cfg->hugetlb_fallback) {
		log_err("stage ino=%" PRIu64 " (%" PRIu64 " bytes): hugetlb pool too small and "
			"hugetlb_fallback=no: open refused", (uint64_t)st->ino->src_ino, size);
		return -ENOMEM;
	}
	log_notice("stage ino=%" PRIu64 ": hugetlb pool too small, staging it in shmem "
		   "(hugetlb_fallback=yes)", (uint64_t)st->ino->src_ino);
	set_mode(st, STAGING_SHMEM);
	return 0;
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
static int lock_backing(struct staged *st, int fd)
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

int staging_create(struct inode *ino, struct staged **out)
{
	uint64_t t0 = now_ns(), size;
	struct staged *st;
	struct stat sb;
	int r;

	/* Idle clean files go first; past half as many again, idle dirty ones are committed
	 * and go too (each costs an fdatasync here), so descriptors stay bounded. */
	if (staging_trim(ino, false, SIZE_MAX)) {
		flusher_kick();
		pthread_mutex_lock(&slist.lock);
		bool hard = slist.count >= slist.resident_max + slist.resident_max / 2;
		pthread_mutex_unlock(&slist.lock);
		if (hard)	/* a few per open: the flusher commits the rest */
			staging_trim(ino, true, 2);
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->memfd = st->bfd = st->dfd = st->lockfd = -1;
	st->lost_from = UINT64_MAX;
	st->ino = ino;		/* for log lines; the reference is taken on success */
	set_mode(st, choose_mode(ino));
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->commit_lock, NULL);
	r = staging_backing_open(st);
	if (r)
		goto err_free;
	st->lockfd = open_backing(ino, O_RDWR);
	if (st->lockfd < 0) {
		r = st->lockfd;
		st->lockfd = -1;
		goto err_free;
	}
	r = lock_backing(st, st->lockfd);
	if (r)
		goto err_free;
	if (fstat(st->bfd, &sb) < 0) {	/* under the lock: what the other stager left */
		r = -errno;
		goto err_free;
	}
	size = sb.st_size;
	if (st->mode == STAGING_HUGETLB) {
		r = hugetlb_check_pool(st, size);
		if (r == -ENOSPC)
			r = hugetlb_short(st, size);
		if (r)
			goto err_free;
	}
	r = budget_set(st, ALIGN_UP(size, page_size_of(st)), ino, false);
	if (r)
		goto err_free;
	st->dm = dirty_create(cfg->chunk_size);
	if (!st->dm) {
		r = -ENOMEM;
		goto err_uncharge;
	}
	r = dirty_resize(st->dm, size);
	if (r)
		goto err_uncharge;
	r = new_memfd(st, size);
	if (r == -EMFILE) {
		inode_fd_reclaim();	/* idle cached inode fds make room */
		r = new_memfd(st, size);
	}
	if (r == -ENOSPC && st->mode == STAGING_HUGETLB) {	/* the pool shrank meanwhile */
		r = hugetlb_short(st, size);
		if (!r) {
			budget_set(st, ALIGN_UP(size, page_size_of(st)), ino, true);
			r = new_memfd(st, size);
		}
	}
	if (r < 0)
		goto err_uncharge;
	st->memfd = r;
	st->logical_size = st->alloc_size = size;
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
	st->bk_mtim = sb.st_mtim;
	st->bk_ctim = sb.st_ctim;
	st->bk_size = sb.st_size;
	staging_backing_close(st);	/* filled: reopened by the next commit */
	inode_ref(ino);
	list_add(st);
	metrics_add(&metrics.files_staged, 1);
	*out = st;
	uint64_t dt = now_ns() - t0;

	log_debug("staged ino=%" PRIu64 " size=%" PRIu64 " mode=%s page=%" PRIu64 "K in %.3f ms "
		  "(%.0f MB/s, %s)", (uint64_t)ino->src_ino, size, conf_staging_name(st->mode),
		  st->page_size >> 10, dt / 1e6, dt ? size * 1e3 / dt : 0.0,
		  st->dfd >= 0 ? "direct" : "buffered");
	return 0;

err_uncharge:
	budget_set(st, 0, NULL, true);
err_free:
	st->ino = NULL;		/* no reference was taken */
	staged_free(st);
	return r;
}

void (*staging_detach_hook)(struct inode *ino);

/* Take @st off its inode and the list; ino->lock held. The caller's refs stay valid. */
static void staging_detach(struct staged *st)
{
	/* No longer the file's stager: the next open may stage it while refs keep st. */
	if (st->lockfd >= 0) {
		close(st->lockfd);	/* closing the last fd of the description unlocks */
		st->lockfd = -1;
	}

	if (staging_detach_hook)
		staging_detach_hook(st->ino);	/* the kernel lets go of the memfd */
	st->ino->st = NULL;
	pthread_mutex_lock(&slist.lock);
	if (st->prev)
		st->prev->next = st->next;
	else
		slist.head = st->next;
	if (st->next)
		st->next->prev = st->prev;
	slist.count--;
	metrics_add(&metrics.files_dropped, 1);
	slist.used -= MIN(st->charged, slist.used);
	st->charged = 0;
	pthread_mutex_unlock(&slist.lock);
	staging_put(st);	/* the list's reference */
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
/*
 * True unless a write lease on the staging file can be granted: some file other than ours
 * is open on it, for writing (a passthrough open, or a writable shared mapping, which keeps
 * the backing file it maps open after close(2) and the FUSE RELEASE) or for reading. Our
 * own view of it is a private mapping (staging_sync_map()), which counts as neither. A
 * memfd's own descriptor is not counted as open for writing, so shmem staging is probed
 * through a reopened one. The lease is dropped at once; an opener that raced it waits that
 * long (SIGIO, which a break sends us, is ignored: main()). Errors answer true (keep
 * scanning). hugetlb staging is served by the daemon: its opens are counted already.
 */
bool staging_open_elsewhere(struct staged *st)
{
	char path[64];
	int fd = st->memfd;
	bool busy;

	if (st->mode == STAGING_HUGETLB)
		return false;
	if (st->mode == STAGING_SHMEM) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", st->memfd);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return true;
	}
	/*
	 * The kernel drops a passthrough open's backing file when the closing task returns to
	 * user space, which may come after its RELEASE reached us: a file just closed is
	 * asked again for up to ~30 ms before it counts as still open (a mapping stays).
	 */
	for (unsigned us = 1000;; us *= 2) {
		busy = fcntl(fd, F_SETLEASE, F_WRLCK) < 0;
		if (!busy) {
			fcntl(fd, F_SETLEASE, F_UNLCK);
			break;
		}
		if (errno != EAGAIN || us > 16000)
			break;
		usleep(us);
	}
	if (fd != st->memfd)
		close(fd);
	return busy;
}

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
	return false;
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
	hugetlb_adopt_shrink(st);
	r = staging_size(st, &size);
	if (r)
		return r;
	/* A page lost from the sealed file would be copied as zeros: not silently. */
	staging_check_lost(st, 0, size);
	fd = new_memfd(st, size);
	if (fd < 0) {
		log_err("unseal ino=%" PRIu64 ": new %s staging: %s", (uint64_t)st->ino->src_ino,
			conf_staging_name(st->mode), strerror(-fd));
		return fd == -ENOSPC ? -ENOMEM : fd;
	}
	/* hugetlbfs has no write(): copy through a mapping */
	if (st->mode == STAGING_HUGETLB && size) {
		uint64_t len = ALIGN_UP(size, page_size_of(st));
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
	st->alloc_size = size;		/* new_memfd() allocated it, the copy wrote it all */
	st->sealed = false;
	r = map_ro(st, size);
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
	st->bk_mtim = sb.st_mtim;
	st->bk_ctim = sb.st_ctim;
	st->bk_size = sb.st_size;
}

int staging_lock_writer(struct staged *st)
{
	struct inode *ino = st->ino;
	struct stat sb;
	int fd, r;

	if (st->lockfd >= 0)
		return 0;
	fd = open_backing(ino, O_RDWR);
	if (fd < 0)
		return fd;
	r = lock_backing(st, fd);
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
	log_debug("locked ino=%" PRIu64 " (stager again)", (uint64_t)ino->src_ino);
	return 0;

err_close:
	close(fd);
	return r;
}

void staging_unlock_if_clean(struct staged *st)
{
	struct inode *ino = st->ino;
	bool quiet;

	pthread_mutex_lock(&ino->lock);
	quiet = ino->st == st && st->lockfd >= 0 && !ino->nopen_w && !st->pending_error &&
		staging_known_clean(st) && !lease_count(st);
	if (quiet) {
		pthread_mutex_lock(&st->lock);
		quiet = !st->may_change;
		pthread_mutex_unlock(&st->lock);
	}
	if (quiet) {
		close(st->lockfd);
		st->lockfd = -1;
		log_debug("unlocked ino=%" PRIu64 " (committed, clean, no writer)",
			  (uint64_t)ino->src_ino);
	}
	pthread_mutex_unlock(&ino->lock);
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

void staging_drop(struct staged *st)
{
	staging_detach(st);
}

size_t staging_trim(struct inode *self, bool commit, size_t limit)
{
	size_t over;

	pthread_mutex_lock(&slist.lock);
	over = slist.count >= slist.resident_max ? slist.count - slist.resident_max + 1 : 0;
	pthread_mutex_unlock(&slist.lock);
	if (over)
		evict_lru(0, self, MIN(over, limit), commit);
	pthread_mutex_lock(&slist.lock);
	over = slist.count >= slist.resident_max ? slist.count - slist.resident_max + 1 : 0;
	pthread_mutex_unlock(&slist.lock);
	return over;
}

bool staging_release_if_idle(struct staged *st)
{
	struct inode *ino = st->ino;
	bool dropped = false;

	pthread_mutex_lock(&ino->lock);
	if (ino->st == st && !ino->nopen && !lease_count(st) && st->sealed && !st->pending_error &&
	    !flusher_is_dirty(st)) {
		log_debug("dropped ino=%" PRIu64 " (idle and clean)", (uint64_t)ino->src_ino);
		staging_detach(st);
		dropped = true;
	}
	pthread_mutex_unlock(&ino->lock);
	return dropped;
}

/*
 * Free staging of other files than @self, least recently used first, until @need bytes
 * are free; returns the bytes freed. Only clean files with no open, no lease and no
 * writer (sealed, or sealable now) go: never a dirty, open or leased one. Inode locks of
 * the victims are only tried (the caller may hold @self's), so a busy file is skipped.
 */
static uint64_t evict_lru(uint64_t need, struct inode *self, size_t nfiles, bool commit)
{
	uint64_t freed = 0;
	struct staged **skip = NULL;
	size_t nskip = 0, evicted = 0;

	while (freed < need || evicted < nfiles) {
		struct staged *st, *victim = NULL, **v;
		struct inode *ino;

		pthread_mutex_lock(&slist.lock);
		for (st = slist.head; st; st = st->next) {
			bool skipped = false;

			for (size_t i = 0; i < nskip; i++)
				skipped |= skip[i] == st;
			/* Unlocked peeks, checked again under ino->lock. */
			if (skipped || st->ino == self || st->nleases || st->pending_error ||
			    __atomic_load_n(&st->ino->nopen, __ATOMIC_RELAXED))
				continue;
			/* Trimming the file count without commits: known clean ones only. */
			if (!need && !commit && !staging_known_clean(st))
				continue;
			if (!victim || st->last_use < victim->last_use)
				victim = st;
		}
		if (victim)
			victim->refs++;
		pthread_mutex_unlock(&slist.lock);
		if (!victim)
			break;
		v = realloc(skip, (nskip + 1) * sizeof(*skip));
		if (!v) {
			staging_put(victim);
			break;
		}
		skip = v;
		skip[nskip++] = victim;
		ino = victim->ino;
		if (pthread_mutex_trylock(&ino->lock) == 0) {
			/* Clean first (known, or by a scan): a dirty file is not sealed (a
			 * sealed memfd can never be written again, a reopen would copy it);
			 * then the seal proves no mapping or pin is left, and a pin that wrote
			 * since the last commit is found by the scan after it. */
			if (commit && ino->st == victim && !ino->nopen &&
			    !staging_known_clean(victim))
				flusher_commit(victim);	/* over resident_max: make it clean */
			if (ino->st == victim && !ino->nopen && !lease_count(victim) &&
			    !victim->pending_error &&
			    (victim->sealed || staging_known_clean(victim) ||
			     !flusher_is_dirty(victim)) &&
			    staging_try_seal(victim) && !flusher_is_dirty(victim)) {
				uint64_t bytes = victim->charged;

				log_info("evicted ino=%" PRIu64 " (%s, %" PRIu64 " bytes, idle "
					 "%.1f s): staging_budget reached", (uint64_t)ino->src_ino,
					 conf_staging_name(victim->mode), bytes,
					 (now_ns() - victim->last_use) / 1e9);
				staging_detach(victim);
				metrics_evicted(bytes);
				freed += bytes;
				evicted++;
			}
			pthread_mutex_unlock(&ino->lock);
		}
	}
	for (size_t i = 0; i < nskip; i++)
		staging_put(skip[i]);
	free(skip);
	return freed;
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
		r = lease_break_start(st, "truncate");
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
		r = budget_set(st, ALIGN_UP(size, page_size_of(st)), st->ino, false);
		if (r) {
			log_notice("truncate ino=%" PRIu64 " to %" PRIu64 " bytes: refused, "
				   "staging_budget=%" PRIu64 " reached (%" PRIu64 " bytes staged)",
				   (uint64_t)st->ino->src_ino, size, cfg->staging_budget,
				   staging_bytes_used());
			goto out;
		}
	}
	r = set_size(st, old, size);
	if (r) {
		if (size > old)
			budget_set(st, ALIGN_UP(old, page_size_of(st)), NULL, true);
		goto out;
	}
	st->needs_sync = true;	/* the next commit fdatasyncs the new size */
	if (backing_fd(st) < 0 || ftruncate(st->bfd, size) < 0) {
		r = -errno;
		log_err("truncate ino=%" PRIu64 " backing to %" PRIu64 ": %s",
			(uint64_t)st->ino->src_ino, size, strerror(-r));
		/* Staging has the new size; the next commit sets the backing size. */
		st->committed_size = UINT64_MAX;
	}
	if (size < old)
		budget_set(st, ALIGN_UP(size, page_size_of(st)), NULL, true);
	pthread_mutex_lock(&st->lock);
	if (!r) {
		st->committed_size = size;
		staging_note_backing(st);	/* our own truncate: not a change behind us */
	}
	if (size <= st->lost_from)
		st->lost_from = UINT64_MAX;	/* the lost pages are cut off */
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
		r = lease_break_start(st, mode & FALLOC_FL_PUNCH_HOLE ? "punch hole" :
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
		 * can appear clean (a read fault) and be dropped (see alloc_range()). */
		if (off < (off_t)phys_size(st, old)) {
			uint64_t a = ALIGN_DOWN((uint64_t)off, page_size_of(st));
			uint64_t b = MIN(ALIGN_UP(end, page_size_of(st)), phys_size(st, old));
			int ra = st->mode == STAGING_HUGETLB ?
				 (fallocate(st->memfd, FALLOC_FL_KEEP_SIZE, a, b - a) < 0 ? -errno : 0) :
				 alloc_range(st, st->memfd, a, b, true);

			if (ra) {
				log_err("punch ino=%" PRIu64 ": staging pages not allocated again: %s",
					(uint64_t)st->ino->src_ino, strerror(-ra));
				pthread_mutex_lock(&st->lock);
				st->alloc_size = MIN(st->alloc_size, a);
				pthread_mutex_unlock(&st->lock);
			}
		}
		st->needs_sync = true;	/* blocks freed: the next commit fdatasyncs */
		if (backing_fd(st) < 0 || (fallocate(st->bfd, mode, off, len) < 0 &&
		    fallocate(st->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)) {
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
			r = budget_set(st, ALIGN_UP(end, page_size_of(st)), st->ino, false);
			if (r)
				goto out;
		}
		/* Growth past the old end is written with zeros by set_size() (below). */
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
		if (backing_fd(st) < 0) {
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
		int rs = set_size(st, old, end);

		if (rs && !r)
			r = rs;
		if (rs) {
			budget_set(st, ALIGN_UP(old, page_size_of(st)), NULL, true);
			goto out;
		}
		st->needs_sync = true;
		if ((backing_fd(st) < 0 || ftruncate(st->bfd, end) < 0) && !r)
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
	uint64_t ps = page_size_of(st), old, end = off + len, moff, mlen;
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
		r = budget_set(st, ALIGN_UP(end, ps), NULL, false);
		if (r)
			goto out;
		r = set_size(st, old, end);
		if (r) {
			budget_set(st, ALIGN_UP(old, ps), NULL, true);
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
