/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.h - the table of backing objects (inode.c): lookup and open counts, the
 * bounded cache of O_PATH fds, passthrough backing ids.
 */
#ifndef RDMAFS_INODE_H
#define RDMAFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <uthash.h>
#include <utlist.h>

struct staged;
struct file_handle;

enum bk_kind { BK_NONE, BK_BACKING, BK_STAGING };

struct inode {
	/*
	 * O_PATH fd on the backing object, owned, or -1. With a file handle it is a cached
	 * fd (fdc.lock in inode.c: evicted when idle, reopened by handle); without one, or
	 * once fd_perm, it is set at creation and kept. Use inode_fd(), never this field.
	 */
	int fd;
	struct file_handle *fh;		/* reopens the object; NULL: fd is permanent */
	bool fd_perm;			/* fd kept until the inode is freed (fdc.lock) */
	unsigned fd_users;		/* inode_fd() calls not yet put (fdc.lock) */
	struct inode *lru_next, *lru_prev;	/* fd cache, most recent first (fdc.lock) */
	dev_t src_dev;
	ino_t src_ino;
	mode_t type;			/* S_IFMT bits */
	uint32_t slot;			/* in the inode table (restart.h): node id = slot + 2 */
	/* itab.lock protects nlookup and nref and the hash linkage. */
	uint64_t nlookup;
	unsigned nref;			/* handles + staging references */
	/* Out of the hash (itab.lock): its file is gone and its (dev, ino) names another
	 * file now (inode numbers are reused); its node id lives until forgotten. */
	bool unhashed;
	/* Atomic, set once: its last name went through the mount, or its number was reused
	 * (unhashed): an ESTALE reopen means the file is gone, not replaced on a server. */
	bool gone;
	/* lock protects everything below. Lock order: inode.lock, then staged.lock. */
	pthread_mutex_t lock;
	unsigned nopen;			/* open handles (inode_open_add/drop) */
	unsigned nopen_w;		/* ... of which writable */
	/* fuse_ops owns these three (passthrough, under lock): */
	unsigned bk_opens;		/* handles using backing_id */
	int backing_id;			/* passthrough id, 0 if none */
	enum bk_kind bk_kind;
	struct staged *st;		/* staging object, NULL when unstaged */
	UT_hash_handle hh;		/* itab.by_key linkage */
};

/*
 * Open the table of @source. Node ids are slots of a state table (RESTART_T_INODES,
 * restart.h) that outlives the daemon: a resumed generation finds every inode the kernel
 * knows there (no I/O: handles, not fds; an fd an inode must keep is in the store).
 */
int inode_table_init(const char *source);
void inode_table_destroy(void);
struct inode *inode_root(void);
struct inode *inode_get(uint64_t fuse_ino);	/* fuse ino -> inode, no ref taken; NULL:
						 * not a node id the daemon knows */
uint64_t inode_fuse_ino(struct inode *ino);
/*
 * Find or create the inode for (st_dev, st_ino) and add one lookup. Takes ownership
 * of @fd (closed if the inode already existed). NULL with errno on failure.
 */
struct inode *inode_lookup_add(int fd, const struct stat *st);
void inode_forget(struct inode *ino, uint64_t n);
/*
 * Resumed: after staging and handles took their references, free the node ids the kernel
 * had forgotten (nlookup 0) that nothing refers to. A forgotten inode kept by a resident
 * staging stays (its staged data must be resumed).
 */
void inode_resume_sweep(void);
void inode_ref(struct inode *ino);
void inode_unref(struct inode *ino);
/* The inode of (dev, ino) if cached, with a reference (inode_unref()); NULL if not. */
struct inode *inode_find(dev_t dev, ino_t ino);
/*
 * An O_PATH fd on the backing object, valid until inode_fd_put(@ino), or -errno (-ESTALE:
 * the object is gone). Reopened by file handle when not cached; the number of cached fds
 * is bounded, so the daemon's descriptors do not grow with the kernel's inode cache.
 */
int inode_fd(struct inode *ino);
void inode_fd_put(struct inode *ino);
/*
 * Keep the inode's fd open until the inode is freed (an open file about to be unlinked:
 * once deleted it cannot be reopened by handle). 0 or -errno.
 */
int inode_keep_fd(struct inode *ino);
/* Close every idle cached fd (after EMFILE). */
void inode_fd_reclaim(void);
/* An open handle of @ino came (went); ino->lock held. Drop: true if it was the last
 * writable one. */
void inode_open_add(struct inode *ino, bool writable);
bool inode_open_drop(struct inode *ino, bool writable);
/* A new fd on the backing object opened with @flags (O_CLOEXEC added), owned by the
 * caller, or -errno. */
int inode_open(struct inode *ino, int flags);
/* readlink() of the object's /proc/self/fd path: its path now ("... (deleted)"). */
ssize_t inode_readlink(struct inode *ino, char *buf, size_t len);

struct inode_fd_stats {
	unsigned cached, max;		/* cached O_PATH fds now, bound */
	uint64_t opens, evictions;	/* reopens by handle, fds closed by the bound */
	bool handles;			/* the source supports file handles */
};
void inode_fd_stats(struct inode_fd_stats *out);

/* The backing id fields changed (ino->lock held): kept for the next generation (F9). */
void inode_note_backing(struct inode *ino);
/* Every inode in the table but the root, in no order; no lock held while @fn runs (only
 * before the FUSE loop starts). */
void inode_for_each(void (*fn)(struct inode *ino, void *arg), void *arg);
/* The entry generation of @ino (how many times its slot was used). */
uint64_t inode_generation(struct inode *ino);

#endif
