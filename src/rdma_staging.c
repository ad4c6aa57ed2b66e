// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_staging.c - owns staged files' lifetime: the list of staged files and their
 * references, creation (choice of memory, fill, map), the daemon's read-only map of each,
 * growth made behind the daemon, pages the kernel lost, the budget charge, the stager lock
 * on the backing file, and dropping a file. Memory backends: staging_mem.c; fill and
 * backing fds: staging_backing.c; seal: staging_seal.c; resize and daemon-served I/O:
 * staging_resize.c. Calls no module above it (struct staging_policy).
 */
#include "rdmafsd.h"
#include "metrics.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <utlist.h>

static struct {
	pthread_mutex_t lock;		/* protects the list, every st->refs, used */
	struct staged *head;		/* utlist */
	uint64_t used;			/* bytes of staging charged against the budget */
	size_t count;
	/*
	 * Staged files kept beyond which idle ones are evicted (LRU), whatever the budget:
	 * each holds descriptors (memfd, backing fds), and resident staging must not run the
	 * daemon out of them. From RLIMIT_NOFILE at start-up.
	 */
	size_t resident_max;
} slist = { .lock = PTHREAD_MUTEX_INITIALIZER };

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
	return staging_mem_init();
}

void staging_exit(void)
{
	staging_mem_exit();
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

/* What staging asks of the modules above it (staging_set_policy()); NULL: nothing. */
struct staging_policy staging_pol;

void staging_set_policy(const struct staging_policy *p)
{
	staging_pol = *p;
}

static void alloc_growth_locked(struct staged *st, uint64_t size);
static int relative_path(struct inode *ino, char *buf, size_t len);

/*
 * staging_budget_set(); @wait: the caller holds no commit_lock (a file being staged), so
 * eviction may wait for a victim's.
 */
static int budget_set(struct staged *st, uint64_t bytes, struct inode *self, bool force,
		      bool wait)
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
		if (tries || !staging_pol.evict || !staging_pol.evict(need, self, wait))
			return -ENOSPC;
	}
}

