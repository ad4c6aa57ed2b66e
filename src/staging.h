/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * staging.h - staged files in shared memory (rdma_staging.c): lifetime, fill, map,
 * seal, resize of staging and backing, the budget charge. Calls no module above it: what
 * it needs from them comes through struct staging_policy.
 */
#ifndef RDMAFS_STAGING_H
#define RDMAFS_STAGING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"

struct flush_stats {
	uint64_t scanned_bytes;		/* bytes hashed by scans */
	uint64_t changed_bytes;		/* bytes found changed */
	uint64_t committed_bytes;	/* bytes written and fdatasynced */
	uint64_t commit_ns;		/* time spent in successful commits */
	uint64_t commits, failures;
	struct timespec last_commit;	/* CLOCK_REALTIME of the last successful commit */
	int last_error;			/* negative errno of the last failed commit, 0 if none */
	struct timespec last_error_time;
	uint64_t lost_pages;		/* staging pages found lost by the kernel (not committed) */
	uint64_t syncs;			/* fdatasyncs of the backing file */
	uint64_t budget_refusals;	/* writes refused (ENOSPC): staging_budget reached */
};

struct dirty_map;

struct staged {
	struct inode *ino;		/* back reference; the staging holds an inode ref */
	int memfd;			/* staging memory; owned */
	/* commit_lock: opened on demand (staging_backing_open()), closed after; -1 */
	int bfd;			/* backing file, O_RDWR, buffered; owned */
	int dfd;			/* backing file, O_RDWR|O_DIRECT, or -1; owned */
	/*
	 * ino->lock: backing file fd holding the stager lock (OFD write lock), or -1. Held
	 * only while staging may hold changes the backing file lacks: from the first
	 * writable open (map fd, lease) until a commit finds it clean with no writer left.
	 */
	int lockfd;
	enum staging_mode mode;
	uint64_t page_size;		/* staging page size */
	/*
	 * commit_lock serialises commits, truncates and fallocates of this file: whoever
	 * holds it owns the backing file's contents. Taken before lock.
	 */
	pthread_mutex_t commit_lock;
	/* lock protects the fields below and the dirty map. */
	pthread_mutex_t lock;
	void *map;			/* daemon's MAP_SHARED view of memfd */
	uint64_t map_len;
	uint64_t size;			/* staged size when last looked at */
	/*
	 * hugetlb only: the file's size. A hugetlb memfd's size is a multiple of the page
	 * size, so the logical size is kept here and staging_size() returns it.
	 */
	uint64_t logical_size;
	uint64_t charged;		/* bytes charged to the budget, page-rounded; slist.lock */
	uint64_t committed_size;	/* backing file size after the last commit */
	/*
	 * lock: staging [0, alloc_size) has every page allocated (and dirty) by rdmafs, so
	 * the kernel cannot drop one; growth the daemon did not make is allocated when seen.
	 */
	uint64_t alloc_size;
	/* lock: staging lost a page from this offset on: commits fail with EIO (sticky) */
	uint64_t lost_from;
	/* commit_lock: backing size or blocks changed since the last fdatasync */
	bool needs_sync;
	bool over_budget_logged;	/* lock: growth past staging_budget logged */
	struct dirty_map *dm;
	bool sealed;			/* F_SEAL_WRITE held: no writer can exist */
	bool seal_refused;		/* a map holder added F_SEAL_SEAL (logged once); ino->lock */
	/* commit_lock: sealed before a commit that succeeded, nothing changed it since */
	bool sealed_clean;
	bool may_change;		/* st->lock: a writable map fd was handed out (sticky) */
	/* atomic: a writable open passed its writes through (not staging_serves_writes(),
	 * or resumed from an earlier generation): it may grow staging unseen (sticky) */
	bool pt_writer;
	/* commit_lock: the backing file is gone (deleted, no fd kept): nothing to commit
	 * to, so it is never dirty (doc/staging.md, deleted files) */
	bool orphan;
	/*
	 * "Maybe dirty" (atomics): change_seq counts events after which staging may differ
	 * from the committed content (writable open, truncate, fallocate, daemon-served
	 * write, growth, lease); clean_seq is the change_seq a commit found clean with no
	 * writer left (no writable open, map fd or lease). Equal: the periodic pass skips it.
	 */
	uint64_t change_seq, clean_seq;
	bool close_commit;		/* st->lock: flush_on_close=async asked for a commit */
	/* st->lock: the backing file as of the fill or the last commit (revalidation) */
	struct timespec bk_mtim, bk_ctim;
	uint64_t bk_size;
	int pending_error;		/* error of the last commit, 0 once one succeeds */
	/* lock: failed commits so far and the last one's error (errseq_t-like, see
	 * commit_fd()) */
	uint32_t err_seq;
	int err_last;
	struct timespec next_retry;	/* backoff after a failed periodic commit */
	unsigned backoff;		/* seconds */
	uint64_t last_use;		/* monotonic ns, for LRU eviction */
	uint64_t lru_gen;		/* budget.c: the newest eviction that tried it (list lock) */
	unsigned nleases;		/* leases held on it; lease.c's lock (read: lease_count) */
	unsigned lease_breakers;	/* lease_break()s under way; lease.c's lock */
	unsigned refs;			/* staging_list.lock; list + borrowers */
	/* Its record in the restart table + 1, the id of its descriptors in the
	 * supervisor's store (staging_restart.c); 0: none. Set before it is published. */
	uint32_t rslot;
	struct staged *next, *prev;	/* staging_list linkage */
	struct flush_stats stats;
};

