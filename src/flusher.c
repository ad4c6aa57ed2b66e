// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * flusher.c - owns when write-back happens: the periodic thread (passes, growth watch,
 * flush_on_close=async), retries with backoff, giving up the stager lock of a clean file,
 * the final commit at shutdown and the rescue folder. How a commit is done: commit.c.
 */
#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"
#include "metrics.h"
#include "restart.h"
#include "rdmafs/manifest.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;		/* protects stop, kicked, close_kicked, trim_kicked */
	pthread_cond_t cond;
	bool stop, kicked, running;
	bool close_kicked;		/* a close asked for a commit (flush_on_close=async) */
	bool trim_kicked;		/* too many files staged: commit and evict LRU ones */
	pthread_t thread;
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static bool retry_due(struct staged *st)
{
	struct timespec now;
	bool due;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&st->lock);
	due = !st->pending_error || now.tv_sec > st->next_retry.tv_sec ||
	      (now.tv_sec == st->next_retry.tv_sec && now.tv_nsec >= st->next_retry.tv_nsec);
	pthread_mutex_unlock(&st->lock);
	return due;
}

/*
 * Who may write @st now: a writable open, a writable mapping (with passthrough the kernel
 * sends RELEASE at close(2) while a mapping stays: it is seen as the staging file still
 * open elsewhere), a writable map fd handed out by the control socket, a lease holder.
 * None of them: after a commit, nothing can change it (but a long-term pin that outlived
 * its munmap without a lease: see doc/staging.md). @probe says whether and how mappings
 * are looked for (staging_open_elsewhere()).
 */
enum probe {
	PROBE_NONE,		/* growth: a mapping cannot grow the file */
	PROBE_ONCE,		/* periodic pass: a mapping found by mistake costs one more pass */
	PROBE_AFTER_CLOSE,	/* the commit after the last release: the only one */
};

static bool writers_left(struct staged *st, enum probe probe)
{
	struct inode *ino = st->ino;
	bool w;

	pthread_mutex_lock(&ino->lock);
	w = ino->st != st || ino->nopen_w;
	pthread_mutex_unlock(&ino->lock);
	if (!w) {
		bool sealed;

		pthread_mutex_lock(&st->lock);
		w = st->may_change;
		sealed = st->sealed;
		pthread_mutex_unlock(&st->lock);
		if (!w && !sealed && probe != PROBE_NONE)
			w = staging_open_elsewhere(st, probe == PROBE_AFTER_CLOSE);
	}
	return w || lease_count(st);
}

/* A commit found @st clean with no writer left: give up the stager lock. */
static void unlock_if_clean(struct staged *st)
{
	struct inode *ino = st->ino;
	bool quiet;

	pthread_mutex_lock(&ino->lock);
	quiet = ino->st == st && !ino->nopen_w && !st->pending_error &&
		staging_known_clean(st) && !lease_count(st);
	if (quiet) {
		pthread_mutex_lock(&st->lock);
		quiet = !st->may_change;
		pthread_mutex_unlock(&st->lock);
	}
	if (quiet)
		staging_unlock_writer(st);
	pthread_mutex_unlock(&ino->lock);
}

/*
 * Commit @st; if no writer was there before it and none after, and nothing was noted
 * (change_seq) meanwhile, it is clean until the next change: passes skip it.
 */
static int commit_mark_clean(struct staged *st, enum probe probe)
{
	uint64_t seq = __atomic_load_n(&st->change_seq, __ATOMIC_SEQ_CST);
	bool quiet = !writers_left(st, probe);
	int r = commit_file(st);

	if (!r && quiet && !writers_left(st, probe)) {
		__atomic_store_n(&st->clean_seq, seq, __ATOMIC_SEQ_CST);
		unlock_if_clean(st);	/* another node may stage it now */
	}
	return r;
}

/*
 * One periodic pass: commit what may have changed; a file that cannot have changed since
 * it was found clean is not read at all. Staging stays resident after the last close
 * (a reopen costs nothing); it goes when staging_budget needs room (budget.c) or on
 * rdmafsctl evict. A file sealed by an eviction that then found it dirty is dropped here
 * once committed (a sealed memfd cannot be written again anyway).
 */
