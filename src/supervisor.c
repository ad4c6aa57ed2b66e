// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * supervisor.c - owns the descriptors that must outlive a daemon generation (the store,
 * doc/restart.md) and the generations themselves: starts the daemon, keeps what it PUTs,
 * hands all of it to the next generation after a death or a handover, and does nothing
 * else, so that it does not die. Protocol: supervisor.h.
 *
 *   rdmafs-supervisor [--] COMMAND [ARG...]
 *
 * Single thread, one poll loop, no allocation in steady state but the store's array.
 * rdmafs runs supervisor_run() itself (main.c: the process `rdmafs SRC MNT` leaves
 * behind); the rdmafs-supervisor program (main() below) is the same loop for tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define SUP_CRASH_WINDOW_S 10	/* this many crashes within this many seconds: back off */
#define SUP_CRASH_BURST 3
#define SUP_BACKOFF_MAX_S 30
#define SUP_EXIT_CHECK_MS 100	/* how often a generation's exit in progress is looked for */
#define SUP_LINGER_MAX 16
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A message of the largest size, aligned for its header. */
union sup_buf {
	struct sup_msg m;
	char buf[SUP_MSG_MAX];
};

struct sup_entry {
	uint64_t tag;
	int fd;			/* owned */
};

static bool gen_ready;	/* the running generation sent SUP_READY */
static bool use_syslog;	/* detached: stderr is /dev/null */

/* The store: every descriptor a generation PUT and did not DROP. Unordered; @h indexes
 * it by tag (open addressing, linear probing: entry index + 1, 0 = empty; @hcap a power
 * of two, twice @cap): a PUT or DROP costs the same with 60,000 entries as with 6. */
static struct {
	struct sup_entry *v;
	size_t n, cap;
	uint32_t *h;
	size_t hcap;
} store;