int staging_init(void);
void staging_exit(void);
/*
 * Create the staging object of a regular file and fill it from the backing file.
 * Called with ino->lock held. Returns 0 or -errno (-ENOSPC: over budget); 0 with *out
 * NULL when staging_paths (or staging) gives the file mode none: it is not staged.
 */
int staging_create(struct inode *ino, struct staged **out);
/* The same with @lockfd, a writable fd of the backing file (a create's own), taken over
 * (closed on failure) for the stager lock instead of opening one; -1: open one. */
int staging_create_fd(struct inode *ino, int lockfd, struct staged **out);
/* Map/remap the daemon's view to the current memfd size; st->lock held. */
int staging_sync_map(struct staged *st);
/*
 * Growth the daemon did not make (a passthrough write past EOF leaves a hole): allocate
 * the new range so that no page of it can be dropped, and charge it. Takes st->lock.
 */
void staging_watch_growth(struct staged *st);
/*
 * Pages of [off, off + len) the kernel dropped from staging (a hole where rdmafs had
 * allocated): logs it naming the file, counts it, and makes commits fail with -EIO from
 * there on (st->lost_from). Returns -EIO if lost, else 0. commit_lock held, st->map valid.
 */
int staging_check_lost(struct staged *st, uint64_t off, uint64_t len);
/* Logical size of the staged file now (fstat of the memfd; hugetlb: logical_size). */
int staging_size(struct staged *st, uint64_t *size);
/*
 * Daemon-served I/O of a staged file that cannot be passed through (hugetlb): read up to
 * @len bytes at @off (returns bytes, 0 at EOF, or -errno), write @len bytes at @off,
 * growing the file (returns @len or -errno).
 */
ssize_t staging_pread(struct staged *st, void *buf, size_t len, uint64_t off);
ssize_t staging_pwrite(struct staged *st, const void *buf, size_t len, uint64_t off);
/*
 * True if a file other than the daemon's is open for writing on @st's staging file: a
 * writable open, or a writable mapping that outlived its descriptor (probed with a lease).
 * @just_closed: the last writer's RELEASE just came; its file may linger a few ms more.
 */
bool staging_open_elsewhere(struct staged *st, bool just_closed);
/*
 * A write(2) of @len bytes at @off the daemon serves into shmem or thp staging: charges
 * its growth to staging_budget before it happens and allocates the hole before @off.
 * Returns how many bytes to write (fewer than @len where the budget ends within the
 * range) or -errno: -ENOSPC when nothing fits (counted in stats.budget_refusals, logged
 * once per episode naming the file). The caller writes into st->memfd, then calls
 * staging_write_end() with what it wrote (or -errno). The kernel's FUSE inode lock orders
 * growing writes against each other, truncate and fallocate.
 */
ssize_t staging_write_begin(struct staged *st, uint64_t off, size_t len);
void staging_write_end(struct staged *st, uint64_t off, ssize_t n);
/*
 * budget_enforce=strict: writable opens of shmem staging keep passthrough for mmap but
 * have read and write served by the daemon (FOPEN_DIRECT_IO), which charges growth.
 */
static inline bool staging_serves_writes(const struct staged *st)
{
	return st->mode == STAGING_SHMEM && cfg->budget_enforce == BUDGET_STRICT;
}
/* True if opens of @st must be served by the daemon (passthrough refuses hugetlb). */
static inline bool staging_no_passthrough(const struct staged *st)
{
	return st->mode == STAGING_HUGETLB;
}
/*
 * Open st->bfd (and st->dfd where O_DIRECT works and the I/O is for a file of @size >=
 * STAGING_DIRECT_MIN bytes) if not open; 0 or -errno (-ESTALE: the backing file is gone).
 * staging_backing_close() closes them. commit_lock held (or the staging not yet published).
 */
