// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * inode.c - owns the inode table: one struct inode per backing object (dev, ino), its file
 * handle, lookup and reference counts, and the bounded cache of O_PATH fds opened from the
 * handles. The FUSE node id is a slot of a state table (restart.h) that keeps what the
 * kernel's node ids mean across the daemon's death: node id = slot + 2 (1 is the root).
 */
#include "rdmafsd.h"
#include "restart.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct inode_key {
	dev_t dev;
	ino_t ino;
};

/*
 * Node ids: 4M, so that a million cached inodes leave room for new files (2^20 refused
 * lookups and creates with ENOSPC at 1,048,576, issue 14). The table is sparse (a page
 * per 22 records used, ~744 MiB of address space for all), as is by_slot (8 bytes each).
 */
#define INODE_TAB_CAP (1u << 22)
#define INODE_TAB_LAYOUT 1

/* What a node id means, in the inode table (RESTART_T_INODES). */
struct inode_rec {
	uint64_t src_dev, src_ino;
	uint64_t nlookup;	/* may be over-counted after a death, never under */
	uint32_t type;
	int32_t backing_id;	/* F9: reused by the next generation, never re-registered */
	uint32_t bk_kind;
	uint32_t perm;		/* its fd is in the store (SUP_K_INODEFD, slot) */
	uint32_t fh_bytes;	/* 0: no file handle */
	int32_t fh_type;
	uint8_t fh[MAX_HANDLE_SZ];
};

static struct {
	pthread_mutex_t lock;		/* protects by_key, nlookup, nref of every inode */
	struct inode *by_key;		/* uthash, keyed by (src_dev, src_ino) */
	struct inode root;		/* its fd is permanent: the mount fd for handles too */
	bool handles;			/* the source reopens by file handle */
	int mount_fd;			/* open_by_handle_at()'s anchor (not O_PATH); owned */
	struct restart_table *tab;	/* node ids: struct inode_rec per slot */
	struct inode **by_slot;		/* slot -> inode (written under lock) */
} itab = { .lock = PTHREAD_MUTEX_INITIALIZER, .mount_fd = -1 };

static struct inode_rec *rec_of(struct inode *ino)
{
	return restart_table_rec(itab.tab, ino->slot);
}

/*
 * The O_PATH fds of inodes reopened from their handles, most recently used first. An
 * inode with a permanent fd (root, no handle, inode_keep_fd()) is not in it. Lock order:
 * itab.lock, then fdc.lock.
 */
static struct {
	pthread_mutex_t lock;		/* protects the list, count, and fd, fd_users, lru of
					 * every inode with a handle */
	struct inode *head;		/* utlist: head->lru_prev is the coldest */
	unsigned count, max;
	uint64_t opens, evictions;	/* open_by_handle_at calls, fds closed by the bound */
} fdc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void inode_init_fields(struct inode *ino, const struct stat *st)
{
	memset(ino, 0, sizeof(*ino));
	ino->fd = -1;
	ino->src_dev = st->st_dev;
	ino->src_ino = st->st_ino;
	ino->type = st->st_mode & S_IFMT;
	pthread_mutex_init(&ino->lock, NULL);
}

/* fdc.lock held */
static void lru_unlink(struct inode *ino)
{
	DL_DELETE2(fdc.head, ino, lru_prev, lru_next);
	ino->lru_next = ino->lru_prev = NULL;
	fdc.count--;
}

/* fdc.lock held */
static void lru_push(struct inode *ino)
{
	DL_PREPEND2(fdc.head, ino, lru_prev, lru_next);
	fdc.count++;
}

/*
 * Fds taken out of the cache, closed by fds_close() once the locks are dropped: closing
 * the last reference of an unlinked file frees its blocks in the backing filesystem
 * (milliseconds on ext4), which must not hold up every lookup and create.
 */
struct fds {
	unsigned n;
	int fd[16];
};

static void fds_close(struct fds *f)
{
	while (f->n)
		close(f->fd[--f->n]);
}

/*
 * Take idle cached fds from the cold end until at most @keep are cached, or @out is full
 * (the next trim takes more); fdc.lock held. The caller closes @out after unlocking.
 */
