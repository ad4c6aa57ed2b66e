// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl.c - owns the control socket of a mount: RDMAFS_RUNDIR/<escaped mountpoint>@<dev>.sock,
 * its clients, their requests (flush, stat, map, evict, leases) and the lease connections.
 *
 * One epoll thread accepts, reads and decodes (lib/proto.c, pure); it never blocks. Valid
 * requests go to a small worker pool, because commits, scans and lease breaks wait for I/O
 * or for other processes. A connection is EPOLLONESHOT: one request at a time, re-armed
 * when its reply is out. FUSE threads are never involved.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "rdmafs/proto.h"

#define CTL_MAX_CLIENTS 1024
#define CTL_ADMIN_RESERVE 64		/* of CTL_MAX_CLIENTS: only root and the mount's owner */
#define CTL_CONNS_PER_UID 128		/* other users, each */
#define CTL_LEASES_PER_UID 64		/* other users, each */
#define CTL_REFUSE_LOG_NS 10000000000ull	/* one "refused" line per uid this often */
#define CTL_CLOSER_MEM 16384		/* a closer's stack and bookkeeping */
#define CTL_CLOSERS_PER_UID 8		/* closes of a uid's files stuck: no more requests */
#define CTL_CLOSER_STUCK_NS 1000000000ull	/* a close this old waits on a FUSE server */
#define CTL_IDLE_TIMEOUT_S 60		/* a connection without a lease and silent this long */
#define CTL_SEND_TIMEOUT_MS 5000	/* a client that does not take its reply is dropped */
#define CTL_WORKERS 4
#define CTL_QUEUE_MAX 256
#define CTL_PROGRESS_NS 200000000ull

struct conn {
	int fd;				/* the accepted socket; owned */
	struct ucred cred;		/* SO_PEERCRED at accept */
	/* ctl.lock protects the fields below. */
	unsigned refs;			/* list + epoll + a running job + a notifier */
	bool busy;			/* a request is queued or running: epoll disarmed */
	bool closed;			/* off the list; fd closes with the last ref */
	uint64_t last_active;		/* monotonic ns */
	struct lease *lease;		/* the lease this connection is, or NULL */
	struct staged *lease_st;	/* a staging reference while the lease is held */
	uint64_t lease_id;		/* notify() argument: ids are never reused */
	int lease_signo;
	bool lease_breaking;
	char lease_path[RDMAFS_LEASE_PATH_MAX];
	pthread_mutex_t send_lock;	/* one message at a time on fd (replies, notices) */
	struct conn *next, *prev;
};

/*
 * A request for a worker, or a rejected one whose descriptors a worker closes: closing a
 * client's file may wait for its FUSE server (FUSE_FLUSH, a commit with flush_on_close),
 * so the epoll thread never does it.
 */
struct job {
	struct conn *c;			/* a reference */
	struct rdmafs_proto_req req;
	int err;			/* decode error to answer, 0 for a request to run */
	int fd;				/* the client's file (fds[0]), or -1 */
	int fds[4];			/* every descriptor that came with it; owned */
	unsigned nfds;
	struct job *next;
};

/*
 * Closing a descriptor a client sent may wait forever: for a FUSE file the kernel sends
 * FLUSH and waits, uninterruptibly, for an answer that a user's own FUSE server may never
 * give (or ours, once its loop has stopped). So no thread of ours closes them: a closer, a
 * child sharing our descriptor table and memory (clone CLONE_FILES | CLONE_VM), closes
 * them and exits. A stuck closer holds only that file; our threads, the final commit and
 * the daemon's exit do not wait for it. This record sits at the bottom of the closer's
 * stack mapping (CTL_CLOSER_MEM bytes), freed when the closer is reaped.
 */
struct closer {
	int pidfd;			/* owned */
	uid_t uid;			/* whose descriptors */
	uint64_t started;		/* monotonic ns */
	struct closer *next;		/* ctl.closers, under ctl.lock */
	unsigned nfds;
	int fds[4];			/* read by the child */
};

/* Tags of the epoll entries that are not connections. */
static char tag_listen, tag_timer, tag_wake;

static struct {
	/* lock protects the connection list, conn fields above, the queue and stop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a job was queued, or stop */
	struct conn *conns;
	unsigned nconns;
	struct job *qhead, *qtail;
	unsigned qlen;
	bool stop;
	uint64_t next_lease_id;
	int lfd, epfd, tfd, efd;
	bool thread_started;
	pthread_t thread;
	unsigned nworkers;
	pthread_t workers[CTL_WORKERS];
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t sock_ino;
	char mountpoint[PATH_MAX];
	size_t mnt_len;
	dev_t mnt_dev;
	uid_t owner;
	int reserve_fd;			/* /dev/null, given up to drain accept() at EMFILE */
	bool accept_paused;		/* listener out of epoll until the next timer tick */
	bool emfile_logged;		/* an EMFILE episode is on (logged at its start) */
	uint64_t emfile_last_ns;	/* last EMFILE of the episode */
	uint64_t emfile_refused;	/* connections dropped during the episode */
	uid_t refused_uid;		/* last uid refused, and when (log rate) */
	uint64_t refused_ns;
	struct closer *closers;		/* closers not reaped yet */
} ctl = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	  .lfd = -1, .epfd = -1, .tfd = -1, .efd = -1, .reserve_fd = -1 };

/* ---- closing client descriptors ---- */

/*
 * The child runs on its own stack in our memory, but with the thread pointer of the thread
 * that made it, whose TLS may be gone by the time a close returns (the daemon may have
 * exited): so no libc call (syscall() writes errno there), no sanitizer, no stack canary.
 */
#if defined(__x86_64__) || defined(__aarch64__)
#define CTL_HAVE_CLOSER 1
static inline __attribute__((always_inline)) void raw_close(int fd)
{
#if defined(__x86_64__)
	long r = SYS_close;

	__asm__ volatile("syscall" : "+a"(r) : "D"((long)fd) : "rcx", "r11", "memory");
#else
	register long x8 __asm__("x8") = SYS_close;
	register long x0 __asm__("x0") = fd;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
#endif
}

#if defined(__has_attribute) && __has_attribute(no_stack_protector)
#define CTL_NO_CANARY __attribute__((no_stack_protector))
#else
#define CTL_NO_CANARY
#endif

__attribute__((no_sanitize("address", "undefined"))) CTL_NO_CANARY
static int closer_main(void *arg)
{
	const struct closer *k = arg;

	for (unsigned i = 0; i < k->nfds; i++)
		raw_close(k->fds[i]);
	return 0;	/* clone()'s trampoline calls exit(2) directly */
}
#else
#define CTL_HAVE_CLOSER 0	/* no raw system call here: close in place */
#endif

/* Reap the closers that are done; with @all, forget the rest too (at exit). ctl.lock held. */
static void reap_closers_locked(bool all)
{
	for (struct closer **pp = &ctl.closers, *k; (k = *pp);) {
		struct pollfd p = { .fd = k->pidfd, .events = POLLIN };
		siginfo_t si;

		if (poll(&p, 1, 0) != 1) {
			if (!all) {
				pp = &k->next;
				continue;
			}
			/* Still in close(): its stack must stay; the child ends on its own. */
			log_warn("ctl: shutdown: descriptors of uid %u still closing (a FUSE server "
				 "not answering FLUSH?); not waiting for them", (unsigned)k->uid);
			*pp = k->next;
			close(k->pidfd);
			continue;
		}
		waitid(P_PIDFD, k->pidfd, &si, WEXITED);
		*pp = k->next;
		close(k->pidfd);
		munmap(k, CTL_CLOSER_MEM);
	}
}