static void pass_one(struct staged *st, void *arg)
{
	bool all = *(bool *)arg;

	/* Known clean: a probe found no writer after its last change (commit_mark_clean()),
	 * and a new one comes only through an open, a map fd or a lease, which note a change
	 * or are counted here. No probe: it cost 4 syscalls per idle file every pass. */
	if (!all && staging_known_clean(st) && !st->pending_error &&
	    !writers_left(st, PROBE_NONE))
		return;
	if (!all && !retry_due(st))
		return;
	if (commit_mark_clean(st, PROBE_ONCE) == 0 && st->sealed)
		budget_release_if_idle(st);
}

static void flush_pass(bool all)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	if (v)
		commit_each(v, n, pass_one, &all);	/* files side by side */
	staging_put_all(v, n);
	budget_trim(NULL, true, SIZE_MAX);	/* more files staged than descriptors allow */
}

/* flush_on_close=async: commit the files whose close asked for it, and only those. */
static void close_pass(void)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];
		bool want;

		pthread_mutex_lock(&st->lock);
		want = st->close_commit;
		st->close_commit = false;
		pthread_mutex_unlock(&st->lock);
		if (want)
			commit_mark_clean(st, PROBE_AFTER_CLOSE);
	}
	staging_put_all(v, n);
}

void flusher_commit_async(struct staged *st)
{
	pthread_mutex_lock(&st->lock);
	st->close_commit = true;
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_lock(&fl.lock);
	fl.close_kicked = true;
	pthread_cond_signal(&fl.cond);
	pthread_mutex_unlock(&fl.lock);
}

/*
 * Growth nobody told the daemon of: a write passed through (pt_writer) or by a map fd
 * (may_change). Writes the daemon serves (budget_enforce=strict) and its own truncate and
 * fallocate allocate their growth themselves; a mapping cannot grow a file.
 */
static bool grows_unseen(struct staged *st)
{
	bool r;

	if (__atomic_load_n(&st->pt_writer, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&st->lock);
	r = st->may_change;
	pthread_mutex_unlock(&st->lock);
	return r;
}

/*
 * Allocate growth of staged files that passthrough writes made (see staging_mem_alloc()).
 * Only files that can grow unseen are looked at: an fstat each every second, for every
 * file changed since its last commit, was ~9 % of the daemon's CPU under many small
 * files (bench/README.md).
 */
static void growth_pass(void)
{
	size_t n;
	struct staged **v = staging_get_all(&n);

	for (size_t i = 0; v && i < n; i++)
		if (grows_unseen(v[i]) &&
		    (!staging_known_clean(v[i]) || writers_left(v[i], PROBE_NONE)))	/* idle: cannot grow */
			staging_watch_growth(v[i]);
	staging_put_all(v, n);
}

/*
 * The periodic thread. Its clock is CLOCK_MONOTONIC (fl.cond is made for it in
 * flusher_init()): setting the wall clock neither delays nor hurries a pass. It wakes at
 * least every GROWTH_WATCH_NS to allocate growth made by passthrough writes, a pass is due
 * every flush_interval.
 */
#define GROWTH_WATCH_NS 1000000000ull
static void *flusher_thread(void *arg)
{
	uint64_t next_pass = now_ns() + (uint64_t)cfg->flush_interval * 1000000000ull;

	pthread_mutex_lock(&fl.lock);
	while (!fl.stop) {
		uint64_t now = now_ns(), wake = now + GROWTH_WATCH_NS;
		struct timespec ts;

		if (cfg->flush_interval)
			wake = MIN(wake, next_pass);
		ts.tv_sec = wake / 1000000000ull;
		ts.tv_nsec = wake % 1000000000ull;
		while (!fl.stop && !fl.kicked && !fl.close_kicked && !fl.trim_kicked)
			if (pthread_cond_timedwait(&fl.cond, &fl.lock, &ts) == ETIMEDOUT)
				break;
		if (fl.stop)
			break;
		bool kicked = fl.kicked, close_kicked = fl.close_kicked;
		bool trim_kicked = fl.trim_kicked;

		fl.kicked = fl.close_kicked = fl.trim_kicked = false;
		pthread_mutex_unlock(&fl.lock);
		if (close_kicked && !kicked)
			close_pass();
		if (trim_kicked && !kicked)	/* the least recently used only, not a pass */
			budget_trim(NULL, true, SIZE_MAX);
		growth_pass();
		restart_flush_drops();	/* batched store drops: out within a second */
		now = now_ns();
		if (kicked || (cfg->flush_interval && now >= next_pass)) {
			flush_pass(false);
			if (cfg->flush_interval && now >= next_pass)
				next_pass = now_ns() + (uint64_t)cfg->flush_interval * 1000000000ull;
		}
		pthread_mutex_lock(&fl.lock);
	}
	pthread_mutex_unlock(&fl.lock);
	return arg;
}

int flusher_init(void)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&fl.cond);
	pthread_cond_init(&fl.cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&fl.thread, NULL, flusher_thread, NULL);

	if (r)
		return -r;
	fl.running = true;
	return 0;
}