static void lru_trim(unsigned keep, struct fds *out)
{
	struct inode *ino = fdc.head ? fdc.head->lru_prev : NULL, *prev;	/* the tail */

	while (ino && fdc.count > keep && out->n < ARRAY_SIZE(out->fd)) {
		prev = ino == fdc.head ? NULL : ino->lru_prev;
		if (!ino->fd_users) {	/* a busy fd stays; the next put trims it */
			lru_unlink(ino);
			out->fd[out->n++] = ino->fd;
			ino->fd = -1;
			fdc.evictions++;
		}
		ino = prev;
	}
}

/* A copy of the file handle of O_PATH fd @fd, or NULL (no handle: keep the fd). */
static struct file_handle *handle_of(int fd)
{
	struct {
		struct file_handle fh;
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	struct file_handle *out;
	int mnt;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mnt, AT_EMPTY_PATH) < 0)
		return NULL;
	out = malloc(sizeof(*out) + h.fh.handle_bytes);
	if (out)
		memcpy(out, &h.fh, sizeof(*out) + h.fh.handle_bytes);
	return out;
}

/*
 * Cached inodes keep a file handle, not an fd, when the source allows it: a handle that
 * reopens (open_by_handle_at needs CAP_DAC_READ_SEARCH). Otherwise every inode keeps an
 * O_PATH fd, and the daemon needs one descriptor per inode the kernel caches.
 */