/* Closes of @uid's descriptors that have waited for CTL_CLOSER_STUCK_NS; ctl.lock held. */
static unsigned closers_stuck_locked(uid_t uid)
{
	uint64_t now = now_ns();
	unsigned n = 0;

	reap_closers_locked(false);
	for (struct closer *k = ctl.closers; k; k = k->next)
		n += k->uid == uid && now - k->started > CTL_CLOSER_STUCK_NS;
	return n;
}

/* Close @n descriptors @uid's client sent us, without waiting for them (see struct closer). */
static void close_client_fds(const int *fds, unsigned n, uid_t uid)
{
	struct closer *k;
	unsigned done;
	int pidfd = -1;

	if (!n)
		return;
	if (!CTL_HAVE_CLOSER) {
		errno = ENOSYS;
		goto err;
	}
	k = mmap(NULL, CTL_CLOSER_MEM, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (k == MAP_FAILED)
		goto err;
	k->uid = uid;
	k->started = now_ns();
	k->nfds = MIN(n, ARRAY_SIZE(k->fds));
	memcpy(k->fds, fds, k->nfds * sizeof(int));
#if CTL_HAVE_CLOSER
	if (clone(closer_main, (char *)k + CTL_CLOSER_MEM, CLONE_VM | CLONE_FILES | CLONE_PIDFD |
		  SIGCHLD, k, &pidfd) < 0) {
		munmap(k, CTL_CLOSER_MEM);
		goto err;
	}
#endif
	k->pidfd = pidfd;
	done = k->nfds;
	pthread_mutex_lock(&ctl.lock);
	k->next = ctl.closers;
	ctl.closers = k;
	reap_closers_locked(false);	/* may free k already */
	pthread_mutex_unlock(&ctl.lock);
	if (n > done)
		close_client_fds(fds + done, n - done, uid);
	return;
err:
	/* No memory or no process for a closer: close here, and hope. */
	log_warn("ctl: closer for uid %u: %s; closing its descriptors in place", (unsigned)uid,
		 strerror(errno));
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* ---- connections ---- */

static void conn_put(struct conn *c)
{
	bool last;

	pthread_mutex_lock(&ctl.lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&ctl.lock);
	if (!last)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->send_lock);
	free(c);
}

/* Take @c off the list and out of epoll; release its lease. Idempotent. */
static void conn_close(struct conn *c)
{
	struct lease *l;
	struct staged *st;

	pthread_mutex_lock(&ctl.lock);
	if (c->closed) {
		pthread_mutex_unlock(&ctl.lock);
		return;
	}
	c->closed = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl.nconns--;
	epoll_ctl(ctl.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	l = c->lease;
	st = c->lease_st;
	c->lease = NULL;
	c->lease_st = NULL;
	pthread_mutex_unlock(&ctl.lock);
	if (l) {
		log_debug("ctl: lease ino=%" PRIu64 " of pid %d released", (uint64_t)st->ino->src_ino,
			  (int)c->cred.pid);
		lease_release(l);
		staging_put(st);
	}
	conn_put(c);	/* the list's reference */
}

/* Re-arm @c for its next request; ctl.lock held. */
static void conn_arm(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };

	if (!c->closed)
		epoll_ctl(ctl.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/*
 * Send one message (and @sendfd if >= 0). Waits up to CTL_SEND_TIMEOUT_MS for room
 * unless @best_effort. Returns 0 or -errno.
 */
static int conn_send(struct conn *c, const void *buf, size_t len, int sendfd, bool best_effort)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t deadline = now_ns() + CTL_SEND_TIMEOUT_MS * 1000000ull;
	int r = 0;

	if (sendfd >= 0)
		rdmafs_proto_attach_fd(&msg, cbuf, sizeof(cbuf), sendfd);
	pthread_mutex_lock(&c->send_lock);
	for (;;) {
		if (sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			break;
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r != -EAGAIN || best_effort)
			break;
		uint64_t now = now_ns();

		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

		poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
		r = 0;
	}
	pthread_mutex_unlock(&c->send_lock);
	return r;
}

static int send_error(struct conn *c, uint16_t op, uint32_t seq, int err)
{
	struct rdmafs_reply rep;
	size_t len = rdmafs_proto_encode_reply(&rep, op, seq, err, 0, 0);

	return conn_send(c, &rep, len, -1, false);
}

/* ---- resolving a client's file descriptor to our objects ---- */

struct target {
	int acc;			/* O_RDONLY, O_WRONLY or O_RDWR of the client's open */
	uint64_t size;			/* as the kernel caches it */
	ino_t ino;
	dev_t bdev;			/* backing device, 0 if the path is unknown */
	int bfd;			/* O_PATH on the backing file, or -1; owned */
	struct staged *st;		/* staging of the file with a reference, or NULL */
	char rel[PATH_MAX];		/* mount-relative path, "" if unknown */
	uid_t uid;			/* owner of the backing file, if bfd >= 0 */
};

/* Copy a string that may not fit; the wire says paths may be cut. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static bool peer_is_admin(const struct conn *c)
{
	return c->cred.uid == 0 || c->cred.uid == ctl.owner;
}

/* May @c act on the life of @t's file (lease, scan under its locks)? Write access or owner. */
static bool peer_may_write(const struct conn *c, const struct target *t)
{
	return peer_is_admin(c) || t->acc != O_RDONLY || (t->bfd >= 0 && t->uid == c->cred.uid);
}

/*
 * Log a refusal of @uid, at most once per CTL_REFUSE_LOG_NS for the same uid (a flood
 * must not flood the log); ctl.lock held.
 */
static void log_refusal_locked(uid_t uid, const char *what)
{
	uint64_t now = now_ns();

	if (uid == ctl.refused_uid && now - ctl.refused_ns < CTL_REFUSE_LOG_NS)
		return;
	ctl.refused_uid = uid;
	ctl.refused_ns = now;
	log_notice("ctl: uid %u refused: %s", (unsigned)uid, what);
}

static void target_done(struct target *t)
{
	if (t->bfd >= 0)
		close(t->bfd);
	if (t->st)
		staging_put(t->st);
	t->bfd = -1;
	t->st = NULL;
}

/*
 * Check that @fd is a regular file open on this mount (not O_PATH) and find its backing
 * file and staging. The kernel's cached attributes are used (AT_STATX_DONT_SYNC) so a
 * file of another, hung FUSE server cannot block us; the path comes from the dentry.
 */
static int resolve_fd(int fd, struct target *t)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	char proc[64], path[PATH_MAX];
	struct statx stx;
	struct stat bst;
	struct staged **v;
	size_t n, matches = 0;
	ssize_t len;
	int fl;

	memset(t, 0, sizeof(*t));
	t->bfd = -1;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_SIZE,
		  &stx) < 0)
		return -errno;
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != ctl.mnt_dev)
		return -EXDEV;	/* not a file of this mount */
	if (!S_ISREG(stx.stx_mode))
		return S_ISDIR(stx.stx_mode) ? -EISDIR : -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fl & O_PATH)
		return -EBADF;	/* proves no access */
	t->acc = fl & O_ACCMODE;
	t->ino = stx.stx_ino;
	t->size = stx.stx_size;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	len = readlink(proc, path, sizeof(path) - 1);
	if (len > 0) {
		path[len] = 0;
		if ((size_t)len > ctl.mnt_len + 1 && !strncmp(path, ctl.mountpoint, ctl.mnt_len) &&
		    path[ctl.mnt_len] == '/' &&
		    !(len > 10 && !strcmp(path + len - 10, " (deleted)")))
			snprintf(t->rel, sizeof(t->rel), "%s", path + ctl.mnt_len + 1);
	}
	if (t->rel[0]) {
		/* Backing twin of the path; the inode number check catches a rename since. */
		t->bfd = syscall(SYS_openat2, inode_root()->fd, t->rel, &how, sizeof(how));
		if (t->bfd >= 0 && (fstat(t->bfd, &bst) < 0 || bst.st_ino != t->ino)) {
			close(t->bfd);
			t->bfd = -1;
		}
		if (t->bfd >= 0) {
			t->bdev = bst.st_dev;
			t->uid = bst.st_uid;
		}
	}
	/* The mount serves one filesystem (fuse_ops refuses others): its device is the
	 * source's whenever the path is unknown (unlinked, renamed). */
	if (!t->bdev)
		t->bdev = inode_root()->src_dev;
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct inode *ino = v[i]->ino;

		if (ino->src_ino != t->ino || ino->src_dev != t->bdev)
			continue;
		if (!matches++) {
			t->st = v[i];
			staging_get(t->st);
		}
	}
	staging_put_all(v, n);
	if (matches > 1) {
		/* Cannot happen (one staging per inode); never guess between two. */
		target_done(t);
		return -ESTALE;
	}
	return 0;
}