int staging_budget_set(struct staged *st, uint64_t bytes, struct inode *self, bool force)
{
	return budget_set(st, bytes, self, force, false);
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

/* Resize staging to @size (from @old); the caller holds commit_lock. */
int staging_set_size(struct staged *st, uint64_t old, uint64_t size)
{
	int r;

	pthread_mutex_lock(&st->lock);
	alloc_growth_locked(st, old);	/* growth nobody told us of, first */
	pthread_mutex_unlock(&st->lock);
	r = staging_mem_resize(st, st->memfd, old, size, true);
	if (r)
		return r;
	if (st->mode == STAGING_HUGETLB)
		__atomic_store_n(&st->logical_size, size, __ATOMIC_RELEASE);
	pthread_mutex_lock(&st->lock);
	staging_rec_update(st);
	if (size <= old)
		st->alloc_size = MIN(st->alloc_size, size);
	else if (st->alloc_size >= old)
		st->alloc_size = size;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* Open the memfd read-only: a mapping of it has no VM_MAYWRITE and so does not block
 * F_SEAL_WRITE (the seal is how we learn that no writable mapping or pin is left). */
int staging_map_ro(struct staged *st, uint64_t size)
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
	 * (F_SEAL_WRITE) nor as another open (staging_open_elsewhere()'s lease).
	 * hugetlb: a private mapping would reserve pool pages; a read-only open is used.
	 */
	if (st->mode != STAGING_HUGETLB) {
		fd = dup(st->memfd);
	} else {
		fd = open(proc_fd_path(path, st->memfd), O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	size = ALIGN_UP(size, staging_page_size(st));
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
void staging_adopt_shrink(struct staged *st)
{
	struct stat sb;

	if (st->mode != STAGING_HUGETLB || fstat(st->memfd, &sb) < 0 ||
	    (uint64_t)sb.st_size >= st->logical_size)
		return;
	log_warn("staging ino=%" PRIu64 ": truncated to %" PRIu64 " bytes behind the daemon "
		 "(a mapped fd), size %" PRIu64 " adopted", (uint64_t)st->ino->src_ino,
		 (uint64_t)sb.st_size, st->logical_size);
	__atomic_store_n(&st->logical_size, sb.st_size, __ATOMIC_RELEASE);
	staging_rec_update(st);
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
	r = staging_mem_alloc(st, st->memfd, st->alloc_size, size, true);
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
		staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), NULL, true);
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
	return ALIGN_DOWN(room, staging_page_size(st));
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
	uint64_t ps = staging_page_size(st), old, end = off + len, room;
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
	/* No commit_lock held here: eviction may wait for a victim's (budget_set()). */
	r = budget_set(st, ALIGN_UP(end, ps), st->ino, false, true);
	if (r == -ENOSPC) {
		/* Write what fits, as a full filesystem does; the next write gets ENOSPC. */
		room = budget_room(st);
		if (room > off && room > old) {
			len = room - off;
			end = room;
			r = budget_set(st, end, st->ino, false, true);
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
		/* The hole before the write: allocated now (see staging_mem_write_zeros()). */
		r = staging_mem_write_zeros(st->memfd, old, off);
		if (r) {
			if (ftruncate(st->memfd, old) < 0)
				log_warn("staging ino=%" PRIu64 ": cannot undo a resize: %s",
					 (uint64_t)st->ino->src_ino, strerror(errno));
			staging_budget_set(st, ALIGN_UP(old, ps), NULL, true);
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
	bool map_fd;

	if (n >= 0 && off + n <= __atomic_load_n(&st->alloc_size, __ATOMIC_RELAXED))
		return;			/* in place */
	pthread_mutex_lock(&st->lock);
	map_fd = st->may_change;
	/*
	 * A growing write that wrote @n bytes: staging is at least off + n long (the kernel's
	 * inode lock keeps truncates and other writes out; only a map fd's ftruncate could
	 * shrink it behind us), and if that covers what staging_write_begin() charged there
	 * is nothing to give back: no fstat needed.
	 */
	if (n > 0 && !map_fd) {
		if (st->alloc_size >= off && st->alloc_size < off + n)
			st->alloc_size = off + n;
		if (ALIGN_UP(off + n, staging_page_size(st)) >=
		    __atomic_load_n(&st->charged, __ATOMIC_RELAXED)) {
			pthread_mutex_unlock(&st->lock);
			return;
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (staging_size(st, &size))
		return;
	pthread_mutex_lock(&st->lock);
	/* write(2) leaves its pages dirty: never dropped, like those staging_mem_alloc() makes */
	if (n > 0 && st->alloc_size >= off && st->alloc_size < MIN(off + n, size))
		st->alloc_size = MIN(off + n, size);
	pthread_mutex_unlock(&st->lock);
	/* A short or failed write grew staging less than was charged. */
	if (ALIGN_UP(size, staging_page_size(st)) < __atomic_load_n(&st->charged, __ATOMIC_RELAXED))
		staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), NULL, true);
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
			 * (staging_mem_alloc()), so it is swapped out (SEEK_DATA finds it) or
			 * gone. */
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

	staging_adopt_shrink(st);
	r = staging_size(st, &size);

	if (r)
		return r;
	if (size != st->size) {	/* passthrough writes past EOF grew it: charge that */
		staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), NULL, true);
		if (size > st->size)
			budget_note_growth(st, size);
	}
	if (!st->sealed)
		alloc_growth_locked(st, size);
	st->size = size;
	if (size <= st->map_len && st->map_len - size < staging_page_size(st) && (size || !st->map))
		return 0;
	return staging_map_ro(st, size);
}

void staging_list_add(struct staged *st)
{
	pthread_mutex_lock(&slist.lock);
	DL_APPEND(slist.head, st);	/* least recently used first */
	slist.count++;
	st->refs = 1;	/* the list's reference */
	pthread_mutex_unlock(&slist.lock);
}

void staged_free(struct staged *st)
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

struct staged *staging_find_kept(uint32_t slot)
{
	struct staged *st;

	pthread_mutex_lock(&slist.lock);
	for (st = slist.head; st && st->rslot != slot + 1; st = st->next)
		;
	if (st)
		st->refs++;
	pthread_mutex_unlock(&slist.lock);
	return st;
}

void staging_put_all(struct staged **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		staging_put(v[i]);
	free(v);
}

size_t staging_lru_pick(bool (*eligible)(struct staged *st, void *arg), void *arg,
			struct staged **v, size_t max)
{
	struct staged *st;
	size_t n = 0;

	pthread_mutex_lock(&slist.lock);
	for (st = slist.head; st && n < max; st = st->next)	/* least recently used first */
		if (eligible(st, arg)) {
			st->refs++;
			v[n++] = st;
		}
	pthread_mutex_unlock(&slist.lock);
	return n;
}

void staging_touch(struct staged *st)
{
	st->last_use = now_ns();
	pthread_mutex_lock(&slist.lock);
	if (st->prev) {		/* on the list: most recently used goes last */
		DL_DELETE(slist.head, st);
		DL_APPEND(slist.head, st);
	}
	pthread_mutex_unlock(&slist.lock);
}

void staging_count(size_t *count, size_t *resident_max)
{
	pthread_mutex_lock(&slist.lock);
	*count = slist.count;
	*resident_max = slist.resident_max;
	pthread_mutex_unlock(&slist.lock);
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
	st->page_size = staging_mem_page_size(mode);
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

int staging_create(struct inode *ino, struct staged **out)
{
	return staging_create_fd(ino, -1, out);
}

int staging_create_fd(struct inode *ino, int lockfd, struct staged **out)
{
	enum staging_mode mode = choose_mode(ino);
	uint64_t t0 = now_ns(), size;
	struct staged *st;
	struct stat sb;
	int r;

	if (mode == STAGING_NONE) {	/* served from the backing file: nothing to do */
		if (lockfd >= 0)
			close(lockfd);
		*out = NULL;
		return 0;
	}
	if (staging_pol.make_room)
		staging_pol.make_room(ino);	/* descriptors: evict past resident_max */
	st = calloc(1, sizeof(*st));
	if (!st) {
		if (lockfd >= 0)
			close(lockfd);
		return -ENOMEM;
	}
	st->memfd = st->bfd = st->dfd = st->lockfd = -1;
	st->lost_from = UINT64_MAX;
	st->ino = ino;		/* for log lines; the reference is taken on success */
	set_mode(st, mode);
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->commit_lock, NULL);
	st->lockfd = lockfd >= 0 ? lockfd : staging_open_backing(ino, O_RDWR);
	if (st->lockfd < 0) {
		r = st->lockfd;
		st->lockfd = -1;
		goto err_free;
	}
	r = staging_lock_backing(st, st->lockfd);
	if (r)
		goto err_free;
	if (fstat(st->lockfd, &sb) < 0) {	/* under the lock: what the other stager left */
		r = -errno;
		goto err_free;
	}
	size = sb.st_size;
	/* The fill's descriptors (buffered and O_DIRECT: two opens, a statfs and a statx),
	 * only for a file with bytes to fill: a new or empty file needs none until its
	 * first commit, which opens them then. */
	if (size) {
		r = staging_backing_open(st, size);
		if (r)
			goto err_free;
	}
	if (st->mode == STAGING_HUGETLB) {
		r = staging_mem_check_pool(st, size);
		if (r == -ENOSPC)
			r = hugetlb_short(st, size);
		if (r)
			goto err_free;
	}
	r = budget_set(st, ALIGN_UP(size, staging_page_size(st)), ino, false, true);
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
	r = staging_new_memfd(st, size, false);
	if (r == -EMFILE) {
		inode_fd_reclaim();	/* idle cached inode fds make room */
		r = staging_new_memfd(st, size, false);
	}
	if (r == -ENOSPC && st->mode == STAGING_HUGETLB) {	/* the pool shrank meanwhile */
		r = hugetlb_short(st, size);
		if (!r) {
			staging_budget_set(st, ALIGN_UP(size, staging_page_size(st)), ino, true);
			r = staging_new_memfd(st, size, false);
		}
	}
	if (r < 0)
		goto err_uncharge;
	st->memfd = r;
	st->logical_size = st->alloc_size = size;
	r = staging_fill(st, size);
	if (r) {
		log_err("stage ino=%" PRIu64 ": fill of %" PRIu64 " bytes failed: %s",
			(uint64_t)ino->src_ino, size, strerror(-r));
		goto err_uncharge;
	}
	r = staging_map_ro(st, size);
	if (r)
		goto err_uncharge;
	st->size = st->committed_size = size;
	st->last_use = now_ns();
	st->bk_mtim = sb.st_mtim;
	st->bk_ctim = sb.st_ctim;
	st->bk_size = sb.st_size;
	staging_backing_close(st);	/* filled: reopened by the next commit */
	r = staging_rec_create(st);	/* kept for the next generation (restart) */
	if (r)
		goto err_uncharge;
	inode_ref(ino);
	staging_list_add(st);
	metrics_add(&metrics.files_staged, 1);
	*out = st;
	uint64_t dt = now_ns() - t0;

	log_debug("staged ino=%" PRIu64 " size=%" PRIu64 " mode=%s page=%" PRIu64 "K in %.3f ms "
		  "(%.0f MB/s, %s)", (uint64_t)ino->src_ino, size, conf_staging_name(st->mode),
		  st->page_size >> 10, dt / 1e6, dt ? size * 1e3 / dt : 0.0,
		  st->dfd >= 0 ? "direct" : "buffered");
	return 0;

err_uncharge:
	staging_budget_set(st, 0, NULL, true);
err_free:
	st->ino = NULL;		/* no reference was taken */
	staged_free(st);
	return r;
}

void (*staging_detach_hook)(struct inode *ino);

/* Take @st off its inode and the list; ino->lock held. The caller's refs stay valid. */
static void staging_detach(struct staged *st)
{
	staging_rec_free(st);	/* a next generation must not resume it */
	/* No longer the file's stager: the next open may stage it while refs keep st. */
	if (st->lockfd >= 0) {
		close(st->lockfd);	/* closing the last fd of the description unlocks */
		st->lockfd = -1;
	}

	if (staging_detach_hook)
		staging_detach_hook(st->ino);	/* the kernel lets go of the memfd */
	st->ino->st = NULL;
	pthread_mutex_lock(&slist.lock);
	DL_DELETE(slist.head, st);
	st->prev = st->next = NULL;	/* off the list: staging_touch() leaves it alone */
	slist.count--;
	metrics_add(&metrics.files_dropped, 1);
	slist.used -= MIN(st->charged, slist.used);
	st->charged = 0;
	pthread_mutex_unlock(&slist.lock);
	staging_put(st);	/* the list's reference */
}

void staging_note_writable_map(struct staged *st)
{
	pthread_mutex_lock(&st->lock);
	st->may_change = true;
	staging_rec_update(st);
	pthread_mutex_unlock(&st->lock);
}

void staging_drop(struct staged *st)
{
	staging_detach(st);
}
