// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl.c - owns the control socket of a mount (its name: ctl_socket.c), its epoll thread
 * and its connections (limits, idle sweep, the lease a connection is).
 *
 * One epoll thread accepts, reads and decodes (lib/proto.c, pure); it never blocks. Valid
 * requests go to the worker pool (ctl_worker.c), whose handlers (ctl_flush.c, ctl_stat.c,
 * ctl_lease.c) check the peer and its file (ctl_auth.c). A connection is EPOLLONESHOT: one
 * request at a time, re-armed when its reply is out. FUSE threads are never involved.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ctl_auth.h"
#include "ctl_closer.h"
#include "ctl_conn.h"
#include "ctl_socket.h"
#include "ctl_worker.h"
#include "rdmafs/proto.h"

#define CTL_MAX_CLIENTS 1024
#define CTL_ADMIN_RESERVE 64		/* of CTL_MAX_CLIENTS: only root and the mount's owner */
#define CTL_CONNS_PER_UID 128		/* other users, each */
#define CTL_LEASES_PER_UID 64		/* other users, each */
#define CTL_REFUSE_LOG_NS 10000000000ull	/* one "refused" line per uid this often */
#define CTL_CLOSERS_PER_UID 8		/* closes of a uid's files stuck: no more requests */
#define CTL_IDLE_TIMEOUT_S 60		/* a connection without a lease and silent this long */
#define CTL_SEND_TIMEOUT_MS 5000	/* a client that does not take its reply is dropped */

struct ctl_conn {
	int fd;				/* the accepted socket; owned */
	struct ucred cred;		/* SO_PEERCRED at accept */
	/* ctl.lock protects the fields below. */
	unsigned refs;			/* list + epoll + a running job + a lease */
	bool busy;			/* a request is queued or running: epoll disarmed */
	bool closed;			/* off the list; fd closes with the last ref */
	uint64_t last_active;		/* monotonic ns */
	bool leasing;			/* a lease is held or being granted (a reference) */
	struct lease *lease;		/* the lease this connection is, or NULL */
	pthread_mutex_t send_lock;	/* one message at a time on fd (replies, notices) */
	struct ctl_conn *next, *prev;
};

/* Tags of the epoll entries that are not connections. */
static char tag_listen, tag_timer, tag_wake;

static struct {
	/* lock protects the connection list, the conn fields above and the refusal log. */
	pthread_mutex_t lock;
	struct ctl_conn *conns;
	unsigned nconns;
	int lfd, epfd, tfd, efd;
	bool thread_started;
	pthread_t thread;
	char mountpoint[PATH_MAX];
	dev_t mnt_dev;
	int reserve_fd;			/* /dev/null, given up to drain accept() at EMFILE */
	bool accept_paused;		/* listener out of epoll until the next timer tick */
	bool emfile_logged;		/* an EMFILE episode is on (logged at its start) */
	uint64_t emfile_last_ns;	/* last EMFILE of the episode */
	uint64_t emfile_refused;	/* connections dropped during the episode */
	uid_t refused_uid;		/* last uid refused, and when (log rate) */
	uint64_t refused_ns;
} ctl = { .lock = PTHREAD_MUTEX_INITIALIZER,
	  .lfd = -1, .epfd = -1, .tfd = -1, .efd = -1, .reserve_fd = -1 };

/* ---- connections ---- */

const struct ucred *ctl_conn_cred(const struct ctl_conn *c)
{
	return &c->cred;
}

void ctl_conn_put(struct ctl_conn *c)
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
static void conn_close(struct ctl_conn *c)
{
	struct lease *l;
	bool leasing;

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
	leasing = c->leasing;
	c->lease = NULL;
	c->leasing = false;
	pthread_mutex_unlock(&ctl.lock);
	if (l) {
		log_debug("ctl: lease of pid %d released", (int)c->cred.pid);
		lease_release(l);	/* no notify() after this: its reference may go */
	}
	if (leasing)
		ctl_conn_put(c);	/* the lease's reference */
	ctl_conn_put(c);	/* the list's reference */
}