/* ---- requests ---- */

static void fill_stat_one(struct staged *st, struct rdmafs_wire_stat *w, bool scan)
{
	struct inode *ino = st->ino;
	struct flush_stats fs;
	uint64_t size;
	int64_t changed = -1;

	if (scan)
		changed = flusher_dirty_bytes(st);
	pthread_mutex_lock(&ino->lock);
	w->opens += ino->nopen;
	w->opens_w += ino->nopen_w;
	pthread_mutex_unlock(&ino->lock);
	w->leases += lease_count(st);
	pthread_mutex_lock(&st->lock);
	fs = st->stats;
	size = st->size;
	if (!w->pending_error)
		w->pending_error = st->pending_error;
	if (st->sealed)
		w->flags |= RDMAFS_ST_SEALED;
	w->staging_mode = st->mode;
	w->page_size = st->page_size;
	w->chunk_size = st->dm->chunk_size;
	pthread_mutex_unlock(&st->lock);
	staging_size(st, &size);
	w->size += size;
	w->staged_bytes += ALIGN_UP(size, st->page_size ? st->page_size : 4096);
	if (changed >= 0)
		w->changed_bytes += changed;
	w->committed_bytes += fs.committed_bytes;
	w->commit_ns += fs.commit_ns;
	w->commits += fs.commits;
	w->failures += fs.failures;
	w->scanned_bytes += fs.scanned_bytes;
	w->lost_pages += fs.lost_pages;
	w->syncs += fs.syncs;
	w->budget_refusals += fs.budget_refusals;
	if (fs.last_commit.tv_sec > w->last_commit_sec ||
	    (fs.last_commit.tv_sec == w->last_commit_sec &&
	     (uint32_t)fs.last_commit.tv_nsec > w->last_commit_nsec)) {
		w->last_commit_sec = fs.last_commit.tv_sec;
		w->last_commit_nsec = fs.last_commit.tv_nsec;
	}
	if (fs.last_error && fs.last_error_time.tv_sec >= w->last_error_sec) {
		w->last_error = fs.last_error;
		w->last_error_sec = fs.last_error_time.tv_sec;
	}
	w->files++;
	w->flags |= RDMAFS_ST_STAGED;
}

static void fill_stat_common(struct rdmafs_wire_stat *w, bool scanned)
{
	w->flags |= (fuse_ops_passthrough ? RDMAFS_ST_PASSTHROUGH : 0) |
		    (scanned ? RDMAFS_ST_CHANGED_KNOWN : 0);
	w->flush_interval = cfg->flush_interval;
	w->budget = cfg->staging_budget;
	if (!w->chunk_size)
		w->chunk_size = cfg->chunk_size;
	if (!w->files)
		w->staging_mode = cfg->staging;
}

static int do_stat(struct conn *c, struct job *j, struct rdmafs_wire_stat *w)
{
	bool scan = !(j->req.flags & RDMAFS_STAT_NOSCAN);
	struct lease_stats ls;

	/*
	 * A scan hashes files under their commit locks, stalling their writers' fsync and
	 * close: only for root, the mount's owner, or (one file) who may write it. Others get
	 * the figures at hand, without RDMAFS_ST_CHANGED_KNOWN.
	 */
	struct target t;
	int r;

	memset(w, 0, sizeof(*w));
	if (j->req.flags & RDMAFS_STAT_MOUNT) {	/* like df: anyone may look */
		size_t n;
		struct staged **v;

		scan = scan && peer_is_admin(c);
		v = staging_get_all(&n);

		for (size_t i = 0; v && i < n; i++)
			fill_stat_one(v[i], w, scan);
		staging_put_all(v, n);
		w->staged_bytes = staging_bytes_used();
		lease_stats(&ls);
		w->lease_granted = ls.granted;
		w->lease_breaks = ls.breaks;
		w->lease_denies = ls.denies;
		w->lease_revokes = ls.revokes;
		w->lease_deaths = ls.deaths;
		fill_stat_common(w, scan);
		return 0;
	}
	r = resolve_fd(j->fd, &t);
	if (r)
		return r;
	scan = scan && peer_may_write(c, &t);
	w->src_ino = t.ino;
	if (t.st) {
		fill_stat_one(t.st, w, scan);
		w->files = 1;
	} else {
		w->size = t.size;
	}
	fill_stat_common(w, scan || !t.st);
	target_done(&t);
	return 0;
}

/* A flush with RDMAFS_FLUSH_PROGRESS: its worker commits, a ticker thread reports. */
struct progress {
	struct conn *c;
	uint32_t seq;
	bool all;
	pthread_mutex_t lock;		/* protects the fields below */
	pthread_cond_t cond;		/* stop */
	bool stop;
	struct rdmafs_wire_count wc;	/* files done, bytes written by their commits, total */
	int slot;			/* metrics_watch() slot of the file in a commit, or -1 */
};

/* Set on the worker thread while it runs do_flush() for do_flush_progress(). */
static __thread struct progress *flush_progress;

static int flush_one_watched(struct progress *p, struct staged *st, uint64_t *bytes);

static void send_progress(struct conn *c, uint32_t seq, const struct rdmafs_wire_count *wc)
{
	struct {
		struct rdmafs_reply rep;
		struct rdmafs_wire_count wc;
	} m;
	size_t len = rdmafs_proto_encode_reply(&m.rep, RDMAFS_OP_PROGRESS, seq, 0, 1, sizeof(*wc));

	if (flush_progress)
		return;	/* the ticker of do_flush_progress() reports instead */
	m.wc = *wc;
	conn_send(c, &m, len, -1, true);	/* progress may be dropped, replies may not */
}

/* Commit @st; *@committed: the bytes that commit made durable. Returns its result. */
static int commit_counted(struct staged *st, uint64_t *committed)
{
	uint64_t before;
	int r;

	pthread_mutex_lock(&st->lock);
	before = st->stats.committed_bytes;
	pthread_mutex_unlock(&st->lock);
	r = flusher_commit(st);
	pthread_mutex_lock(&st->lock);
	*committed = st->stats.committed_bytes - before;
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int flush_one(struct staged *st, uint64_t *bytes)
{
	uint64_t committed;
	int r;

	if (flush_progress)
		return flush_one_watched(flush_progress, st, bytes);
	r = commit_counted(st, &committed);
	*bytes += committed;
	return r;
}

static int do_flush(struct conn *c, struct job *j, struct rdmafs_wire_count *wc)
{
	struct target t;
	int r;

	memset(wc, 0, sizeof(*wc));
	if (j->req.flags & RDMAFS_FLUSH_ALL) {
		uint64_t last = now_ns();
		size_t n;
		struct staged **v;

		if (!peer_is_admin(c))
			return -EPERM;
		v = staging_get_all(&n);
		if (!v)
			return -ENOMEM;
		wc->files_total = n;
		for (size_t i = 0; i < n; i++) {
			r = flush_one(v[i], &wc->bytes);
			if (r) {
				wc->files_failed++;
				if (!wc->first_error)
					wc->first_error = r;
			}
			wc->files_done++;
			if (now_ns() - last > CTL_PROGRESS_NS && wc->files_done < n) {
				send_progress(c, j->req.seq, wc);
				last = now_ns();
			}
		}
		staging_put_all(v, n);
		return wc->first_error;
	}
	r = resolve_fd(j->fd, &t);
	if (r)
		return r;
	if (t.acc == O_RDONLY && !peer_is_admin(c)) {
		r = -EBADF;	/* like fsync's contract for writers: prove write access */
		goto out;
	}
	wc->files_total = 1;
	if (t.st) {
		r = flush_one(t.st, &wc->bytes);
	} else if (t.bfd >= 0) {
		/* Not staged (e.g. over budget): its writes went to the backing file. */
		char proc[64];
		int fd;

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t.bfd);
		fd = open(proc, O_RDONLY | O_CLOEXEC);
		r = fd < 0 || fsync(fd) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
	} else {
		r = -ESTALE;
	}
	wc->files_done = 1;
	if (r) {
		wc->files_failed = 1;
		wc->first_error = r;
	}
out:
	target_done(&t);
	return r;
}