#define STAGING_DIRECT_MIN (1ull << 20)
int staging_backing_open(struct staged *st, uint64_t size);
void staging_backing_close(struct staged *st);
/* Change the staged size (staging and backing); commit_lock taken inside. */
int staging_truncate(struct staged *st, uint64_t size);
int staging_fallocate(struct staged *st, int mode, off_t off, off_t len);
/* Try to freeze a staged file nobody can write any more; true if now sealed. */
bool staging_try_seal(struct staged *st);
/* Replace a sealed staging memfd by a writable copy (reopen for writing); ino->lock held. */
int staging_unseal(struct staged *st);
/* Every staging object, each with a reference; release with staging_put_all(). */
struct staged **staging_get_all(size_t *n);
void staging_put_all(struct staged **v, size_t n);
/* The staged file whose restart record is @slot (st->rslot - 1), with a reference; NULL. */
struct staged *staging_find_kept(uint32_t slot);
void staging_get(struct staged *st);
void staging_put(struct staged *st);
/* Note a possible change of @st (see change_seq); any lock or none. */
static inline void staging_note_change(struct staged *st)
{
	__atomic_add_fetch(&st->change_seq, 1, __ATOMIC_SEQ_CST);
}
/* True if the last commit found @st clean and nothing may have changed it since. */
static inline bool staging_known_clean(struct staged *st)
{
	return __atomic_load_n(&st->clean_seq, __ATOMIC_SEQ_CST) ==
	       __atomic_load_n(&st->change_seq, __ATOMIC_SEQ_CST);
}
/*
 * Make this node the file's stager again before @st may change (writable open, lease,
 * truncate); ino->lock held. 0 (held already, or taken and the resident copy is
 * current), -EBUSY (another rdmafs stages it), -ESTALE (the backing file changed since
 * the fill or the last commit: the resident copy must be staged again; not locked).
 */
int staging_lock_writer(struct staged *st);
/* Give up the stager lock (a commit found @st clean with no writer left); ino->lock held. */
void staging_unlock_writer(struct staged *st);
/* Record the backing file's times and size (after a fill or a commit); st->lock held. */
void staging_note_backing(struct staged *st);
/* The same from a stat of the backing file the caller just took (st->lock held). */
void staging_note_backing_stat(struct staged *st, const struct stat *sb);
/*
 * Resident staging of an idle file whose backing file changed behind rdmafs (size, mtime
 * or ctime differ from the fill or the last commit): true if it must be staged again.
 * ino->lock held, no open; @sb is a fresh stat of the backing file.
 */
bool staging_backing_changed(struct staged *st, const struct stat *sb);
/*
 * Up to @max staged files for which @eligible (called under the list's lock: it must not
 * lock) is true, least recently used first, into @v, each with a reference
 * (staging_put()); returns how many. The list is kept in LRU order (staging_touch()), so
 * this walks from its head and stops once @max are found.
 */
size_t staging_lru_pick(bool (*eligible)(struct staged *st, void *arg), void *arg,
			struct staged **v, size_t max);
/* @st is used now (an open): last_use, and it moves to the list's tail. */
void staging_touch(struct staged *st);
/* Files staged now, and how many may stay resident (from RLIMIT_NOFILE). */
void staging_count(size_t *count, size_t *resident_max);
/*
 * What staging asks of the modules above it (budget.c sets it), so that it never calls
 * them: each may be NULL (nothing evicted, no lease).
 */
struct staging_policy {
	/* Free @need bytes of other files' staging (not @self); bytes freed. The caller may
	 * hold @self's ino->lock; with !@wait it holds its own commit_lock, so a victim's
	 * commit_lock is only tried (two files, each the other's victim, would deadlock). */
	uint64_t (*evict)(uint64_t need, struct inode *self, bool wait);
	/* Before @self is staged (ino->lock held): keep the number of staged files bounded. */
	void (*make_room)(struct inode *self);
	/* Live leases on @st: a leased file is never sealed. */
	unsigned (*leases)(struct staged *st);
	/* Before pages of @st are freed (shrink, punch): see lease_break_start(). */
	int (*break_start)(struct staged *st, const char *why);
	void (*break_done)(struct staged *st);
};
void staging_set_policy(const struct staging_policy *p);
/* A writable map fd of @st was handed out (rdmafs_map): it may change at any time. */
void staging_note_writable_map(struct staged *st);
/* Drop @st from its inode now (it is idle and clean: the caller checked). ino->lock held. */
void staging_drop(struct staged *st);
/*
 * Called (ino->lock held) when a staging leaves its inode or its memfd is replaced, so
 * that the passthrough backing id that refers to its memfd is closed. Set by fuse_ops.
 */
extern void (*staging_detach_hook)(struct inode *ino);
uint64_t staging_bytes_used(void);
/*
 * Restart (staging_restart.c, doc/restart.md 3.4): the table of staged files, opened
 * after restart_init() and before the first file is staged (without it nothing is
 * recorded). staging_resume(): a resumed generation rebuilds the staged files of the dead
 * one (after the inodes, before handles and the first request); each is committed whole
 * by its next commit. 0 or the first -errno (files that could not be resumed are logged).
 */
int staging_restart_init(void);
void staging_restart_exit(void);
int staging_resume(size_t *resumed);
/* Its record follows @st's errors, sizes, backing times (st->lock held). */
void staging_rec_update(struct staged *st);
void staging_charge(int64_t delta);

#endif