/* Re-arm @c for its next request; ctl.lock held. */
static void conn_arm(struct ctl_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };

	if (!c->closed)
		epoll_ctl(ctl.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* CTL_SEND_TIMEOUT_MS is the wait for room unless @best_effort. */
int ctl_conn_send(struct ctl_conn *c, const void *buf, size_t len, int sendfd, bool best_effort)
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

int ctl_conn_send_error(struct ctl_conn *c, uint16_t op, uint32_t seq, int err)
{
	struct rdmafs_reply rep;
	size_t len = rdmafs_proto_encode_reply(&rep, op, seq, err, 0, 0);

	return ctl_conn_send(c, &rep, len, -1, false);
}

void ctl_conn_job_done(struct ctl_conn *c, bool failed)
{
	pthread_mutex_lock(&ctl.lock);
	c->busy = false;
	c->last_active = now_ns();
	conn_arm(c);
	pthread_mutex_unlock(&ctl.lock);
	if (failed)
		conn_close(c);
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

void ctl_log_refusal(uid_t uid, const char *what)
{
	pthread_mutex_lock(&ctl.lock);
	log_refusal_locked(uid, what);
	pthread_mutex_unlock(&ctl.lock);
}

/* Leases held or being granted by @uid's connections; ctl.lock held. */
static unsigned uid_leases_locked(uid_t uid)
{
	unsigned n = 0;

	for (struct ctl_conn *k = ctl.conns; k; k = k->next)
		n += k->cred.uid == uid && k->leasing;
	return n;
}

int ctl_conn_lease_begin(struct ctl_conn *c)
{
	int r = 0;

	pthread_mutex_lock(&ctl.lock);
	if (c->leasing) {
		r = -EBUSY;	/* one lease per connection */
	} else if (!ctl_peer_is_admin(&c->cred) &&
		   uid_leases_locked(c->cred.uid) >= CTL_LEASES_PER_UID) {
		log_refusal_locked(c->cred.uid, "too many leases");
		r = -ENOLCK;
	} else {
		c->leasing = true;
		c->refs++;	/* the lease's: its notify() argument */
	}
	pthread_mutex_unlock(&ctl.lock);
	return r;
}

void ctl_conn_lease_end(struct ctl_conn *c, struct lease *l)
{
	pthread_mutex_lock(&ctl.lock);
	c->lease = l;
	if (!l)
		c->leasing = false;
	pthread_mutex_unlock(&ctl.lock);
	if (!l)
		ctl_conn_put(c);
}

/* ---- the epoll thread ---- */

static int epoll_add(int fd, void *tag);

/*
 * May a connection of @cred be added? Room is kept for root and the mount's owner, and no
 * other user takes more than CTL_CONNS_PER_UID. ctl.lock held.
 */
static bool conn_admit_locked(const struct ucred *cred)
{
	bool admin = ctl_peer_is_admin(cred);
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
	for (struct ctl_conn *k = ctl.conns; k; k = k->next)
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
		struct ctl_conn *c;
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
static void on_conn(struct ctl_conn *c)
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
	struct ctl_job *j;
	bool full, stuck;
	ssize_t n;

	/*
	 * Files of this uid are still closing: read nothing more from it. Closing the
	 * connection drops what it queued without FLUSH (the kernel releases in-flight
	 * descriptors, it does not close them in our name).
	 */
	stuck = ctl_closers_stuck(c->cred.uid) >= CTL_CLOSERS_PER_UID;
	if (stuck) {
		ctl_log_refusal(c->cred.uid, "its descriptors are still closing");
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
				ctl_close_client_fds(&fd, 1, c->cred.uid);
		}
	}
	r = rdmafs_proto_decode_req(buf, n, nfds, !!(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)),
				    &req);
	pthread_mutex_lock(&ctl.lock);
	c->last_active = now_ns();
	if (!r && c->lease)
		r = -EBUSY;	/* a lease connection only waits for its break or close */
	pthread_mutex_unlock(&ctl.lock);
	full = ctl_workers_full();
	if (r)
		log_debug("ctl: pid %d: bad request (op %u): %s", (int)c->cred.pid, req.op,
			  strerror(-r));
	j = full ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		/* No job to hand the fds to: answer here; only a flood gets this far. */
		ctl_close_client_fds(fds, nfds, c->cred.uid);
		if (ctl_conn_send_error(c, req.op, req.seq, r ? r : full ? -EAGAIN : -ENOMEM)) {
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
	c->refs++;	/* the job's */
	c->busy = true;
	pthread_mutex_unlock(&ctl.lock);
	ctl_workers_queue(j);
}

/* Drop connections silent for CTL_IDLE_TIMEOUT_S that hold no lease and wait for nothing. */
static void sweep_idle(void)
{
	uint64_t now = now_ns(), limit;
	struct ctl_conn *victims[32];
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
	for (struct ctl_conn *c = ctl.conns; c && n < ARRAY_SIZE(victims); c = c->next) {
		if (!c->busy && !c->lease && c->last_active < limit) {
			c->refs++;
			victims[n++] = c;
		}
	}
	pthread_mutex_unlock(&ctl.lock);
	for (unsigned i = 0; i < n; i++) {
		log_debug("ctl: client pid %d idle, closing", (int)victims[i]->cred.pid);
		conn_close(victims[i]);
		ctl_conn_put(victims[i]);
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
				ctl_closers_reap();
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
	for (size_t n = strlen(ctl.mountpoint); n > 1 && ctl.mountpoint[n - 1] == '/';)
		ctl.mountpoint[--n] = 0;
	r = mount_dev(ctl.mountpoint, &ctl.mnt_dev);
	if (r) {
		log_err("ctl: %s not found in /proc/self/mountinfo", ctl.mountpoint);
		return r;
	}
	ctl_auth_init(ctl.mountpoint, ctl.mnt_dev);
	r = ctl_socket_listen(ctl.mountpoint, ctl.mnt_dev);
	if (r < 0) {
		log_err("ctl: socket %s: %s", ctl_socket_path(), strerror(-r));
		return r;
	}
	ctl.lfd = r;
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
	r = ctl_workers_start();
	if (r)
		goto err;
	r = -pthread_create(&ctl.thread, NULL, ctl_thread, NULL);
	if (r)
		goto err;
	ctl.thread_started = true;
	log_info("ctl: control socket %s", ctl_socket_path());
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
	ctl_workers_stop();
}

void ctl_exit(void)
{
	ctl_stop();
	/* Jobs nobody ran, then every connection (leases are released). */
	ctl_workers_exit();
	while (ctl.conns)
		conn_close(ctl.conns);
	if (ctl.lfd >= 0) {
		ctl_socket_remove();
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
	ctl_closers_exit();
	ctl.lfd = ctl.epfd = ctl.tfd = ctl.efd = ctl.reserve_fd = -1;
}