/* Staging memfd reopened with the access the client's fd grants; *fd_out owned by caller. */
static int do_map(struct conn *c, struct job *j, struct rdmafs_wire_map *wm, int *fd_out)
{
	bool want_write = j->req.arg & RDMAFS_MAP_WRITE;
	char proc[64];
	struct target t;
	struct inode *ino;
	uint64_t size = 0;
	int r, fd;

	memset(wm, 0, sizeof(*wm));
	r = resolve_fd(j->fd, &t);
	if (r)
		return r;
	if (t.acc == O_WRONLY || (want_write && t.acc != O_RDWR)) {
		r = -EACCES;	/* a mapping reads; a writable one needs a read-write open */
		goto out;
	}
	if (!t.st) {
		r = -ENODATA;	/* not staged: nothing to hand over */
		goto out;
	}
	ino = t.st->ino;
	/* ino->lock: staging_unseal() may replace the memfd. */
	pthread_mutex_lock(&ino->lock);
	if (want_write && t.st->sealed) {
		r = -EPERM;
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t.st->memfd);
		fd = open(proc, (want_write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&ino->lock);
	if (r)
		goto out;
	staging_size(t.st, &size);
	wm->size = size;
	wm->page_size = t.st->page_size ? t.st->page_size : 4096;
	wm->prot = RDMAFS_MAP_READ | (want_write ? RDMAFS_MAP_WRITE : 0);
	*fd_out = fd;
	pthread_mutex_lock(&t.st->lock);
	t.st->may_change = t.st->may_change || want_write;
	pthread_mutex_unlock(&t.st->lock);
	log_debug("ctl: map ino=%" PRIu64 " %s for pid %d", (uint64_t)t.ino,
		  want_write ? "rw" : "ro", (int)c->cred.pid);
out:
	target_done(&t);
	return r;
}

static int do_evict(struct conn *c, struct job *j, struct rdmafs_wire_count *wc)
{
	size_t n;
	struct staged **v;

	memset(wc, 0, sizeof(*wc));
	if (!peer_is_admin(c))
		return -EPERM;
	v = staging_get_all(&n);
	if (!v)
		return -ENOMEM;
	wc->files_total = n;
	for (size_t i = 0; i < n; i++) {
		struct staged *st = v[i];
		struct inode *ino = st->ino;
		uint64_t size = 0;
		bool sealed;

		/* Only what nobody opens, maps, pins or leases: the seal proves it. */
		pthread_mutex_lock(&ino->lock);
		sealed = ino->st == st && staging_try_seal(st);
		pthread_mutex_unlock(&ino->lock);
		staging_size(st, &size);
		if (sealed && flusher_commit(st) == 0 && staging_release_if_idle(st)) {
			metrics_evicted(ALIGN_UP(size, st->page_size ? st->page_size : 4096));
			wc->files_done++;
			wc->bytes += ALIGN_UP(size, st->page_size ? st->page_size : 4096);
		}
	}
	staging_put_all(v, n);
	return 0;
}

static void lease_notify(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct rdmafs_reply rep;
	struct conn *c;
	size_t len;

	pthread_mutex_lock(&ctl.lock);
	for (c = ctl.conns; c && c->lease_id != id; c = c->next)
		;
	if (c) {
		c->refs++;
		c->lease_breaking = true;
	}
	pthread_mutex_unlock(&ctl.lock);
	if (!c)
		return;	/* already released */
	len = rdmafs_proto_encode_reply(&rep, RDMAFS_OP_LEASE_BREAK_NOTICE, 0, 0, 0, 0);
	conn_send(c, &rep, len, -1, true);
	conn_put(c);
}

/* Leases held or being granted by @uid's connections; ctl.lock held. */
static unsigned uid_leases_locked(uid_t uid)
{
	unsigned n = 0;

	for (struct conn *k = ctl.conns; k; k = k->next)
		n += k->cred.uid == uid && k->lease_id;
	return n;
}

static int do_lease(struct conn *c, struct job *j)
{
	struct target t;
	struct lease *l;
	uint64_t id;
	int r;

	r = resolve_fd(j->fd, &t);
	if (r)
		return r;
	if (!peer_may_write(c, &t)) {
		/* A lease blocks truncate and eviction: a reader must not hold up the writers. */
		r = -EBADF;
		goto out;
	}
	if (!t.st) {
		r = -ENODATA;	/* not staged: its pages are the backing FS's, no lease */
		goto out;
	}
	/* Its holder may write: this node must be the file's stager (see lockfd). */
	pthread_mutex_lock(&t.st->ino->lock);
	r = t.st->ino->st == t.st ? staging_lock_writer(t.st) : -ESTALE;
	pthread_mutex_unlock(&t.st->ino->lock);
	if (r)
		goto out;
	pthread_mutex_lock(&ctl.lock);
	if (c->lease_id) {
		pthread_mutex_unlock(&ctl.lock);
		r = -EBUSY;	/* one lease per connection */
		goto out;
	}
	if (!peer_is_admin(c) && uid_leases_locked(c->cred.uid) >= CTL_LEASES_PER_UID) {
		log_refusal_locked(c->cred.uid, "too many leases");
		pthread_mutex_unlock(&ctl.lock);
		r = -ENOLCK;
		goto out;
	}
	id = c->lease_id = ++ctl.next_lease_id;
	c->lease_signo = j->req.arg;
	copy_cut(c->lease_path, sizeof(c->lease_path), t.rel);
	pthread_mutex_unlock(&ctl.lock);
	l = lease_add(t.st, c->cred.pid, j->req.arg, lease_notify, (void *)(uintptr_t)id);
	if (!l) {
		r = errno ? -errno : -ENOMEM;
		pthread_mutex_lock(&ctl.lock);
		c->lease_id = 0;
		pthread_mutex_unlock(&ctl.lock);
		goto out;
	}
	pthread_mutex_lock(&ctl.lock);
	c->lease = l;
	c->lease_st = t.st;	/* the target's reference moves to the lease */
	t.st = NULL;
	pthread_mutex_unlock(&ctl.lock);
	log_debug("ctl: lease ino=%" PRIu64 " for pid %d signo %d", (uint64_t)t.ino,
		  (int)c->cred.pid, j->req.arg);
out:
	target_done(&t);
	return r;
}

static int do_lease_list(struct conn *c, struct job *j, struct rdmafs_wire_lease *out,
			 uint32_t *count, uint32_t *next)
{
	struct target t = { .bfd = -1 };
	uint32_t idx = 0, first = (uint32_t)j->req.arg;
	int r;

	*count = *next = 0;
	if (j->fd >= 0) {
		r = resolve_fd(j->fd, &t);
		if (r)
			return r;
		if (!t.st) {
			target_done(&t);	/* its O_PATH fd */
			return 0;
		}
	} else if (!peer_is_admin(c)) {
		return -EPERM;	/* other users' pids and paths */
	}
	pthread_mutex_lock(&ctl.lock);
	for (struct conn *k = ctl.conns; k; k = k->next) {
		if (!k->lease || (t.st && k->lease_st != t.st))
			continue;
		if (idx++ < first)
			continue;
		if (*count == RDMAFS_LEASE_PER_MSG) {
			*next = idx - 1;
			break;
		}
		struct rdmafs_wire_lease *w = &out[(*count)++];

		memset(w, 0, sizeof(*w));
		w->src_ino = k->lease_st->ino->src_ino;
		w->pid = k->cred.pid;
		w->signo = k->lease_signo;
		w->state = k->lease_breaking;
		copy_cut(w->path, sizeof(w->path), k->lease_path);
	}
	pthread_mutex_unlock(&ctl.lock);
	target_done(&t);
	return 0;
}

static int do_lease_break(struct conn *c, struct job *j)
{
	struct target t;
	int r;

	r = resolve_fd(j->fd, &t);
	if (r)
		return r;
	if (!peer_is_admin(c))
		r = -EPERM;
	else if (t.st)	/* without commit_lock: a dying holder's close commits (FLUSH) */
		r = lease_break(t.st, "rdmafsctl lease break");
	target_done(&t);
	return r;
}

/* ---- flush progress, metrics and the file list (rdmafsctl flush, metrics, top) ---- */

static int flush_one_watched(struct progress *p, struct staged *st, uint64_t *bytes)
{
	uint64_t committed, written;
	int slot, r;

	if (!p->all) {	/* the total of one file, once its access is proven */
		int64_t d = flusher_dirty_bytes(st);

		pthread_mutex_lock(&p->lock);
		p->wc.bytes_total = d > 0 ? (uint64_t)d : 0;
		p->wc.files_total = 1;
		pthread_mutex_unlock(&p->lock);
	}
	slot = metrics_watch(st);
	pthread_mutex_lock(&p->lock);
	p->slot = slot;
	pthread_mutex_unlock(&p->lock);
	r = commit_counted(st, &committed);
	*bytes += committed;
	written = slot >= 0 ? metrics_watched(slot) : committed;
	pthread_mutex_lock(&p->lock);
	p->slot = -1;
	p->wc.bytes += written;
	p->wc.files_done++;
	pthread_mutex_unlock(&p->lock);
	if (slot >= 0)
		metrics_unwatch(slot);
	return r;
}

static void *progress_ticker(void *arg)
{
	struct progress *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct rdmafs_wire_count wc;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += CTL_PROGRESS_NS;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT)
			;
		if (p->stop)
			break;
		if (!p->wc.files_total)
			continue;	/* still counting the bytes to commit */
		wc = p->wc;
		if (p->slot >= 0)
			wc.bytes += metrics_watched(p->slot);
		pthread_mutex_unlock(&p->lock);
		send_progress(p->c, p->seq, &wc);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*
 * FLUSH with RDMAFS_FLUSH_PROGRESS: count the bytes to commit (a scan), then do_flush()
 * while a ticker sends PROGRESS with bytes written of bytes_total every CTL_PROGRESS_NS.
 */
static int do_flush_progress(struct conn *c, struct job *j, struct rdmafs_wire_count *wc)
{
	struct progress p = { .c = c, .seq = j->req.seq, .slot = -1,
			      .all = j->req.flags & RDMAFS_FLUSH_ALL };
	pthread_condattr_t ca;
	pthread_t thread;
	bool ticking;
	int r;

	if (p.all) {
		size_t n;
		struct staged **v;

		if (!peer_is_admin(c)) {
			memset(wc, 0, sizeof(*wc));
			return -EPERM;	/* before the scan: the total is the mount's */
		}
		v = staging_get_all(&n);
		for (size_t i = 0; v && i < n; i++) {
			int64_t d = flusher_dirty_bytes(v[i]);

			p.wc.bytes_total += d > 0 ? (uint64_t)d : 0;
		}
		staging_put_all(v, n);
		p.wc.files_total = n;
	}
	pthread_mutex_init(&p.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p.cond, &ca);
	pthread_condattr_destroy(&ca);
	ticking = pthread_create(&thread, NULL, progress_ticker, &p) == 0;
	flush_progress = &p;
	r = do_flush(c, j, wc);
	flush_progress = NULL;
	pthread_mutex_lock(&p.lock);
	p.stop = true;
	pthread_cond_signal(&p.cond);
	pthread_mutex_unlock(&p.lock);
	if (ticking)
		pthread_join(thread, NULL);
	wc->bytes_total = p.wc.bytes_total;
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return r;
}

/*
 * Bytes of @st not committed, without waiting for a commit under way (that would stall a
 * monitoring tool for the length of a flush): -EBUSY while one runs.
 */
static int64_t dirty_now(struct staged *st)
{
	if (pthread_mutex_trylock(&st->commit_lock))
		return -EBUSY;
	pthread_mutex_unlock(&st->commit_lock);
	return flusher_dirty_bytes(st);
}

static int do_metrics(struct conn *c, struct job *j, struct rdmafs_wire_metrics *w)
{
	bool scan = !(j->req.flags & RDMAFS_METRICS_NOSCAN);
	struct lease_stats ls;
	struct staged **v;
	unsigned k = 0;
	size_t n;

	memset(w, 0, sizeof(*w));	/* like df: anyone may look, no paths in it */
	w->dirty_bytes = scan ? 0 : RDMAFS_DIRTY_UNKNOWN;
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct staged *st = v[i];
		int64_t d = scan ? dirty_now(st) : 0;

		pthread_mutex_lock(&st->ino->lock);
		w->opens += st->ino->nopen;
		w->opens_w += st->ino->nopen_w;
		pthread_mutex_unlock(&st->ino->lock);
		pthread_mutex_lock(&st->lock);
		w->files_failing += st->pending_error != 0;
		pthread_mutex_unlock(&st->lock);
		w->files++;
		if (d == -EBUSY)
			w->files_committing++;
		if (d >= 0 && scan)
			w->dirty_bytes += d;
		else if (scan)
			w->flags |= RDMAFS_MF_DIRTY_PARTIAL;
	}
	staging_put_all(v, n);
	w->staged_bytes = staging_bytes_used();
	w->budget_bytes = cfg->staging_budget;
	lease_stats(&ls);
	w->leases = ls.held;
	w->lease_granted = ls.granted;
	w->lease_breaks = ls.breaks;
	w->lease_denies = ls.denies;
	w->lease_revokes = ls.revokes;
	w->lease_deaths = ls.deaths;
	w->files_staged_total = metrics_read(&metrics.files_staged);
	w->files_dropped_total = metrics_read(&metrics.files_dropped);
	w->evictions_total = metrics_read(&metrics.evictions);
	w->evicted_bytes_total = metrics_read(&metrics.evicted_bytes);
	w->commit_ns_total = metrics_read(&metrics.commit_ns);
	w->committed_bytes_total = metrics_read(&metrics.committed_bytes);
	w->written_bytes_total = metrics_read(&metrics.written_bytes);
	w->scanned_bytes_total = metrics_read(&metrics.scanned_bytes);
	w->failures_total = metrics_read(&metrics.failures);
	w->nbuckets = METRICS_BUCKETS;
	for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
		w->bucket_le_ns[b] = metrics_bucket_le_ns[b];
		w->bucket_count[b] = metrics_read(&metrics.bucket[b]);
		w->commits_total += w->bucket_count[b];	/* = the histogram's count */
	}
	for (int e = 1; e <= METRICS_ERRNO_MAX; e++) {
		/* errors[0] (errnos out of range) and what does not fit go last, as "other" */
		uint64_t cnt = metrics_read(&metrics.errors[e % METRICS_ERRNO_MAX]);

		if (!cnt)
			continue;
		if (e < METRICS_ERRNO_MAX && k < RDMAFS_METRICS_ERRNOS - 1) {
			w->failures[k].error = -e;
			w->failures[k++].count = cnt;
		} else {
			w->failures[RDMAFS_METRICS_ERRNOS - 1].count += cnt;
		}
	}
	if (w->failures[RDMAFS_METRICS_ERRNOS - 1].count) {
		w->failures[k] = w->failures[RDMAFS_METRICS_ERRNOS - 1];
		if (k != RDMAFS_METRICS_ERRNOS - 1)
			memset(&w->failures[RDMAFS_METRICS_ERRNOS - 1], 0, sizeof(w->failures[0]));
		k++;
	}
	w->nerrnos = k;
	return 0;
}

