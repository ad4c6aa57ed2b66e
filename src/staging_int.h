/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * staging_int.h - what the staging files share among themselves (rdma_staging.c,
 * staging_mem.c, staging_backing.c, staging_seal.c, staging_resize.c); no other module
 * includes it. Their dependencies run one way: resize, seal -> rdma_staging -> backing ->
 * mem.
 */
#ifndef RDMAFS_STAGING_INT_H
#define RDMAFS_STAGING_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "staging.h"

struct inode;

static inline uint64_t staging_page_size(const struct staged *st)
{
	return st->page_size ? st->page_size : 4096;
}

/* ---- rdma_staging.c ---- */

/* What the modules above staging gave it (staging_set_policy()); NULL members: nothing. */
extern struct staging_policy staging_pol;
/*
 * Charge @st @bytes (its page-rounded size) instead of what it was charged so far. Growth
 * that does not fit evicts idle staging of other files first (not @self: its lock is
 * held), then fails with -ENOSPC; with @force (growth that already happened, e.g. a
 * passthrough write past EOF) it is charged anyway. Without @force the caller holds its
 * commit_lock.
 */
int staging_budget_set(struct staged *st, uint64_t bytes, struct inode *self, bool force);
/* Resize staging to @size (from @old); the caller holds commit_lock. */
int staging_set_size(struct staged *st, uint64_t old, uint64_t size);
/* (Re)map the daemon's read-only view of the memfd to @size; st->lock held. */
int staging_map_ro(struct staged *st, uint64_t size);
/* hugetlb: adopt a size a map holder's ftruncate made shorter; st->lock or commit_lock. */
void staging_adopt_shrink(struct staged *st);

/* Put a new (or resumed) staged file on the list with its list reference. */
void staging_list_add(struct staged *st);
/* Free @st (its last reference, or never published). */
void staged_free(struct staged *st);

/* ---- staging_restart.c ---- */

enum {
	STAGED_F_MAY_CHANGE = 1,	/* a writable map fd was handed out */
	STAGED_F_SEAL_REFUSED = 2,	/* a map holder sealed the memfd against seals */
};

/* One staged file (RESTART_T_STAGED); the id of its descriptors is the slot. */
struct staged_rec {
	uint64_t fuse_ino;		/* the kernel's node id of its inode (inode_get()) */
	uint64_t src_dev, src_ino;	/* checked against that inode on resume */
	uint32_t mode;			/* enum staging_mode */
	uint32_t flags;			/* STAGED_F_* */
	uint64_t logical_size;		/* hugetlb: the file's size (the memfd's is rounded) */
	uint64_t committed_size;	/* informative: a resumed file rewrites all */
	uint64_t lost_from;		/* staging lost pages from here on (sticky EIO) */
	uint32_t err_seq;		/* failed commits so far (errseq of its handles) */
	int32_t err_last;
	int32_t pending_error;
	uint32_t reserved;
	int64_t bk_mtim_sec, bk_mtim_nsec, bk_ctim_sec, bk_ctim_nsec;
	uint64_t bk_size;		/* the backing file as of the fill or last commit */
};

struct restart_table;
/* The RESTART_T_STAGED table, NULL before staging_restart_init(). */
struct restart_table *staging_rec_table(void);

/*
 * The record of new staging @st (its memfd and lock fd put in the store); 0 or -errno
 * (nothing kept). Called before it is published.
 */
int staging_rec_create(struct staged *st);
/* @st's memfd was replaced (unseal): the store keeps the new one under the same tag. */
void staging_rec_memfd(struct staged *st);
/* @st's stager lock fd was taken (@held) or is about to be closed. */
void staging_rec_lock(struct staged *st, bool held);
/* @st leaves its inode: record freed, its descriptors dropped from the store. */
void staging_rec_free(struct staged *st);

/* ---- staging_backing.c ---- */

/* A new fd on the backing file, or -errno. */
int staging_open_backing(struct inode *ino, int flags);
/* The buffered backing fd, opened if needed; -1 with errno if it cannot be. */
int staging_backing_fd(struct staged *st);
/* A new staging file of st->mode holding @size zero bytes; the fd or -errno. */
int staging_new_memfd(struct staged *st, uint64_t size, bool alloc);
/*
 * Take the stager lock (an OFD write lock on all of the backing file) on @fd: 0, -EBUSY
 * (another rdmafs holds it), 0 too where the filesystem has no locks (logged once).
 */
int staging_lock_backing(struct staged *st, int fd);
/* Fill new staging of @size bytes from the backing file, fingerprints included. */
int staging_fill(struct staged *st, uint64_t size);

/* ---- staging_mem.c ---- */

/* The thp tmpfs when staging=thp (fails at start-up, not at the first open). */
int staging_mem_init(void);
void staging_mem_exit(void);
uint64_t staging_mem_page_size(enum staging_mode mode);
/* Size of the staging file for a logical size: hugetlb files are whole pages. */
uint64_t staging_phys_size(struct staged *st, uint64_t size);
/* A new, empty staging file of st->mode; returns the fd or -errno. */
int staging_mem_create(struct staged *st);
/*
 * Allocate the pages of [from, to) of staging file @fd, so that the kernel cannot drop
 * one; @populate: read-fault them too (see staging_mem.c). 0 or -errno.
 */
int staging_mem_alloc(struct staged *st, int fd, uint64_t from, uint64_t to, bool populate);
/*
 * Write zeros to [from, to) of staging file @fd (its size is @from), growing it: growth
 * the daemon makes itself (see staging_mem.c). 0 or -errno.
 */
int staging_mem_write_zeros(int fd, uint64_t from, uint64_t to);
/* Set the size of staging file @fd from @old to @size, allocating growth. 0 or -errno. */
int staging_mem_resize(struct staged *st, int fd, uint64_t old, uint64_t size,
		       bool populate);
/* hugetlb: -ENOSPC if the pool cannot hold @size bytes now (logged once). */
int staging_mem_check_pool(struct staged *st, uint64_t size);

#endif
