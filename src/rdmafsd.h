/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rdmafsd.h - the daemon's private interfaces: one section per module, in the order
 * they are initialised (conf, log, inode, staging, dirty, flusher, lease, ctl).
 */
#ifndef RDMAFSD_H
#define RDMAFSD_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <uthash.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))
#define ALIGN_DOWN(x, a) ((x) / (a) * (a))

/* ---- conf: rdmafs.conf + -o overrides, one const config after start-up ---- */

enum staging_mode { STAGING_SHMEM, STAGING_THP, STAGING_HUGETLB };
enum lease_expire { LEASE_EXPIRE_DENY, LEASE_EXPIRE_REVOKE };
enum tristate { TRI_AUTO, TRI_ON, TRI_OFF };
/* flush_on_close: what close(2) of a writable descriptor does (see rdmafs(8)). */
enum flush_close { FLUSH_CLOSE_NO, FLUSH_CLOSE_ASYNC, FLUSH_CLOSE_YES };
/* budget_enforce: when shmem staging growth by write(2) is charged (see rdmafs.conf(5)). */
enum budget_enforce { BUDGET_STRICT, BUDGET_DEFERRED };
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* One staging_paths rule: files whose path matches @pattern are staged in @mode. */
struct staging_rule {
	char pattern[256];
	enum staging_mode mode;
};

#define CONF_MAX_STAGING_RULES 32

struct conf {
	enum staging_mode staging;
	/* staging_paths: first match wins, no match -> staging */
	struct staging_rule staging_rules[CONF_MAX_STAGING_RULES];
	unsigned nstaging_rules;
	uint64_t staging_budget;	/* bytes; resolved from a size or a % of RAM */
	enum budget_enforce budget_enforce;
	uint32_t chunk_size;		/* bytes, power of two, >= 4 KiB */
	unsigned flush_interval;	/* seconds; 0 = no periodic write-back */
	enum flush_close flush_on_close;
	unsigned uring_depth;		/* commit writes in flight per file */
	uint32_t io_size;		/* bytes per commit write / fill read */
	enum tristate direct_io;
	unsigned lease_break_time;	/* seconds */
	enum lease_expire lease_expire;
	char rescue_dir[4096];
	enum log_level log_level;
	unsigned shutdown_timeout;	/* seconds of retries before rescue at exit */
	enum tristate passthrough;
	uint64_t hugetlb_page_size;	/* bytes */
	bool hugetlb_fallback;		/* fall back to shmem when the pool is short */
};

/* Defaults; conf_load() starts from these. */
void conf_defaults(struct conf *c);
/*
 * Load FILE (NULL: no file) into @c. Returns 0 or -errno; on a bad line writes
 * "FILE:LINE: message" to @err (size @errlen).
 */
int conf_load_file(struct conf *c, const char *file, char *err, size_t errlen);
/* Set one key from a string; 0, -ENOENT for an unknown key, -EINVAL for a bad value. */
int conf_set(struct conf *c, const char *key, const char *value, char *err, size_t errlen);
/* True if @key is a config key (used to sort -o options from libfuse's). */
bool conf_is_key(const char *key);
const char *conf_staging_name(enum staging_mode m);
/*
 * The staging mode of the file at @relpath ("/dir/name", relative to the mount root):
 * the first staging_paths rule that matches, else the mount's staging.
 */
enum staging_mode conf_staging_mode_for(const struct conf *c, const char *relpath);
/* Parse "64K", "1G", "50%" (of physical memory when @allow_pct). */
int conf_parse_size(const char *s, bool allow_pct, uint64_t *out);
void conf_dump(const struct conf *c, FILE *f);

extern const struct conf *cfg;	/* set once in main before any thread starts */

/* ---- log: leveled messages to stderr (foreground) or syslog ---- */

void log_init(enum log_level level, bool use_syslog);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each keeps errno intact so callers can log and then return -errno. */
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* ---- inode: table of backing objects, lookup/open counts, passthrough ids ---- */

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
	/* itab.lock protects nlookup and nref and the hash linkage. */
	uint64_t nlookup;
	unsigned nref;			/* handles + staging references */
	/* lock protects everything below. Lock order: inode.lock, then staged.lock. */
	pthread_mutex_t lock;
	unsigned nopen;			/* open handles */
	unsigned nopen_w;		/* ... of which writable */
	unsigned bk_opens;		/* handles using backing_id */
	int backing_id;			/* passthrough id, 0 if none */
	enum bk_kind bk_kind;
	struct staged *st;		/* staging object, NULL when unstaged */
	UT_hash_handle hh;		/* itab.by_key linkage */
};

int inode_table_init(const char *source);
void inode_table_destroy(void);
struct inode *inode_root(void);
struct inode *inode_get(uint64_t fuse_ino);	/* fuse ino -> inode, no ref taken */
uint64_t inode_fuse_ino(struct inode *ino);
/*
 * Find or create the inode for (st_dev, st_ino) and add one lookup. Takes ownership
 * of @fd (closed if the inode already existed). NULL with errno on failure.
 */