/* Mount-relative path of a staged file, "" if unknown (deleted, renamed out). */
static void staged_rel_path(struct staged *st, const char *root, char *out, size_t size)
{
	char path[PATH_MAX];
	size_t rl = strlen(root);
	ssize_t len = inode_readlink(st->ino, path, sizeof(path) - 1);

	out[0] = 0;
	if (len <= 0)
		return;
	path[len] = 0;
	if ((size_t)len > rl && !strncmp(path, root, rl) && path[rl] == '/')
		copy_cut(out, size, path + rl + 1);
}

static int do_files(struct conn *c, struct job *j, struct rdmafs_wire_file *out,
		    uint32_t *count, uint32_t *next)
{
	bool scan = !(j->req.flags & RDMAFS_METRICS_NOSCAN);
	char root[PATH_MAX];
	struct staged **v;
	ssize_t rl;
	size_t n;

	*count = *next = 0;
	if (!peer_is_admin(c))
		return -EPERM;	/* other users' paths */
	rl = inode_readlink(inode_root(), root, sizeof(root) - 1);
	root[rl > 0 ? rl : 0] = 0;
	v = staging_get_all(&n);
	for (size_t i = (size_t)j->req.arg; v && i < n; i++) {
		struct rdmafs_wire_file *w = &out[*count];
		struct staged *st = v[i];
		struct flush_stats fs;
		uint64_t size = 0;
		int64_t d;

		if (*count == RDMAFS_FILES_PER_MSG) {
			*next = (uint32_t)i;
			break;
		}
		(*count)++;
		memset(w, 0, sizeof(*w));
		d = scan ? dirty_now(st) : -ENODATA;
		w->dirty_bytes = d >= 0 ? (uint64_t)d : RDMAFS_DIRTY_UNKNOWN;
		w->flags |= d == -EBUSY ? RDMAFS_MF_COMMITTING : 0;
		pthread_mutex_lock(&st->ino->lock);
		w->opens = st->ino->nopen;
		w->opens_w = st->ino->nopen_w;
		pthread_mutex_unlock(&st->ino->lock);
		w->leases = lease_count(st);
		pthread_mutex_lock(&st->lock);
		fs = st->stats;
		w->pending_error = st->pending_error;
		w->flags |= st->sealed ? RDMAFS_MF_SEALED : 0;
		w->staging_mode = st->mode;
		pthread_mutex_unlock(&st->lock);
		staging_size(st, &size);
		w->src_ino = st->ino->src_ino;
		w->size = size;
		w->staged_bytes = ALIGN_UP(size, st->page_size ? st->page_size : 4096);
		w->committed_bytes = fs.committed_bytes;
		w->commits = fs.commits;
		w->failures = fs.failures;
		w->commit_ns = fs.commit_ns;
		staged_rel_path(st, root, w->path, sizeof(w->path));
	}
	staging_put_all(v, n);
	return 0;
}

