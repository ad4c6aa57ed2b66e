// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_conn.c - owns the control socket's connections: the list and its limits (per uid,
 * room for root and the mount's owner), references, sending, epoll arming, the idle
 * sweep, the refusal log, and the lease a connection is (its handle: lease.c keeps the
 * rest).
 */
#include "rdmafsd.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "ctl_auth.h"
#include "ctl_conn.h"
#include "rdmafs/proto.h"

#define CTL_MAX_CLIENTS 1024
#define CTL_ADMIN_RESERVE 64		/* of CTL_MAX_CLIENTS: only root and the mount's owner */
#define CTL_CONNS_PER_UID 128		/* other users, each */
#define CTL_LEASES_PER_UID 64		/* other users, each */
#define CTL_REFUSE_LOG_NS 10000000000ull	/* one "refused" line per uid this often */
#define CTL_IDLE_TIMEOUT_S 60		/* a connection without a lease and silent this long */
#define CTL_SEND_TIMEOUT_MS 5000	/* a client that does not take its reply is dropped */

struct ctl_conn {
	int fd;				/* the accepted socket; owned */
	struct ucred cred;		/* SO_PEERCRED at accept */
	/* conns.lock protects the fields below. */
	unsigned refs;			/* list + epoll + a running job + a lease */
	bool busy;			/* a request is queued or running: epoll disarmed */
	bool closed;			/* off the list; fd closes with the last ref */
	uint64_t last_active;		/* monotonic ns */
	bool leasing;			/* a lease is held or being granted (a reference) */
	struct lease *lease;		/* the lease this connection is, or NULL */
	pthread_mutex_t send_lock;	/* one message at a time on fd (replies, notices) */
	struct ctl_conn *next, *prev;
};

static struct {
	/* lock protects the list, the conn fields above and the refusal log. */
	pthread_mutex_t lock;
	struct ctl_conn *list;
	unsigned n;
	int epfd;			/* the epoll thread's, where connections are armed */
	uid_t refused_uid;		/* last uid refused, and when (log rate) */
	uint64_t refused_ns;
} conns = { .lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1 };

void ctl_conns_init(int epfd)
{
	conns.epfd = epfd;
}

int ctl_conn_fd(const struct ctl_conn *c)
{
	return c->fd;
}


const struct ucred *ctl_conn_cred(const struct ctl_conn *c)
{
	return &c->cred;
}

void ctl_conn_put(struct ctl_conn *c)
{
	bool last;

	pthread_mutex_lock(&conns.lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&conns.lock);
	if (!last)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->send_lock);
	free(c);
}