struct inode *inode_lookup_add(int fd, const struct stat *st);
void inode_forget(struct inode *ino, uint64_t n);
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

/* ---- staging: staged files in shared memory ---- */

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
	 * flusher_commit_fd()) */
	uint32_t err_seq;
	int err_last;
	struct timespec next_retry;	/* backoff after a failed periodic commit */
	unsigned backoff;		/* seconds */
	uint64_t last_use;		/* monotonic ns, for LRU eviction */
	unsigned nleases;		/* leases held on it; lease.c's lock (read: lease_count) */
	unsigned lease_breakers;	/* lease_break()s under way; lease.c's lock */
	unsigned refs;			/* staging_list.lock; list + borrowers */
	struct staged *next, *prev;	/* staging_list linkage */
	struct flush_stats stats;
};

int staging_init(void);
void staging_exit(void);
/*
 * Create the staging object of a regular file and fill it from the backing file.
 * Called with ino->lock held. Returns 0 or -errno (-ENOSPC: over budget).
 */
int staging_create(struct inode *ino, struct staged **out);
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
 * True if a file other than the daemon's is open on @st's staging file: a writable open,
 * or a writable mapping that outlived its descriptor (probed with a write lease).
 */
bool staging_open_elsewhere(struct staged *st);
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
 * Open st->bfd (and st->dfd where O_DIRECT works) if not open; 0 or -errno (-ESTALE: the
 * backing file is gone). staging_backing_close() closes them. commit_lock held (or the
 * staging not yet published).
 */
int staging_backing_open(struct staged *st);
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
void staging_get(struct staged *st);
void staging_put(struct staged *st);
/*
 * Drop @st from its inode if nothing needs it: no opens, sealed, clean, no lease.
 * Returns true if dropped. Takes ino->lock.
 */
bool staging_release_if_idle(struct staged *st);
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
/* A commit found @st clean with no writer left: give up the stager lock. Takes ino->lock. */
void staging_unlock_if_clean(struct staged *st);
/* Record the backing file's times and size (after a fill or a commit); st->lock held. */
void staging_note_backing(struct staged *st);
/*
 * Resident staging of an idle file whose backing file changed behind rdmafs (size, mtime
 * or ctime differ from the fill or the last commit): true if it must be staged again.
 * ino->lock held, no open; @sb is a fresh stat of the backing file.
 */
bool staging_backing_changed(struct staged *st, const struct stat *sb);
/*
 * Evict idle staging (LRU) while more files than resident_max are staged (not @self);
 * at most @limit of them; @commit: commit dirty idle ones first. Returns how many are
 * still too many.
 */
size_t staging_trim(struct inode *self, bool commit, size_t limit);
/* Drop @st from its inode now (it is idle and clean: the caller checked). ino->lock held. */
void staging_drop(struct staged *st);
/*
 * Called (ino->lock held) when a staging leaves its inode or its memfd is replaced, so
 * that the passthrough backing id that refers to its memfd is closed. Set by fuse_ops.
 */
extern void (*staging_detach_hook)(struct inode *ino);
uint64_t staging_bytes_used(void);
void staging_charge(int64_t delta);

/* ---- dirty: per-chunk committed fingerprints ---- */

#define DIRTY_FP_NONE 0		/* "no committed content": always differs */

struct dirty_map {
	uint32_t chunk_size;
	uint64_t nchunks;		/* chunks covering committed_size */
	uint64_t *fp;			/* committed fingerprint per chunk */
	uint64_t cap;
};

struct dirty_map *dirty_create(uint32_t chunk_size);
void dirty_destroy(struct dirty_map *dm);
/* Resize to cover @size bytes; new chunks have no committed content. */
int dirty_resize(struct dirty_map *dm, uint64_t size);
uint64_t dirty_hash(const void *p, size_t len);
/* Record @fp as the committed fingerprint of chunk @i. */
void dirty_set(struct dirty_map *dm, uint64_t i, uint64_t fp);
/* Forget the committed content of chunks [first, last]. */
void dirty_invalidate(struct dirty_map *dm, uint64_t first, uint64_t last);

/* ---- flusher: snapshot, io_uring writes, fdatasync, retries ---- */

int flusher_init(void);
/* Stop the periodic thread and commit everything (retries, then rescue_dir). */
int flusher_shutdown(void);
/*
 * Commit every byte of @st that was in staging when the call began; 0 or -errno.
 * Waits for I/O: only for fsync, flush requests, close with flush_on_close.
 */
int flusher_commit(struct staged *st);
/*
 * fsync/flush through one open file description, whose *@seen is the err_seq it sampled
 * at open (flusher_err_sample()) or at its last fsync: commits like flusher_commit(), and
 * if that succeeds but a commit failed since (a periodic pass, another fd's fsync), returns
 * that failure once to this description (the kernel's errseq_t rule).
 */