static void run_job(struct job *j)
{
	struct conn *c = j->c;
	union {
		struct rdmafs_reply rep;
		char buf[RDMAFS_MSG_MAX];
	} *m = calloc(1, sizeof(*m));
	void *payload = m ? m->buf + sizeof(struct rdmafs_reply) : NULL;
	uint32_t count = 0, next = 0;
	int r, sr, sendfd = -1;
	size_t len;

	if (!m || j->err) {
		sr = send_error(c, j->req.op, j->req.seq, j->err ? j->err : -ENOMEM);
		goto out;
	}
	switch (j->req.op) {
	case RDMAFS_OP_FLUSH:
		if (j->req.flags & RDMAFS_FLUSH_PROGRESS)
			r = do_flush_progress(c, j, payload);
		else
			r = do_flush(c, j, payload);
		count = 1;
		break;
	case RDMAFS_OP_STAT:
		r = do_stat(c, j, payload);
		count = !r;
		break;
	case RDMAFS_OP_MAP:
		r = do_map(c, j, payload, &sendfd);
		count = !r;
		break;
	case RDMAFS_OP_EVICT:
		r = do_evict(c, j, payload);
		count = 1;
		break;
	case RDMAFS_OP_LEASE:
		r = do_lease(c, j);
		break;
	case RDMAFS_OP_LEASE_LIST:
		r = do_lease_list(c, j, payload, &count, &next);
		break;
	case RDMAFS_OP_LEASE_BREAK:
		r = do_lease_break(c, j);
		break;
	case RDMAFS_OP_METRICS:
		r = do_metrics(c, j, payload);
		count = !r;
		break;
	case RDMAFS_OP_FILES:
		r = do_files(c, j, payload, &count, &next);
		break;
	default:
		r = -EOPNOTSUPP;	/* the decoder lets no other op through */
		break;
	}
	if (r && j->req.op != RDMAFS_OP_FLUSH && j->req.op != RDMAFS_OP_EVICT)
		count = 0;
	len = rdmafs_proto_encode_reply(&m->rep, j->req.op, j->req.seq, r, count,
					(size_t)rdmafs_proto_rec_size(j->req.op));
	m->rep.next = next;
	sr = conn_send(c, m, len, sendfd, false);
	if (sr)
		log_info("ctl: client pid %d: reply not sent (%s), dropping it", (int)c->cred.pid,
			 strerror(-sr));
out:
	if (sendfd >= 0)
		close(sendfd);
	free(m);
	pthread_mutex_lock(&ctl.lock);
	c->busy = false;
	c->last_active = now_ns();
	conn_arm(c);
	pthread_mutex_unlock(&ctl.lock);
	if (sr)
		conn_close(c);
}

static void *worker(void *arg)
{
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&ctl.lock);
		while (!ctl.stop && !ctl.qhead)
			pthread_cond_wait(&ctl.cond, &ctl.lock);
		j = ctl.qhead;
		if (ctl.stop || !j) {
			pthread_mutex_unlock(&ctl.lock);
			break;
		}
		ctl.qhead = j->next;
		if (!ctl.qhead)
			ctl.qtail = NULL;
		ctl.qlen--;
		pthread_mutex_unlock(&ctl.lock);
		run_job(j);
		close_client_fds(j->fds, j->nfds, j->c->cred.uid);
		conn_put(j->c);
		free(j);
	}
	return arg;
}

/* ---- the epoll thread ---- */

static int epoll_add(int fd, void *tag);

/*
 * May a connection of @cred be added? Room is kept for root and the mount's owner, and no
 * other user takes more than CTL_CONNS_PER_UID. ctl.lock held.
 */