static void probe_handles(int rootfd)
{
	struct file_handle *fh = handle_of(rootfd);
	struct rlimit lim = { 0 };
	char path[64];
	int fd = -1;

	getrlimit(RLIMIT_NOFILE, &lim);
	/* Half the limit for cached fds, the rest for staged files and opens; an EMFILE
	 * closes the idle ones (inode_fd_reclaim()). */
	fdc.max = MIN(MAX(lim.rlim_cur / 2, 64), 16384);

	/* open_by_handle_at() takes no O_PATH fd for its mount (EBADF): one more fd. */
	itab.mount_fd = open(proc_fd_path(path, rootfd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fh && itab.mount_fd >= 0)
		fd = open_by_handle_at(itab.mount_fd, fh, O_PATH | O_CLOEXEC);
	if (fd >= 0) {
		itab.handles = true;
		close(fd);
		log_info("inodes reopen by file handle: at most %u cached O_PATH fds", fdc.max);
	} else {
		log_warn("source: no file handles (%s): one O_PATH fd per cached inode, the "
			 "kernel's inode cache is bounded by the fd limit (%llu)",
			 strerror(errno), (unsigned long long)lim.rlim_cur);
		if (itab.mount_fd >= 0)
			close(itab.mount_fd);
		itab.mount_fd = -1;
	}
	free(fh);
}

/* An inode an earlier generation made, from its record (no I/O); NULL: out of memory. */
static struct inode *inode_from_rec(uint32_t slot, struct inode_rec *rec)
{
	struct stat sb = { .st_dev = rec->src_dev, .st_ino = rec->src_ino,
			   .st_mode = rec->type };
	struct inode *ino = malloc(sizeof(*ino));

	if (!ino)
		return NULL;
	inode_init_fields(ino, &sb);
	ino->slot = slot;
	ino->nlookup = rec->nlookup;
	ino->backing_id = rec->backing_id;
	ino->bk_kind = rec->bk_kind;
	if (rec->fh_bytes && rec->fh_bytes <= MAX_HANDLE_SZ) {
		ino->fh = malloc(sizeof(*ino->fh) + rec->fh_bytes);
		if (!ino->fh) {
			free(ino);
			return NULL;
		}
		ino->fh->handle_bytes = rec->fh_bytes;
		ino->fh->handle_type = rec->fh_type;
		memcpy(ino->fh->f_handle, rec->fh, rec->fh_bytes);
	}
	if (rec->perm) {
		ino->fd = restart_take(SUP_TAG(SUP_K_INODEFD, slot));
		ino->fd_perm = ino->fd >= 0 || !ino->fh;
		if (!ino->fd_perm)
			rec->perm = 0;	/* lost: reopened by handle */
	}
	return ino;
}

#ifdef RDMAFS_TEST_KNOBS
/* Test knob: a resume leaves out the records of the source inodes RDMAFS_TEST_LOSE_INO
 * lists ("ino[,ino...]": an inconsistent table): the kernel still uses its node id (unknown_node()). */
static bool test_lose_node(const struct inode_rec *rec)
{
	const char *v = getenv("RDMAFS_TEST_LOSE_INO");
	char *end;

	for (; v && *v; v = *end ? end + 1 : end) {
		if (strtoull(v, &end, 10) == rec->src_ino)
			break;
		if (end == v)
			return false;
	}
	if (!v || !*v)
		return false;
	log_notice("test: node of ino=%" PRIu64 " left out of the resumed table",
		   (uint64_t)rec->src_ino);
	return true;
}
#else
static inline bool test_lose_node(const struct inode_rec *rec)
{
	(void)rec;
	return false;
}
#endif

/* Resumed: every node id the kernel may still use, back in the table. */
static int inode_resume(void)
{
	uint32_t hwm = restart_table_hwm(itab.tab), n = 0;

	for (uint32_t slot = 0; slot < hwm; slot++) {
		struct inode_rec *rec = restart_table_rec(itab.tab, slot);
		struct inode *ino;

		if (!restart_table_valid(itab.tab, slot) || test_lose_node(rec))
			continue;
		/* Forgotten by the kernel (nlookup 0) but maybe still referenced (a resident
		 * staging, an open handle): made too, freed by inode_resume_sweep() if not. */
		ino = inode_from_rec(slot, rec);
		if (!ino)
			return -ENOMEM;
		HASH_ADD_KEYPTR(hh, itab.by_key, &ino->src_dev, sizeof(struct inode_key), ino);
		itab.by_slot[slot] = ino;
		n++;
	}
	log_info("restart: %u node ids resumed", n);
	return 0;
}

int inode_table_init(const char *source)
{
	struct stat st;
	int fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	inode_init_fields(&itab.root, &st);
	itab.root.fd = fd;
	itab.root.nlookup = 2;	/* never forgotten */
	probe_handles(fd);
	itab.tab = restart_table_open(RESTART_T_INODES, sizeof(struct inode_rec),
				      INODE_TAB_LAYOUT, INODE_TAB_CAP);
	itab.by_slot = calloc(INODE_TAB_CAP, sizeof(*itab.by_slot));
	if (!itab.tab || !itab.by_slot) {
		int r = itab.tab ? -ENOMEM : -errno;

		inode_table_destroy();
		return r;
	}
	if (restart_table_adopted(itab.tab))
		return inode_resume();
	return 0;
}

static void inode_free(struct inode *ino)
{
	if (itab.tab) {
		if (rec_of(ino)->perm)
			restart_drop_async(SUP_TAG(SUP_K_INODEFD, ino->slot));
		/* Unhashed: no lookup finds it, so the slot is not reused before this. */
		__atomic_store_n(&itab.by_slot[ino->slot], NULL, __ATOMIC_RELEASE);
		restart_table_free(itab.tab, ino->slot);
	}
	pthread_mutex_lock(&fdc.lock);
	if (ino->fh && ino->fd >= 0 && !ino->fd_perm)
		lru_unlink(ino);
	pthread_mutex_unlock(&fdc.lock);
	if (ino->fd >= 0)
		close(ino->fd);
	free(ino->fh);
	pthread_mutex_destroy(&ino->lock);
	free(ino);
}

void inode_table_destroy(void)
{
	struct inode *ino, *tmp;

	pthread_mutex_lock(&itab.lock);
	HASH_ITER(hh, itab.by_key, ino, tmp) {
		HASH_DEL(itab.by_key, ino);
		inode_free(ino);
	}
	/* Replaced by a file that reused their number: out of the hash, still in a slot. */
	for (uint32_t slot = 0; itab.by_slot && itab.tab && slot < INODE_TAB_CAP; slot++) {
		ino = itab.by_slot[slot];
		if (ino && ino->unhashed)
			inode_free(ino);
	}
	pthread_mutex_unlock(&itab.lock);
	if (itab.root.fd > 0)
		close(itab.root.fd);
	itab.root.fd = -1;
	if (itab.mount_fd >= 0)
		close(itab.mount_fd);
	itab.mount_fd = -1;
	itab.handles = false;
	restart_table_close(itab.tab);
	itab.tab = NULL;
	free(itab.by_slot);
	itab.by_slot = NULL;
}

struct inode *inode_root(void)
{
	return &itab.root;
}

struct inode *inode_get(uint64_t fuse_ino)
{
	if (fuse_ino == FUSE_ROOT_ID)
		return &itab.root;
	if (fuse_ino < 2 || fuse_ino - 2 >= INODE_TAB_CAP)
		return NULL;
	return __atomic_load_n(&itab.by_slot[fuse_ino - 2], __ATOMIC_ACQUIRE);
}

uint64_t inode_fuse_ino(struct inode *ino)
{
	return ino == &itab.root ? FUSE_ROOT_ID : (uint64_t)ino->slot + 2;
}

uint64_t inode_generation(struct inode *ino)
{
	return ino == &itab.root ? 0 : restart_table_seq(itab.tab, ino->slot);
}

void inode_note_backing(struct inode *ino)
{
	struct inode_rec *rec;

	if (ino == &itab.root)
		return;
	rec = rec_of(ino);
	rec->backing_id = ino->backing_id;
	rec->bk_kind = ino->bk_kind;
}

void inode_for_each(void (*fn)(struct inode *ino, void *arg), void *arg)
{
	struct inode *ino, *tmp;

	HASH_ITER(hh, itab.by_key, ino, tmp)
		fn(ino, arg);
}

/*
 * Give O_PATH fd @fd (owned) to @ino if it has none cached: saves the next reopen.
 * itab.lock held: fds to close (@fd if not taken, trimmed ones) go to @out.
 */
static void adopt_fd(struct inode *ino, int fd, struct fds *out)
{
	pthread_mutex_lock(&fdc.lock);
	if (ino->fh && ino->fd < 0) {
		ino->fd = fd;
		lru_push(ino);
		fd = -1;
	}
	if (fd >= 0)
		out->fd[out->n++] = fd;
	lru_trim(fdc.max, out);
	pthread_mutex_unlock(&fdc.lock);
}

/*
 * Is @fd (just opened by name) the file @ino was made for? With an O_PATH fd cached the
 * inode is alive, so its number cannot have been reused: yes. Otherwise the file handles
 * (which carry the generation) must match. itab.lock held.
 */
static bool same_file(struct inode *ino, int fd)
{
	struct file_handle *h;
	bool same, cached;

	if (!ino->fh)
		return true;	/* no handles: ino->fd is permanent, the inode alive */
	pthread_mutex_lock(&fdc.lock);
	cached = ino->fd >= 0;
	pthread_mutex_unlock(&fdc.lock);
	if (cached)
		return true;
	h = handle_of(fd);
	if (!h)
		return true;	/* cannot tell: as before */
	same = h->handle_bytes == ino->fh->handle_bytes &&
	       h->handle_type == ino->fh->handle_type &&
	       !memcmp(h->f_handle, ino->fh->f_handle, h->handle_bytes);
	free(h);
	return same;
}

struct inode *inode_lookup_add(int fd, const struct stat *st)
{
	struct inode_key key = { .dev = st->st_dev, .ino = st->st_ino };
	struct fds out = { 0 };
	struct inode_rec *rec;
	struct inode *ino;
	int64_t slot;

	if (st->st_dev == itab.root.src_dev && st->st_ino == itab.root.src_ino) {
		close(fd);
		pthread_mutex_lock(&itab.lock);
		itab.root.nlookup++;
		pthread_mutex_unlock(&itab.lock);
		return &itab.root;
	}
	pthread_mutex_lock(&itab.lock);
	HASH_FIND(hh, itab.by_key, &key, sizeof(key), ino);
	if (ino && !same_file(ino, fd)) {
		/* The file it was is gone and the backing filesystem reused its number: a
		 * new inode, or every use of this one would reach the deleted file (or
		 * ESTALE) and its staging would be taken for the new file's. */
		log_info("ino=%" PRIu64 ": inode number reused by a new file: new node id",
			 (uint64_t)st->st_ino);
		HASH_DEL(itab.by_key, ino);
		ino->unhashed = true;
		__atomic_store_n(&ino->gone, true, __ATOMIC_RELEASE);
		ino = NULL;
	}
	if (ino) {
		ino->nlookup++;
		rec_of(ino)->nlookup = ino->nlookup;
		adopt_fd(ino, fd, &out);
		pthread_mutex_unlock(&itab.lock);
		fds_close(&out);
		return ino;
	}
	ino = malloc(sizeof(*ino));
	slot = ino ? restart_table_alloc(itab.tab) : -ENOMEM;
	if (slot < 0) {
		pthread_mutex_unlock(&itab.lock);
		if (slot == -ENOSPC)
			log_warn("inode table full (%u node ids): lookup refused", INODE_TAB_CAP);
		free(ino);
		close(fd);
		errno = -slot;
		return NULL;
	}
	inode_init_fields(ino, st);
	ino->slot = slot;
	ino->nlookup = 1;
	ino->fh = itab.handles ? handle_of(fd) : NULL;
	rec = restart_table_rec(itab.tab, slot);
	rec->src_dev = st->st_dev;
	rec->src_ino = st->st_ino;
	rec->type = ino->type;
	rec->nlookup = 1;
	if (ino->fh) {
		rec->fh_bytes = ino->fh->handle_bytes;
		rec->fh_type = ino->fh->handle_type;
		memcpy(rec->fh, ino->fh->f_handle, ino->fh->handle_bytes);
		adopt_fd(ino, fd, &out);
	} else {
		ino->fd = fd;	/* no handle: the fd is all we have */
		ino->fd_perm = true;
		rec->perm = !restart_put_async(SUP_TAG(SUP_K_INODEFD, slot), fd) &&
			    restart_supervised();
	}
	restart_table_publish(itab.tab, slot);
	__atomic_store_n(&itab.by_slot[slot], ino, __ATOMIC_RELEASE);
	/* The key is the leading (src_dev, src_ino) pair of struct inode_key layout. */
	HASH_ADD_KEYPTR(hh, itab.by_key, &ino->src_dev, sizeof(key), ino);
	pthread_mutex_unlock(&itab.lock);
	fds_close(&out);
	return ino;
}

struct inode *inode_find(dev_t dev, ino_t i)
{
	struct inode_key key = { .dev = dev, .ino = i };
	struct inode *ino;

	pthread_mutex_lock(&itab.lock);
	HASH_FIND(hh, itab.by_key, &key, sizeof(key), ino);
	if (ino)
		ino->nref++;
	pthread_mutex_unlock(&itab.lock);
	return ino;
}

/*
 * Unhash @ino if nothing refers to it any more; itab.lock held. True if so: the caller
 * frees it with inode_free() after unlocking (its fd's close may be slow, see struct fds).
 */
static bool inode_maybe_unhash(struct inode *ino)
{
	if (ino == &itab.root || ino->nlookup || ino->nref)
		return false;
	if (!ino->unhashed)
		HASH_DEL(itab.by_key, ino);
	return true;
}

void inode_resume_sweep(void)
{
	struct inode *ino, *tmp;

	/* Start-up, before any FUSE thread: freeing under the lock costs nobody a wait. */
	pthread_mutex_lock(&itab.lock);
	HASH_ITER(hh, itab.by_key, ino, tmp)
		if (inode_maybe_unhash(ino))	/* forgotten, nothing resumed refers to it */
			inode_free(ino);
	pthread_mutex_unlock(&itab.lock);
}

void inode_forget(struct inode *ino, uint64_t n)
{
	bool gone;

	if (!ino)
		return;
	pthread_mutex_lock(&itab.lock);
	ino->nlookup = n > ino->nlookup ? 0 : ino->nlookup - n;
	if (ino != &itab.root)
		rec_of(ino)->nlookup = ino->nlookup;
	gone = inode_maybe_unhash(ino);
	pthread_mutex_unlock(&itab.lock);
	if (gone)
		inode_free(ino);
}

void inode_ref(struct inode *ino)
{
	pthread_mutex_lock(&itab.lock);
	ino->nref++;
	pthread_mutex_unlock(&itab.lock);
}

void inode_unref(struct inode *ino)
{
	bool gone;

	pthread_mutex_lock(&itab.lock);
	ino->nref--;
	gone = inode_maybe_unhash(ino);
	pthread_mutex_unlock(&itab.lock);
	if (gone)
		inode_free(ino);
}

/*
 * The kernel names only node ids we gave it and has not forgotten, so inode_get() finds
 * each one; NULL means the table lost one (a resume from an inconsistent table). Every
 * use of the inode then fails with ESTALE, as for a file deleted behind the mount, instead
 * of crashing the daemon (and its next generation, on the same table) on a NULL inode.
 */
static int unknown_node(void)
{
	static bool logged;

	if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
		log_err("request for a node id the inode table does not know: answered ESTALE "
			"(logged once)");
	return -ESTALE;
}

int inode_fd(struct inode *ino)
{
	struct fds out = { 0 };
	int fd;

	if (!ino)
		return unknown_node();
	if (!ino->fh)	/* root, no handle: fd set once, never closed */
		return ino->fd;
	pthread_mutex_lock(&fdc.lock);
	if (ino->fd_perm) {
		pthread_mutex_unlock(&fdc.lock);
		return ino->fd;
	}
	if (ino->fd >= 0) {
		ino->fd_users++;
		if (fdc.head != ino) {
			lru_unlink(ino);
			lru_push(ino);
		}
		pthread_mutex_unlock(&fdc.lock);
		return ino->fd;
	}
	pthread_mutex_unlock(&fdc.lock);
	fd = open_by_handle_at(itab.mount_fd, ino->fh, O_PATH | O_CLOEXEC);
	if (fd < 0 && errno == EMFILE) {
		inode_fd_reclaim();
		fd = open_by_handle_at(itab.mount_fd, ino->fh, O_PATH | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;	/* ESTALE: deleted */
	pthread_mutex_lock(&fdc.lock);
	fdc.opens++;
	if (ino->fd >= 0) {	/* another thread reopened it meanwhile */
		out.fd[out.n++] = fd;
	} else {
		ino->fd = fd;
		lru_push(ino);
	}
	ino->fd_users++;
	fd = ino->fd;
	lru_trim(fdc.max, &out);
	pthread_mutex_unlock(&fdc.lock);
	fds_close(&out);
	return fd;
}

void inode_fd_put(struct inode *ino)
{
	struct fds out = { 0 };

	if (!ino || !ino->fh)
		return;
	pthread_mutex_lock(&fdc.lock);
	if (!ino->fd_perm)
		ino->fd_users--;
	if (fdc.count > fdc.max)
		lru_trim(fdc.max, &out);
	pthread_mutex_unlock(&fdc.lock);
	fds_close(&out);
}

void inode_fd_reclaim(void)
{
	struct fds out = { 0 };
	unsigned n;

	do {
		pthread_mutex_lock(&fdc.lock);
		lru_trim(0, &out);
		pthread_mutex_unlock(&fdc.lock);
		n = out.n;
		fds_close(&out);
	} while (n == ARRAY_SIZE(out.fd));	/* full: there may be more */
}

int inode_keep_fd(struct inode *ino)
{
	int fd = inode_fd(ino);

	if (fd < 0)
		return fd;
	if (!ino->fh)
		return 0;
	pthread_mutex_lock(&fdc.lock);
	if (!ino->fd_perm) {
		lru_unlink(ino);
		ino->fd_users--;
		ino->fd_perm = true;
		fd = -1;	/* newly kept: the next generation needs it too */
	}
	pthread_mutex_unlock(&fdc.lock);
	if (fd < 0 && restart_supervised() &&
	    !restart_put_async(SUP_TAG(SUP_K_INODEFD, ino->slot), ino->fd))
		rec_of(ino)->perm = 1;
	return 0;
}

void inode_open_add(struct inode *ino, bool writable)
{
	ino->nopen++;
	if (writable)
		ino->nopen_w++;
}

bool inode_open_drop(struct inode *ino, bool writable)
{
	ino->nopen--;
	if (!writable)
		return false;
	return --ino->nopen_w == 0;
}

int inode_open(struct inode *ino, int flags)
{
	char path[64];
	int fd = inode_fd(ino), r;

	if (fd < 0)
		return fd;
	proc_fd_path(path, fd);
	r = open(path, flags | O_CLOEXEC);
	if (r < 0 && errno == EMFILE) {
		inode_fd_reclaim();	/* spares ino's own fd: it is in use */
		r = open(path, flags | O_CLOEXEC);
	}
	if (r < 0)
		r = -errno;
	inode_fd_put(ino);
	return r;
}

ssize_t inode_readlink(struct inode *ino, char *buf, size_t len)
{
	char path[64];
	int fd = inode_fd(ino);
	ssize_t n;

	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	n = readlink(proc_fd_path(path, fd), buf, len);
	inode_fd_put(ino);
	return n;
}

void inode_fd_stats(struct inode_fd_stats *out)
{
	pthread_mutex_lock(&fdc.lock);
	out->cached = fdc.count;
	out->max = fdc.max;
	out->opens = fdc.opens;
	out->evictions = fdc.evictions;
	pthread_mutex_unlock(&fdc.lock);
	out->handles = itab.handles;
}