void flusher_kick_trim(void)
{
	pthread_mutex_lock(&fl.lock);
	fl.trim_kicked = true;
	pthread_cond_signal(&fl.cond);
	pthread_mutex_unlock(&fl.lock);
}

void flusher_kick(void)
{
	pthread_mutex_lock(&fl.lock);
	fl.kicked = true;
	pthread_cond_signal(&fl.cond);
	pthread_mutex_unlock(&fl.lock);
}

/*
 * The MANIFEST record of a rescued file (include/rdmafs/manifest.h): its path below the
 * backing root @root and what identifies it (device, inode, owner, birth time), so that
 * replay, run as root, writes to that same file and no other a user put in its place.
 */
static int rescue_record(FILE *m, const char *name, uint64_t size, struct inode *ino,
			 const char *root)
{
	char path[RDMAFS_MANIFEST_PATH_MAX], esc[4 * RDMAFS_MANIFEST_PATH_MAX];
	size_t rl = strlen(root);
	struct statx stx;
	ssize_t n;
	int fd = inode_fd(ino), r;

	if (fd < 0)
		return fd;
	r = statx(fd, "", AT_EMPTY_PATH, STATX_UID | STATX_NLINK | STATX_BTIME, &stx) < 0 ?
		-errno : 0;
	inode_fd_put(ino);
	if (r)
		return r;
	n = inode_readlink(ino, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = 0;
	/* Below the root and still linked: else no path (the data is kept all the same). */
	if (n <= 0 || !stx.stx_nlink || strncmp(path, root, rl) || path[rl] != '/' ||
	    rdmafs_manifest_escape(path + rl + 1, esc, sizeof(esc)) <= 0)
		strcpy(esc, "/");
	if (!(stx.stx_mask & STATX_BTIME))
		stx.stx_btime.tv_sec = stx.stx_btime.tv_nsec = 0;
	fprintf(m, "file %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %" PRIu64 " %u %s\n", name, size,
		(uint64_t)ino->src_dev, (uint64_t)ino->src_ino, stx.stx_uid,
		(uint64_t)stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec, esc);
	return 0;
}

static int rescue_one(int dirfd, FILE *manifest, struct staged *st, unsigned idx,
		      const char *root)
{
	char name[64];
	uint64_t size = 0, off = 0;
	ssize_t n;
	int fd, r = 0;

	staging_size(st, &size);
	snprintf(name, sizeof(name), "%u.data", idx);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < size) {
		n = pwrite(fd, (char *)st->map + off, MIN(size - off, 1ull << 26), off);
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += n;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r)
		r = rescue_record(manifest, name, size, st->ino, root);
	return r;
}