static bool conn_admit_locked(const struct ucred *cred)
{
	bool admin = cred->uid == 0 || cred->uid == ctl.owner;
	unsigned mine = 0;

	if (ctl.nconns >= CTL_MAX_CLIENTS) {
		log_refusal_locked(cred->uid, "control socket full");
		return false;
	}
	if (admin)
		return true;
	if (ctl.nconns >= CTL_MAX_CLIENTS - CTL_ADMIN_RESERVE) {
		log_refusal_locked(cred->uid, "control socket full for users");
		return false;
	}
	for (struct conn *k = ctl.conns; k; k = k->next)
		mine += k->cred.uid == cred->uid;
	if (mine >= CTL_CONNS_PER_UID) {
		log_refusal_locked(cred->uid, "too many connections");
		return false;
	}
	return true;
}

/*
 * accept() failed with EMFILE/ENFILE: the pending connection stays and the level-triggered
 * listener would wake us again at once. Give up the reserve fd to accept and close it (the
 * client sees its connection reset); without a reserve, leave the listener out of epoll
 * until the next timer tick. Logged once per episode.
 */
static void accept_exhausted(int err)
{
	int fd;

	if (!ctl.emfile_logged)
		log_warn("ctl: accept: %s; refusing connections until descriptors are free",
			 strerror(err));
	ctl.emfile_logged = true;
	ctl.emfile_last_ns = now_ns();
	if (ctl.reserve_fd >= 0) {
		close(ctl.reserve_fd);
		fd = accept4(ctl.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			ctl.emfile_refused++;
		}
		ctl.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return;
	}
	if (epoll_ctl(ctl.epfd, EPOLL_CTL_DEL, ctl.lfd, NULL) == 0)
		ctl.accept_paused = true;
}

static void on_accept(void)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
		socklen_t sl = sizeof(struct ucred);
		struct conn *c;
		bool admit;
		int fd = accept4(ctl.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_exhausted(errno);
			else if (errno != EAGAIN && errno != EINTR)
				log_warn("ctl: accept: %s", strerror(errno));
			return;
		}
		/* The episode ends after 10 s without EMFILE: a daemon hovering at its limit
		 * logs one line, not one per connection that squeezed in. */
		if (ctl.emfile_logged && now_ns() - ctl.emfile_last_ns > 10000000000ull) {
			log_notice("ctl: accepting connections again (%" PRIu64 " refused while out "
				   "of descriptors)", ctl.emfile_refused);
			ctl.emfile_logged = false;
			ctl.emfile_refused = 0;
		}
		if (ctl.reserve_fd < 0)
			ctl.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		c = calloc(1, sizeof(*c));
		if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &sl) < 0) {
			free(c);
			close(fd);
			continue;
		}
		pthread_mutex_lock(&ctl.lock);
		admit = conn_admit_locked(&c->cred);
		pthread_mutex_unlock(&ctl.lock);
		if (!admit) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->refs = 1;	/* the list's */
		c->last_active = now_ns();
		pthread_mutex_init(&c->send_lock, NULL);
		pthread_mutex_lock(&ctl.lock);
		c->next = ctl.conns;
		if (ctl.conns)
			ctl.conns->prev = c;
		ctl.conns = c;
		ctl.nconns++;
		ev.data.ptr = c;
		epoll_ctl(ctl.epfd, EPOLL_CTL_ADD, fd, &ev);
		pthread_mutex_unlock(&ctl.lock);
	}
}

/* One readable connection: read one datagram, decode it, queue it or answer the error. */
static void on_conn(struct conn *c)
{
	char buf[RDMAFS_MSG_MAX];
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			      /* Room for exactly one fd: the kernel drops any more (without
			       * closing them in our name, so no FUSE_FLUSH) and sets MSG_CTRUNC. */
			      .msg_controllen = CMSG_LEN(sizeof(int)) };
	struct rdmafs_proto_req req;
	int fds[4], nfds = 0, r;
	struct job *j;
	bool full, stuck;
	ssize_t n;

	/*
	 * Files of this uid are still closing: read nothing more from it. Closing the
	 * connection drops what it queued without FLUSH (the kernel releases in-flight
	 * descriptors, it does not close them in our name).
	 */
	pthread_mutex_lock(&ctl.lock);
	stuck = closers_stuck_locked(c->cred.uid) >= CTL_CLOSERS_PER_UID;
	if (stuck)
		log_refusal_locked(c->cred.uid, "its descriptors are still closing");
	pthread_mutex_unlock(&ctl.lock);
	if (stuck) {
		conn_close(c);
		return;
	}
	n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		pthread_mutex_lock(&ctl.lock);
		conn_arm(c);
		pthread_mutex_unlock(&ctl.lock);
		return;
	}
	if (n <= 0) {	/* EOF: the client closed, or died; a lease ends here */
		conn_close(c);
		return;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (nfds < (int)ARRAY_SIZE(fds))
				fds[nfds++] = fd;
			else
				close_client_fds(&fd, 1, c->cred.uid);
		}
	}
	r = rdmafs_proto_decode_req(buf, n, nfds, !!(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)),
				    &req);
	pthread_mutex_lock(&ctl.lock);
	c->last_active = now_ns();
	if (!r && c->lease)
		r = -EBUSY;	/* a lease connection only waits for its break or close */
	full = ctl.qlen >= CTL_QUEUE_MAX;
	pthread_mutex_unlock(&ctl.lock);
	if (r)
		log_debug("ctl: pid %d: bad request (op %u): %s", (int)c->cred.pid, req.op,
			  strerror(-r));
	j = full ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		/* No job to hand the fds to: answer here; only a flood gets this far. */
		close_client_fds(fds, nfds, c->cred.uid);
		if (send_error(c, req.op, req.seq, r ? r : full ? -EAGAIN : -ENOMEM)) {
			conn_close(c);
			return;
		}
		pthread_mutex_lock(&ctl.lock);
		conn_arm(c);
		pthread_mutex_unlock(&ctl.lock);
		return;
	}
	j->req = req;
	j->err = r;
	memcpy(j->fds, fds, nfds * sizeof(int));
	j->nfds = nfds;
	j->fd = nfds ? fds[0] : -1;
	j->c = c;
	pthread_mutex_lock(&ctl.lock);
	c->refs++;
	c->busy = true;
	if (ctl.qtail)
		ctl.qtail->next = j;
	else
		ctl.qhead = j;
	ctl.qtail = j;
	ctl.qlen++;
	pthread_cond_signal(&ctl.cond);
	pthread_mutex_unlock(&ctl.lock);
}

/* Drop connections silent for CTL_IDLE_TIMEOUT_S that hold no lease and wait for nothing. */
static void sweep_idle(void)
{
	uint64_t now = now_ns(), limit;
	struct conn *victims[32];
	unsigned n = 0;

	/*
	 * CLOCK_MONOTONIC starts near 0 at boot: within the first minute nothing can be idle
	 * that long (and the subtraction would wrap, dropping every connection, even one
	 * whose request is not read yet).
	 */
	if (now < CTL_IDLE_TIMEOUT_S * 1000000000ull)
		return;
	limit = now - CTL_IDLE_TIMEOUT_S * 1000000000ull;
	pthread_mutex_lock(&ctl.lock);
	for (struct conn *c = ctl.conns; c && n < ARRAY_SIZE(victims); c = c->next) {
		if (!c->busy && !c->lease && c->last_active < limit) {
			c->refs++;
			victims[n++] = c;
		}
	}
	pthread_mutex_unlock(&ctl.lock);
	for (unsigned i = 0; i < n; i++) {
		log_debug("ctl: client pid %d idle, closing", (int)victims[i]->cred.pid);
		conn_close(victims[i]);
		conn_put(victims[i]);
	}
}