void ctl_conn_close(struct ctl_conn *c)
{
	struct lease *l;
	bool leasing;

	pthread_mutex_lock(&conns.lock);
	if (c->closed) {
		pthread_mutex_unlock(&conns.lock);
		return;
	}
	c->closed = true;
	DL_DELETE(conns.list, c);
	conns.n--;
	epoll_ctl(conns.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	l = c->lease;
	leasing = c->leasing;
	c->lease = NULL;
	c->leasing = false;
	pthread_mutex_unlock(&conns.lock);
	if (l) {
		log_debug("ctl: lease of pid %d released", (int)c->cred.pid);
		lease_release(l);	/* no notify() after this: its reference may go */
	}
	if (leasing)
		ctl_conn_put(c);	/* the lease's reference */
	ctl_conn_put(c);	/* the list's reference */
}

/* Re-arm @c for its next request; conns.lock held. */
static void arm_locked(struct ctl_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };

	if (!c->closed)
		epoll_ctl(conns.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

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
	pthread_mutex_lock(&conns.lock);
	c->busy = false;
	c->last_active = now_ns();
	arm_locked(c);
	pthread_mutex_unlock(&conns.lock);
	if (failed)
		ctl_conn_close(c);
}

/*
 * Log a refusal of @uid, at most once per CTL_REFUSE_LOG_NS for the same uid (a flood
 * must not flood the log); conns.lock held.
 */
static void log_refusal_locked(uid_t uid, const char *what)
{
	uint64_t now = now_ns();

	if (uid == conns.refused_uid && now - conns.refused_ns < CTL_REFUSE_LOG_NS)
		return;
	conns.refused_uid = uid;
	conns.refused_ns = now;
	log_notice("ctl: uid %u refused: %s", (unsigned)uid, what);
}

void ctl_log_refusal(uid_t uid, const char *what)
{
	pthread_mutex_lock(&conns.lock);
	log_refusal_locked(uid, what);
	pthread_mutex_unlock(&conns.lock);
}

/* Leases held or being granted by @uid's connections; conns.lock held. */
static unsigned uid_leases_locked(uid_t uid)
{
	struct ctl_conn *k;
	unsigned n = 0;

	DL_FOREACH(conns.list, k)
		n += k->cred.uid == uid && k->leasing;
	return n;
}

int ctl_conn_lease_begin(struct ctl_conn *c)
{
	int r = 0;

	pthread_mutex_lock(&conns.lock);
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
	pthread_mutex_unlock(&conns.lock);
	return r;
}

void ctl_conn_lease_replied(struct ctl_conn *c)
{
	pthread_mutex_lock(&conns.lock);	/* c->lease is released only after it goes */
	if (c->lease)
		lease_replied(c->lease);
	pthread_mutex_unlock(&conns.lock);
}

void ctl_conn_lease_end(struct ctl_conn *c, struct lease *l)
{
	pthread_mutex_lock(&conns.lock);
	c->lease = l;
	if (!l)
		c->leasing = false;
	pthread_mutex_unlock(&conns.lock);
	if (!l)
		ctl_conn_put(c);
}

/*
 * May a connection of @cred be added? Room is kept for root and the mount's owner, and no
 * other user takes more than CTL_CONNS_PER_UID. conns.lock held.
 */
static bool admit_locked(const struct ucred *cred)
{
	bool admin = ctl_peer_is_admin(cred);
	struct ctl_conn *k;
	unsigned mine = 0;

	if (conns.n >= CTL_MAX_CLIENTS) {
		log_refusal_locked(cred->uid, "control socket full");
		return false;
	}
	if (admin)
		return true;
	if (conns.n >= CTL_MAX_CLIENTS - CTL_ADMIN_RESERVE) {
		log_refusal_locked(cred->uid, "control socket full for users");
		return false;
	}
	DL_FOREACH(conns.list, k)
		mine += k->cred.uid == cred->uid;
	if (mine >= CTL_CONNS_PER_UID) {
		log_refusal_locked(cred->uid, "too many connections");
		return false;
	}
	return true;
}

void ctl_conns_sweep_idle(void)
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
	pthread_mutex_lock(&conns.lock);
	for (struct ctl_conn *c = conns.list; c && n < ARRAY_SIZE(victims); c = c->next) {
		if (!c->busy && !c->lease && c->last_active < limit) {
			c->refs++;
			victims[n++] = c;
		}
	}
	pthread_mutex_unlock(&conns.lock);
	for (unsigned i = 0; i < n; i++) {
		log_debug("ctl: client pid %d idle, closing", (int)victims[i]->cred.pid);
		ctl_conn_close(victims[i]);
		ctl_conn_put(victims[i]);
	}
}

/* ctl_conn_add(); @out: the connection with a reference for the caller (resumed: not
 * checked against the limits, it was admitted before). */
static int conn_add(int fd, struct ctl_conn **out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
	socklen_t sl = sizeof(struct ucred);
	struct ctl_conn *c = calloc(1, sizeof(*c));
	bool admit = true;
	int r;

	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &sl) < 0) {
		r = c ? -errno : -ENOMEM;
		free(c);
		close(fd);
		return r;
	}
	pthread_mutex_lock(&conns.lock);
	if (!out)
		admit = admit_locked(&c->cred);
	pthread_mutex_unlock(&conns.lock);
	if (!admit) {
		free(c);
		close(fd);
		return -EUSERS;
	}
	c->fd = fd;
	c->refs = out ? 2 : 1;	/* the list's (and the caller's) */
	if (out)
		*out = c;
	c->last_active = now_ns();
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_lock(&conns.lock);
	DL_PREPEND(conns.list, c);
	conns.n++;
	ev.data.ptr = c;
	epoll_ctl(conns.epfd, EPOLL_CTL_ADD, fd, &ev);
	pthread_mutex_unlock(&conns.lock);
	return 0;
}

int ctl_conn_add(int fd)
{
	return conn_add(fd, NULL);
}

struct ctl_conn *ctl_conn_adopt(int fd)
{
	struct ctl_conn *c = NULL;

	return conn_add(fd, &c) ? NULL : c;
}

void ctl_conn_arm(struct ctl_conn *c)
{
	pthread_mutex_lock(&conns.lock);
	arm_locked(c);
	pthread_mutex_unlock(&conns.lock);
}

int ctl_conn_request(struct ctl_conn *c, int err)
{
	pthread_mutex_lock(&conns.lock);
	c->last_active = now_ns();
	if (!err && c->lease)
		err = -EBUSY;	/* a lease connection only waits for its break or close */
	pthread_mutex_unlock(&conns.lock);
	return err;
}

void ctl_conn_queued(struct ctl_conn *c)
{
	pthread_mutex_lock(&conns.lock);
	c->refs++;
	c->busy = true;
	pthread_mutex_unlock(&conns.lock);
}

void ctl_conns_close_all(void)
{
	while (conns.list)
		ctl_conn_close(conns.list);
}