int flusher_rescue(const char *base)
{
	char dir[4200], root[RDMAFS_MANIFEST_PATH_MAX];
	char root_esc[4 * RDMAFS_MANIFEST_PATH_MAX];
	struct stat dsb;
	ssize_t rn;
	struct staged **v;
	size_t n, saved = 0;
	FILE *manifest;
	int dirfd, r = 0;
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	snprintf(dir, sizeof(dir), "%s/%04d%02d%02d-%02d%02d%02d-%d", base, tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, getpid());
	for (char *p = dir + 1; *p; p++) {	/* mkdir -p */
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(dir, 0700);
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0)
		return -errno;
	/* What we just made, not something put in its place (a user-writable rescue_dir). */
	dirfd = open(dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (fstat(dirfd, &dsb) < 0 || dsb.st_uid != geteuid() || (dsb.st_mode & 077)) {
		log_err("rescue: %s is not the private directory just made", dir);
		close(dirfd);
		return -EPERM;
	}
	rn = inode_readlink(inode_root(), root, sizeof(root) - 1);
	root[rn > 0 ? rn : 0] = 0;
	if (rn <= 0 || rdmafs_manifest_escape(root, root_esc, sizeof(root_esc)) < 0)
		strcpy(root_esc, "/nonexistent");	/* replay then refuses every file */
	int mfd = openat(dirfd, "MANIFEST", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	manifest = mfd >= 0 ? fdopen(mfd, "w") : NULL;
	if (!manifest) {
		close(dirfd);
		return -errno;
	}
	fprintf(manifest, "# rdmafs rescue (see rdmafsctl(8)). Replay: rdmafsctl replay %s\n"
			  "rdmafs-rescue %d\nroot %s %" PRIu64 " %" PRIu64 "\n", dir,
		RDMAFS_MANIFEST_VERSION, root_esc, (uint64_t)inode_root()->src_dev,
		(uint64_t)inode_root()->src_ino);
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];

		if (!st->pending_error && !commit_is_dirty(st))
			continue;
		pthread_mutex_lock(&st->commit_lock);
		pthread_mutex_lock(&st->lock);
		r = staging_sync_map(st);
		if (!r)
			r = rescue_one(dirfd, manifest, st, i, root);
		pthread_mutex_unlock(&st->lock);
		pthread_mutex_unlock(&st->commit_lock);
		if (r) {
			log_err("rescue ino=%" PRIu64 " into %s: %s", (uint64_t)st->ino->src_ino, dir,
				strerror(-r));
			break;
		}
		saved++;
		log_err("rescue ino=%" PRIu64 ": uncommitted staging saved in %s",
			(uint64_t)st->ino->src_ino, dir);
	}
	staging_put_all(v, n);
	if (fflush(manifest) || fsync(fileno(manifest)))
		r = r ? r : -errno;
	fclose(manifest);
	fsync(dirfd);
	close(dirfd);
	return r ? r : (int)saved;
}

int flusher_shutdown(void)
{
	uint64_t deadline = now_ns() + (uint64_t)cfg->shutdown_timeout * 1000000000ull;
	unsigned delay_ms = 100;
	int r;

	if (fl.running) {
		pthread_mutex_lock(&fl.lock);
		fl.stop = true;
		pthread_cond_signal(&fl.cond);
		pthread_mutex_unlock(&fl.lock);
		pthread_join(fl.thread, NULL);
		fl.running = false;
	}
	/* Commit everything; retry failures until shutdown_timeout. */
	for (;;) {
		size_t n, failed = 0;
		struct staged **v = staging_get_all(&n);

		for (size_t i = 0; v && i < n; i++)
			if (commit_file(v[i]))
				failed++;
		staging_put_all(v, n);
		if (!failed) {
			r = 0;
			break;
		}
		if (now_ns() >= deadline) {
			log_err("shutdown: %zu file(s) still cannot be committed; writing them to %s",
				failed, cfg->rescue_dir);
			r = flusher_rescue(cfg->rescue_dir);
			if (r < 0)
				log_err("shutdown: rescue to %s failed: %s; staged data is lost",
					cfg->rescue_dir, strerror(-r));
			r = r < 0 ? r : -EIO;
			break;
		}
		log_warn("shutdown: %zu file(s) not committed, retrying", failed);
		usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 5000u);
	}
	return r;
}