static void *ctl_thread(void *arg)
{
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(ctl.epfd, evs, ARRAY_SIZE(evs), -1);

		if (n < 0 && errno != EINTR) {
			log_err("ctl: epoll_wait: %s; control socket stops", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			uint64_t v;

			if (p == &tag_listen) {
				on_accept();
			} else if (p == &tag_timer) {
				if (read(ctl.tfd, &v, sizeof(v)) > 0)
					sweep_idle();
				pthread_mutex_lock(&ctl.lock);
				reap_closers_locked(false);
				pthread_mutex_unlock(&ctl.lock);
				if (ctl.accept_paused && epoll_add(ctl.lfd, &tag_listen) == 0)
					ctl.accept_paused = false;
			} else if (p == &tag_wake) {
				return arg;
			} else {
				on_conn(p);
			}
		}
	}
	return arg;
}

/* ---- set-up ---- */

/*
 * The device of our FUSE mount, from /proc/self/mountinfo: stat(2) of the mountpoint
 * would be a FUSE request to ourselves before the session loop runs.
 */
static int mount_dev(const char *mnt, dev_t *dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char mp[PATH_MAX], *dash, fstype[64];

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) != 3)
			continue;
		dash = strstr(line, " - ");
		if (!dash || sscanf(dash, " - %63s", fstype) != 1 || strncmp(fstype, "fuse", 4))
			continue;
		rdmafs_proto_unescape(mp);
		if (strcmp(mp, mnt))
			continue;
		*dev = makedev(maj, min);	/* the last one is the mount on top */
		found = 0;
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * RDMAFS_RUNDIR as we need it: a directory of ours that no one else can write (clients
 * send their files to whatever listens in it). Created 0755 if missing; never trusted as
 * found (a symlink, another owner, group or world write is refused).
 */
static int rundir_check(void)
{
	struct stat sb;
	int r;

	if (mkdir(RDMAFS_RUNDIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(RDMAFS_RUNDIR, &sb) < 0)
		return -errno;
	r = rdmafs_proto_rundir_trusted(&sb, geteuid());
	if (r)
		log_err("ctl: %s (mode %04o, uid %u) is not a directory of uid %u that only it "
			"can write: no control socket", RDMAFS_RUNDIR, (unsigned)(sb.st_mode & 07777),
			(unsigned)sb.st_uid, (unsigned)geteuid());
	return r;
}

/*
 * A socket already at our path: one whose daemon died is removed; a live one (it accepts
 * a connection) is never taken over. 0 if the name is free now, or -errno.
 */
static int sock_path_free(const char *path, const struct sockaddr_un *sa)
{
	struct stat sb;
	int fd, r;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? errno : 0;
	close(fd);
	if (r != ECONNREFUSED && r != ENOENT)
		return -EADDRINUSE;	/* accepted, or a full backlog: alive */
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, r;

	r = rdmafs_proto_sock_path(RDMAFS_RUNDIR, ctl.mountpoint, major(ctl.mnt_dev),
				   minor(ctl.mnt_dev), ctl.sock_path, sizeof(ctl.sock_path));
	if (r)
		return r;
	r = rundir_check();
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, ctl.sock_path, strlen(ctl.sock_path) + 1);
	r = sock_path_free(ctl.sock_path, &sa);
	if (r) {
		close(fd);
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(ctl.sock_path, 0666) < 0 ||	/* peers are checked per request */
	    listen(fd, 64) < 0 || stat(ctl.sock_path, &sb) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	ctl.sock_ino = sb.st_ino;
	ctl.lfd = fd;
	return 0;
}

static int epoll_add(int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ctl.epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int ctl_init(const char *mountpoint, const char *source)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	int r;

	if (mountpoint[0] != '/' || strlen(mountpoint) >= sizeof(ctl.mountpoint))
		return -EINVAL;
	snprintf(ctl.mountpoint, sizeof(ctl.mountpoint), "%s", mountpoint);
	ctl.mnt_len = strlen(ctl.mountpoint);
	while (ctl.mnt_len > 1 && ctl.mountpoint[ctl.mnt_len - 1] == '/')
		ctl.mountpoint[--ctl.mnt_len] = 0;
	ctl.owner = getuid();
	r = mount_dev(ctl.mountpoint, &ctl.mnt_dev);
	if (r) {
		log_err("ctl: %s not found in /proc/self/mountinfo", ctl.mountpoint);
		return r;
	}
	r = listen_socket();
	if (r) {
		log_err("ctl: socket %s: %s", ctl.sock_path, strerror(-r));
		return r;
	}
	ctl.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ctl.epfd = epoll_create1(EPOLL_CLOEXEC);
	ctl.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ctl.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ctl.epfd < 0 || ctl.tfd < 0 || ctl.efd < 0 ||
	    timerfd_settime(ctl.tfd, 0, &its, NULL) < 0) {
		r = -errno;
		goto err;
	}
	r = epoll_add(ctl.lfd, &tag_listen);
	if (!r)
		r = epoll_add(ctl.tfd, &tag_timer);
	if (!r)
		r = epoll_add(ctl.efd, &tag_wake);
	if (r)
		goto err;
	for (; ctl.nworkers < CTL_WORKERS; ctl.nworkers++) {
		r = -pthread_create(&ctl.workers[ctl.nworkers], NULL, worker, NULL);
		if (r)
			goto err;
	}
	r = -pthread_create(&ctl.thread, NULL, ctl_thread, NULL);
	if (r)
		goto err;
	ctl.thread_started = true;
	log_info("ctl: control socket %s", ctl.sock_path);
	return 0;
err:
	log_err("ctl: start-up: %s", strerror(-r));
	ctl_exit();
	return r;
}

void ctl_stop(void)
{
	uint64_t one = 1;

	if (ctl.thread_started) {
		if (write(ctl.efd, &one, sizeof(one)) < 0)
			log_warn("ctl: wake: %s", strerror(errno));
		pthread_join(ctl.thread, NULL);
		ctl.thread_started = false;
	}
	pthread_mutex_lock(&ctl.lock);
	ctl.stop = true;
	pthread_cond_broadcast(&ctl.cond);
	pthread_mutex_unlock(&ctl.lock);
	for (unsigned i = 0; i < ctl.nworkers; i++)
		pthread_join(ctl.workers[i], NULL);
	ctl.nworkers = 0;
}

void ctl_exit(void)
{
	uint64_t deadline;
	struct stat sb;

	ctl_stop();
	/* Jobs nobody ran, then every connection (leases are released). */
	while (ctl.qhead) {
		struct job *j = ctl.qhead;

		ctl.qhead = j->next;
		close_client_fds(j->fds, j->nfds, j->c->cred.uid);
		conn_put(j->c);
		free(j);
	}
	ctl.qtail = NULL;
	ctl.qlen = 0;
	while (ctl.conns)
		conn_close(ctl.conns);
	if (ctl.lfd >= 0) {
		/* Only our own socket: a newer daemon may have taken the name. */
		if (stat(ctl.sock_path, &sb) == 0 && sb.st_ino == ctl.sock_ino)
			unlink(ctl.sock_path);
		close(ctl.lfd);
	}
	if (ctl.epfd >= 0)
		close(ctl.epfd);
	if (ctl.tfd >= 0)
		close(ctl.tfd);
	if (ctl.efd >= 0)
		close(ctl.efd);
	if (ctl.reserve_fd >= 0)
		close(ctl.reserve_fd);
	/* Closers just started finish in microseconds; a stuck one is left behind. */
	deadline = now_ns() + 1000000000ull;
	pthread_mutex_lock(&ctl.lock);
	for (reap_closers_locked(false); ctl.closers && now_ns() < deadline;
	     reap_closers_locked(false)) {
		pthread_mutex_unlock(&ctl.lock);
		usleep(10000);
		pthread_mutex_lock(&ctl.lock);
	}
	reap_closers_locked(true);
	pthread_mutex_unlock(&ctl.lock);
	ctl.lfd = ctl.epfd = ctl.tfd = ctl.efd = ctl.reserve_fd = -1;
}