int flusher_commit_fd(struct staged *st, uint32_t *seen);
uint32_t flusher_err_sample(struct staged *st);
/* Ask the periodic thread to run a pass now (memory pressure, ctl). */
void flusher_kick(void);
/* flush_on_close=async: commit @st soon in the flusher thread (this file only). */
void flusher_commit_async(struct staged *st);
/* True if @st has changes not yet committed (scans it). */
bool flusher_is_dirty(struct staged *st);
/* Bytes of @st not yet committed (scans it, like flusher_is_dirty); -errno on failure. */
int64_t flusher_dirty_bytes(struct staged *st);
/* Write all staged files to a rescue folder; returns files written or -errno. */
int flusher_rescue(const char *dir);

/* ---- lease: pin holders' leases on staged files (lease.c) ---- */

struct lease;

#define LEASE_PATH_MAX 256		/* a holder's name of its file, as listed */

/*
 * Add a lease on @st for the process @pid. @notify(@arg) is called once when a break
 * starts (from the breaking thread, without locks of ours held; once per break, however
 * many breakers wait, and again for a later break after a denied one); @signo, if not 0,
 * is sent to @pid right after it (through a pidfd: never to a recycled pid). @path (may
 * be NULL) is how the holder named the file, for lease_list(). The caller
 * holds an open of the file (so its staging cannot be dropped meanwhile) and owns the
 * returned lease until lease_release(). NULL with errno: EINVAL (bad pid or signo), ESRCH
 * (@pid is gone), EAGAIN (a break of @st is under way: try again after it), ESHUTDOWN
 * (the daemon is stopping), ENOMEM.
 */
struct lease *lease_add(struct staged *st, pid_t pid, int signo, const char *path,
			void (*notify)(void *arg), void *arg);
/*
 * The holder released (closed its lease fd or died). Wakes a waiting breaker. Frees @l
 * (also a lease already dropped by a revoke or a noticed death). Safe from @notify itself;
 * from another thread it waits for a @notify of @l in progress, so do not hold a lock
 * that @notify takes.
 */
void lease_release(struct lease *l);
/*
 * Break every lease on @st before @why frees its pages. Waits up to lease_break_time for
 * holders to release (a holder that dies releases: its pidfd is watched); then
 * lease_expire decides: deny -> -EBUSY, revoke -> SIGBUS to the holders and 0. Call it
 * WITHOUT st->commit_lock: a dying holder's close sends FUSE FLUSH, which commits, and
 * must not wait for the breaker (the holder would never finish dying). Several breakers
 * may wait at once; holders are notified once.
 * lease_break_start() is for the operations that free pages: on 0 the break stays open,
 * new leases of @st are refused (EAGAIN), until the caller has freed the pages (under
 * commit_lock) and calls lease_break_done(@st). lease_break() is start + done, for a
 * break on demand (rdmafsctl lease break).
 */
int lease_break_start(struct staged *st, const char *why);
void lease_break_done(struct staged *st);
int lease_break(struct staged *st, const char *why);
/* Number of live leases on @st (0 means its pages may be freed); notices dead holders. */
unsigned lease_count(struct staged *st);
/*
 * Daemon shutdown: break every lease (notify, signal), wait briefly (at most
 * lease_break_time, capped at LEASE_SHUTDOWN_WAIT seconds) for releases, then revoke or
 * just log the rest; later lease_add()s fail with ESHUTDOWN. Before ctl_exit().
 */
#define LEASE_SHUTDOWN_WAIT 2
void lease_shutdown(void);

/* One holder, for `rdmafsctl lease list`. */
struct lease_info {
	uint64_t ino;			/* backing inode number of the leased file */
	pid_t pid;
	int signo;
	struct timespec since;		/* CLOCK_REALTIME when granted */
	bool breaking;			/* notified of a break not yet over */
	char path[LEASE_PATH_MAX];	/* as given to lease_add(), "" if none; may be cut */
};
/*
 * Holders of @st (NULL: of every file), at most @max into @out (may be NULL if @max is 0).
 * Returns how many there are, which may exceed @max.
 */
size_t lease_list(struct staged *st, struct lease_info *out, size_t max);

/* Counters since start-up, for `rdmafsctl stat`. */
struct lease_stats {
	uint64_t held;			/* leases held now */
	uint64_t granted;		/* lease_add()s that succeeded */
	uint64_t breaks;		/* lease_break()s that found leases to break */
	uint64_t denies;		/* ... that timed out and failed with EBUSY */
	uint64_t revokes;		/* leases revoked (SIGBUS) on timeout or shutdown */
	uint64_t deaths;		/* leases dropped because the holder died (pidfd) */
};
void lease_stats(struct lease_stats *out);

/* ---- ctl: the control socket (ctl.c) ---- */

int ctl_init(const char *mountpoint, const char *source);
/* Stop taking and running requests (threads joined); connections and leases stay. */
void ctl_stop(void);
void ctl_exit(void);

/* ---- fuse_ops ---- */

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops rdmafs_ops;
extern bool fuse_ops_passthrough;	/* the kernel accepted passthrough */
extern int fuse_ops_devfd;		/* /dev/fuse of the session (backing id close), or -1 */
/* Free the handles of files still open when the session ended. */
void fuse_ops_exit(void);

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#endif