static void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sup_log(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (use_syslog) {
		va_start(ap, fmt);
		vsyslog(LOG_NOTICE, fmt, ap);
		va_end(ap);
		errno = saved;
		return;
	}
	fputs("rdmafs-supervisor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static double mono_s(void)
{
	return mono_ns() / 1e9;
}

static size_t tag_hash(uint64_t tag)
{
	tag ^= tag >> 33;
	tag *= 0xff51afd7ed558ccdULL;
	tag ^= tag >> 33;
	return (size_t)tag;
}

/* The slot of store.h holding @tag, or the empty one where it would go. */
static size_t h_slot(uint64_t tag)
{
	size_t m = store.hcap - 1, i = tag_hash(tag) & m;

	while (store.h[i] && store.v[store.h[i] - 1].tag != tag)
		i = (i + 1) & m;
	return i;
}

/* Empty slot @i, moving back the entries after it that probed past it. */
static void h_remove(size_t i)
{
	size_t m = store.hcap - 1, j = i;

	store.h[i] = 0;
	for (;;) {
		size_t k;

		j = (j + 1) & m;
		if (!store.h[j])
			return;
		k = tag_hash(store.v[store.h[j] - 1].tag) & m;
		/* stays if its home k lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		store.h[i] = store.h[j];
		store.h[j] = 0;
		i = j;
	}
}

/* Index of @cap entries (store.v holds store.n of them). */
static int h_rebuild(size_t cap)
{
	size_t hcap = 64;
	uint32_t *h;

	while (hcap < 2 * cap)
		hcap *= 2;
	h = calloc(hcap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	free(store.h);
	store.h = h;
	store.hcap = hcap;
	for (size_t i = 0; i < store.n; i++)
		store.h[h_slot(store.v[i].tag)] = i + 1;
	return 0;
}

static ssize_t store_find(uint64_t tag)
{
	uint32_t e = store.hcap ? store.h[h_slot(tag)] : 0;

	return e ? (ssize_t)e - 1 : -1;
}

/* Close and forget entry @at. */
static void store_remove(size_t at)
{
	close(store.v[at].fd);
	h_remove(h_slot(store.v[at].tag));
	if (at != --store.n) {
		store.v[at] = store.v[store.n];
		store.h[h_slot(store.v[at].tag)] = at + 1;
	}
}

static void store_close_all(void)
{
	for (size_t i = 0; i < store.n; i++)
		close(store.v[i].fd);
	store.n = 0;
	if (store.h)
		memset(store.h, 0, store.hcap * sizeof(*store.h));
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* PUT: all or nothing. Takes ownership of @fds on success. */
static int sup_put(const struct sup_msg *m, const int *fds, int nfds)
{
	size_t added = 0;

	if (m->count == 0 || m->count != (uint32_t)nfds)
		return -EINVAL;
	for (uint32_t i = 0; i < m->count; i++) {
		for (uint32_t j = 0; j < i; j++)
			if (m->tags[j] == m->tags[i])
				return -EINVAL;	/* one tag twice: which fd would win? */
		if (store_find(m->tags[i]) < 0)
			added++;
	}
	if (store.n + added > SUP_MAX_ENTRIES)
		return -ENOSPC;
	if (store.n + added > store.cap) {
		size_t cap = store.cap ? store.cap : 64;
		struct sup_entry *v;

		while (cap < store.n + added)
			cap *= 2;
		v = realloc(store.v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		store.v = v;
		if (h_rebuild(cap))
			return -ENOMEM;	/* (the larger array stays, unused until then) */
		store.cap = cap;
	}
	for (uint32_t i = 0; i < m->count; i++) {
		ssize_t at = store_find(m->tags[i]);

		if (at >= 0) {
			close(store.v[at].fd);
			store.v[at].fd = fds[i];
		} else {
			store.v[store.n].tag = m->tags[i];
			store.v[store.n].fd = fds[i];
			store.h[h_slot(m->tags[i])] = ++store.n;
		}
	}
	return 0;
}

/* DROP: every tag must be known, else nothing is closed. */
static int sup_drop(const struct sup_msg *m, int nfds)
{
	int r = 0;

	if (m->count == 0 || nfds)
		return -EINVAL;
	/* Each tag held is dropped; -ENOENT says one was not (a batch of the daemon's
	 * drops may name a lock it no longer held). */
	for (uint32_t i = 0; i < m->count; i++) {
		ssize_t at = store_find(m->tags[i]);

		if (at < 0) {	/* not held, or the same tag twice in one DROP */
			r = -ENOENT;
			continue;
		}
		store_remove(at);
	}
	return r;
}

static int sup_send(int sock, struct sup_msg *m, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SUP_MAX_FDS)];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) + m->count * sizeof(uint64_t) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m->magic = SUP_MAGIC;
	m->version = SUP_VERSION;
	m->reserved = 0;
	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void sup_list(int sock, const struct sup_msg *req, int nfds, union sup_buf *out)
{
	int fds[SUP_MAX_FDS];
	size_t first = req->arg, n = 0;

	out->m = (struct sup_msg){ .op = SUP_LIST };
	if (req->count || nfds) {
		out->m.status = -EINVAL;
	} else {
		for (; first + n < store.n && n < SUP_MAX_FDS; n++) {
			out->m.tags[n] = store.v[first + n].tag;
			fds[n] = store.v[first + n].fd;
		}
		out->m.count = n;
		out->m.arg = first + n < store.n ? (uint32_t)(first + n) : 0;
	}
	if (sup_send(sock, &out->m, fds, (int)n))
		sup_log("list reply: %s", strerror(errno));
}

/*
 * One request from the daemon. Returns 0, or -errno when the socket is done (EOF, the
 * peer gone, or nothing queued with @nonblock).
 */
static int sup_serve_one(int sock, bool nonblock)
{
	union sup_buf in, out;
	char cbuf[CMSG_SPACE(sizeof(int) * (SUP_MAX_FDS + 3))];
	struct iovec iov = { .iov_base = in.buf, .iov_len = sizeof(in.buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	int fds[SUP_MAX_FDS + 3], nfds = 0, r;
	struct cmsghdr *c;
	ssize_t len;

	len = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | (nonblock ? MSG_DONTWAIT : 0));
	if (len < 0)
		return errno == EINTR ? 0 : -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (k > (int)ARRAY_LEN(fds) - nfds)
				k = ARRAY_LEN(fds) - nfds;	/* (cbuf holds fewer) */
			memcpy(fds + nfds, CMSG_DATA(c), sizeof(int) * k);
			nfds += k;
		}
	}
	if (len == 0 && !nfds)
		return -EPIPE;	/* the generation closed its end */

	r = 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		r = -EMSGSIZE;
	else if ((size_t)len < sizeof(struct sup_msg) || in.m.magic != SUP_MAGIC ||
		 in.m.reserved || in.m.status)
		r = -EPROTO;
	else if (in.m.version != SUP_VERSION)
		r = -EPROTONOSUPPORT;
	else if (in.m.count > SUP_MAX_FDS ||
		 (size_t)len != sizeof(struct sup_msg) + in.m.count * sizeof(uint64_t))
		r = -EBADMSG;
	if (!r && in.m.op == SUP_LIST) {
		sup_list(sock, &in.m, nfds, &out);
		close_fds(fds, nfds);
		return 0;
	}
	if (!r) {
		switch (in.m.op) {
		case SUP_PUT:
			r = sup_put(&in.m, fds, nfds);
			if (!r)
				nfds = 0;	/* the store owns them now */
			break;
		case SUP_DROP:
			r = sup_drop(&in.m, nfds);
			break;
		case SUP_READY:
			r = in.m.count || nfds ? -EINVAL : 0;
			if (!r)
				gen_ready = true;
			break;
		default:
			r = -EOPNOTSUPP;
		}
	}
	close_fds(fds, nfds);
	out.m = (struct sup_msg){ .op = (size_t)len >= sizeof(struct sup_msg) ? in.m.op : 0,
				  .status = r };
	if (r && r != -ENOENT)
		sup_log("request op=%u refused: %s", out.m.op, strerror(-r));
	sup_send(sock, &out.m, NULL, 0);
	return 0;
}

/*
 * Start generation @gen of @argv with its end of a new socketpair; its pid, -1 on error.
 * @died: when the previous generation's exit was seen (ns), @backoff_ms waited since,
 * @prev: how it ended (SUP_ENV_PREV).
 */
static pid_t sup_spawn(const char *path, char **argv, unsigned int gen, uint64_t died,
		       unsigned int backoff_ms, int prev, int *sock, int *pidfd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid == 0) {
		char v[32];
		sigset_t none;
		int oom;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* The supervisor's -1000 (sup_harden()) is not the daemon's to keep. */
		oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (oom >= 0) {
			if (write(oom, "0", 1) != 1)
				_exit(127);
			close(oom);
		}
		if (fcntl(sv[1], F_SETFD, 0))	/* the one descriptor it inherits */
			_exit(127);
		snprintf(v, sizeof(v), "%d", sv[1]);
		setenv(SUP_ENV_FD, v, 1);
		snprintf(v, sizeof(v), "%u", gen);
		setenv(SUP_ENV_GEN, v, 1);
		if (gen) {
			snprintf(v, sizeof(v), "%" PRIu64, died);
			setenv(SUP_ENV_DIED, v, 1);
			snprintf(v, sizeof(v), "%u", backoff_ms);
			setenv(SUP_ENV_BACKOFF, v, 1);
			snprintf(v, sizeof(v), "%d", prev);
			setenv(SUP_ENV_PREV, v, 1);
		}
		if (path)
			execv(path, argv);
		else
			execvp(argv[0], argv);
		sup_log("exec %s: %s", path ? path : argv[0], strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	*pidfd = pidfd_open(pid, 0);
	if (*pidfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		return -1;
	}
	*sock = sv[0];
	return pid;
}

/*
 * Generations whose exit the next one must finish: a dying daemon closes its files, and
 * closing a file of its own mount (a descriptor a client sent it, rdmafsctl stat FILE)
 * sends FUSE_FLUSH, which waits uninterruptibly for an answer only the next generation
 * can give. So the next one starts once the main thread is a zombie (the group exits:
 * no thread runs user code again, none can answer a request), and these are reaped later.
 */
static pid_t linger[SUP_LINGER_MAX];

static void sup_reap_lingering(void)
{
	for (int i = 0; i < SUP_LINGER_MAX; i++)
		if (linger[i] > 0 && waitpid(linger[i], NULL, WNOHANG) == linger[i])
			linger[i] = 0;
}

/*
 * Whether generation @pid's thread group is exiting: its main thread is a zombie
 * (/proc/PID/stat state Z) while another thread still is in the kernel; then *@status is
 * the wait status the group will report (field 52, exit_code).
 */
static bool sup_exiting(pid_t pid, int *status)
{
	char path[64], buf[1024], *p;
	int fd, field;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* after the command name, which may hold anything */
	if (!p || p[1] != ' ' || p[2] != 'Z')
		return false;
	for (field = 3, p += 2; *p && field < 52; p++)	/* p[0] is field 3, the state */
		if (*p == ' ')
			field++;
	if (field != 52)
		return false;
	*status = atoi(p);
	return true;
}

static void sup_linger(pid_t pid)
{
	for (int i = 0; i < SUP_LINGER_MAX; i++) {
		if (linger[i] <= 0) {
			linger[i] = pid;
			return;
		}
	}
	waitpid(pid, NULL, 0);	/* never with sane generations: wait for this one */
}

/* Best effort: what keeps the supervisor alive under memory pressure (root only). */
static void sup_harden(void)
{
	struct rlimit rl;
	int fd;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (geteuid() != 0)
		return;
	/* ONFAULT: lock what is touched, populate nothing (sanitizers reserve a lot). */
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		sup_log("mlockall: %s", strerror(errno));
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "-1000", 5) != 5)
		sup_log("oom_score_adj -1000: %s (the OOM killer may choose the supervisor)",
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * A generation died on its own: log it; the seconds to wait before the next start. Only
 * deaths before SUP_READY count: a daemon killed while serving comes back at once.
 */
static double sup_after_crash(unsigned int gen, int status, double lived, bool ready)
{
	static double crashes[SUP_CRASH_BURST];	/* times of the last such deaths, oldest first */
	static unsigned int streak;
	double now = mono_s(), wait_s = 0;

	if (WIFSIGNALED(status))
		sup_log("generation %u killed by %s after %.1f s%s; %zu descriptors kept", gen,
			strsignal(WTERMSIG(status)), lived, ready ? "" : " (not ready)", store.n);
	else
		sup_log("generation %u exited %d after %.1f s%s; %zu descriptors kept", gen,
			WEXITSTATUS(status), lived, ready ? "" : " (not ready)", store.n);
	if (ready) {
		streak = 0;
		return 0;
	}
	memmove(crashes, crashes + 1, sizeof(crashes) - sizeof(crashes[0]));
	crashes[SUP_CRASH_BURST - 1] = now;
	if (crashes[0] && now - crashes[0] < SUP_CRASH_WINDOW_S) {
		wait_s = 1u << (streak < 5 ? streak : 5);
		if (wait_s > SUP_BACKOFF_MAX_S)
			wait_s = SUP_BACKOFF_MAX_S;
		streak++;
	} else {
		streak = 0;
	}
	return wait_s;
}

/* The first SUP_READY: tell whoever waits for the mount (@notify_fd), then let go of the
 * terminal if asked to (as fuse_daemonize() does after a mount). */
static void sup_notify_ready(int *notify_fd, bool detach)
{
	int fd;

	if (*notify_fd < 0)
		return;
	if (write(*notify_fd, "", 1) != 1)
		sup_log("ready notice: %s", strerror(errno));
	close(*notify_fd);
	*notify_fd = -1;
	if (!detach)
		return;
	openlog("rdmafs-supervisor", LOG_PID, LOG_DAEMON);
	use_syslog = true;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

/*
 * Restart on purpose (SIGUSR2, `rdmafsctl restart`): the next generation runs the binary
 * now at the path this one was started from (a package upgrade replaced it). The running
 * generation is killed (SIGKILL: the crash path, which the tests kill 20 times; nothing
 * is drained) and the next one starts from an fd of the new binary opened at the request.
 * If that generation dies before SUP_READY, the one after it runs the previous binary
 * again (@cur: an fd of it, kept). Only when @path is this process's own binary.
 */
static struct {
	char disk[4096];	/* where the binary was at start-up ("" = no restart) */
	int cur;		/* fd of the binary generations run now */
	int next;		/* fd of the binary being tried, or -1 */
	bool trial;		/* the running generation runs @next */
	char exec[64];		/* what sup_spawn() execs: /proc/self/fd/N */
} up = { .cur = -1, .next = -1 };

static void up_init(const char *path)
{
	ssize_t n;

	if (!path || strcmp(path, "/proc/self/exe"))
		return;
	n = readlink("/proc/self/exe", up.disk, sizeof(up.disk) - 1);
	up.cur = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (n <= 0 || up.cur < 0) {
		up.disk[0] = 0;
		return;
	}
	up.disk[n] = 0;
}

/* SIGUSR2: open the binary at up.disk for the next generation and stop this one. */
static void up_request(int pidfd, unsigned int gen)
{
	int fd;

	if (!up.disk[0] || up.cur < 0) {
		sup_log("restart asked: not possible here (the binary is not known)");
		return;
	}
	if (up.next >= 0) {
		sup_log("restart asked: one is under way");
		return;
	}
	fd = open(up.disk, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sup_log("restart asked: %s: %s; generation %u keeps serving", up.disk,
			strerror(errno), gen);
		return;
	}
	up.next = fd;
	sup_log("restart asked: generation %u stops, the next runs %s", gen, up.disk);
	pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
}

/* What generation @gen is to run: the new binary right after a restart request. */
static const char *up_exec(const char *path)
{
	int fd = up.next >= 0 ? up.next : up.cur;

	up.trial = up.next >= 0;
	if (fd < 0)
		return path;
	snprintf(up.exec, sizeof(up.exec), "/proc/self/fd/%d", fd);
	return up.exec;
}

/* The generation on trial serves: its binary is the one to run from now on. */
static void up_ready(unsigned int gen)
{
	if (!up.trial)
		return;
	sup_log("generation %u serves from %s", gen, up.disk);
	close(up.cur);
	up.cur = up.next;
	up.next = -1;
	up.trial = false;
}

/* The generation on trial died before it served: back to the binary before it. */
static void up_failed(unsigned int gen)
{
	if (!up.trial)
		return;
	sup_log("generation %u (%s) did not start: the next runs the previous binary", gen,
		up.disk);
	close(up.next);
	up.next = -1;
	up.trial = false;
}

int supervisor_run(const char *path, char *argv[], int notify_fd, bool detach)
{
	unsigned int gen = 0, backoff_ms = 0;
	uint64_t died = 0;
	int sigfd, sock = -1, pidfd = -1, stop_sig = 0, prev = -1;
	sigset_t mask;
	pid_t pid;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigfd < 0) {
		sup_log("signalfd: %s", strerror(errno));
		return 1;
	}
	sup_harden();
	up_init(path);

	for (;;) {
		double started = mono_s();
		int status;

		gen_ready = false;
		pid = sup_spawn(up_exec(path), argv, gen, died, backoff_ms, prev, &sock, &pidfd);
		if (pid < 0) {
			sup_log("cannot start generation %u of %s: %s", gen, path ? path : argv[0],
				strerror(errno));
			break;
		}
		bool exiting = false;

		for (bool exited = false; !exited;) {
			struct pollfd p[3] = { { .fd = sigfd, .events = POLLIN },
					       { .fd = pidfd, .events = POLLIN },
					       { .fd = sock, .events = POLLIN } };

			int n = poll(p, sock >= 0 ? 3 : 2, SUP_EXIT_CHECK_MS);

			if (n < 0 && errno != EINTR)
				break;
			sup_reap_lingering();
			if (p[0].revents & POLLIN) {
				struct signalfd_siginfo si;

				if (read(sigfd, &si, sizeof(si)) != sizeof(si) ||
				    si.ssi_signo == SIGPIPE) {
					;
				} else if (si.ssi_signo == SIGUSR2) {
					if (!stop_sig)
						up_request(pidfd, gen);
				} else {
					/* A stop asked of us is the daemon's to do (it commits). */
					stop_sig = si.ssi_signo;
					pidfd_send_signal(pidfd, stop_sig, NULL, 0);
				}
			}
			if (sock >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
				int r, k = 0;

				/* Everything queued (pipelined puts and drops), one poll for
				 * all, a bounded batch so that signals are not kept waiting. */
				do
					r = sup_serve_one(sock, true);
				while (r == 0 && ++k < 256);
				if (r < 0 && r != -EAGAIN) {
					/* closed by the generation: wait for its exit */
					close(sock);
					sock = -1;
				}
				if (gen_ready) {
					sup_notify_ready(&notify_fd, detach);
					up_ready(gen);
				}
			}
			if (p[1].revents & POLLIN)
				exited = true;
			else if (n == 0 && sup_exiting(pid, &status))	/* quiet: dying? */
				exited = exiting = true;
		}
		/* What it sent before dying still counts (a PUT just before a crash). */
		while (sock >= 0 && sup_serve_one(sock, true) == 0)
			;
		if (sock >= 0)
			close(sock);
		sock = -1;
		died = mono_ns();
		backoff_ms = 0;
		if (exiting) {
			sup_log("generation %u exits, a thread still in the kernel: the next one "
				"starts now", gen);
			sup_linger(pid);
		} else if (waitpid(pid, &status, 0) != pid) {
			sup_log("wait for generation %u: %s", gen, strerror(errno));
			break;
		}
		close(pidfd);
		prev = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_DONE) {
			store_close_all();
			return 0;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_DONE_ERR) {
			sup_log("generation %u ended the mount with an error", gen);
			store_close_all();
			return 1;
		}
		if (gen == 0 && !gen_ready && WIFEXITED(status)) {
			/* did not start (bad options, the mount failed): nothing to keep */
			store_close_all();
			return WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
		}
		if (stop_sig) {
			sup_log("generation %u stopped (%s) after %s: not restarting", gen,
				WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit status",
				strsignal(stop_sig));
			store_close_all();
			if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_DONE_ERR)
				return 1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_INCOMPAT)
			sup_log("generation %u cannot serve this mount (incompatible: its INIT "
				"reply or a state layout differs from the recorded one)", gen);
		if (!gen_ready)
			up_failed(gen);
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_HANDOVER) {
			sup_log("generation %u handed over; starting generation %u", gen, gen + 1);
		} else {
			double wait_s = sup_after_crash(gen, status, mono_s() - started,
							gen_ready);

			if (wait_s) {
				struct pollfd p = { .fd = sigfd, .events = POLLIN };

				sup_log("%d start-up deaths within %d s: next start in %.0f s",
					SUP_CRASH_BURST, SUP_CRASH_WINDOW_S, wait_s);
				if (poll(&p, 1, (int)(wait_s * 1000)) == 1) {
					sup_log("stopped while backing off");
					store_close_all();
					return 1;
				}
				backoff_ms = (unsigned int)(wait_s * 1000);
			}
		}
		gen++;
	}
	store_close_all();
	return 1;
}

#ifndef RDMAFS_SUPERVISOR_NO_MAIN
int main(int argc, char *argv[])
{
	if (argc > 1 && !strcmp(argv[1], "--")) {
		argv++;
		argc--;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: rdmafs-supervisor [--] COMMAND [ARG...]\n");
		return 2;
	}
	return supervisor_run(NULL, argv + 1, -1, false);
}
#endif
