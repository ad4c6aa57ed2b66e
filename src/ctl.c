// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl.c - owns the control socket of a mount (its name: ctl_socket.c) and its epoll thread:
 * accepting, reading and decoding requests, queueing them for the workers.
 *
 * One epoll thread accepts, reads and decodes (lib/proto.c, pure); it never blocks. Valid
 * requests go to the worker pool (ctl_worker.c), whose handlers (ctl_flush.c, ctl_stat.c,
 * ctl_lease.c) check the peer and its file (ctl_auth.c). A connection (ctl_conn.c) is
 * EPOLLONESHOT: one request at a time, re-armed when its reply is out. FUSE threads are
 * never involved.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libmount.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ctl_auth.h"
#include "ctl_closer.h"
#include "ctl_conn.h"
#include "ctl_lease.h"
#include "ctl_socket.h"
#include "ctl_worker.h"
#include "rdmafs/proto.h"

#define CTL_CLOSERS_PER_UID 8		/* closes of a uid's files stuck: no more requests */

/* Tags of the epoll entries that are not connections. */
static char tag_listen, tag_timer, tag_wake;

/* The epoll thread's; ctl_init() and ctl_exit() run while it does not. */
static struct {
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
} ctl = { .lfd = -1, .epfd = -1, .tfd = -1, .efd = -1, .reserve_fd = -1 };

/* ---- the epoll thread ---- */

static int epoll_add(int fd, void *tag);

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
		ctl_conn_add(fd);
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
	uid_t uid = ctl_conn_cred(c)->uid;
	struct ctl_job *j;
	bool full, stuck;
	ssize_t n;

	/*
	 * Files of this uid are still closing: read nothing more from it. Closing the
	 * connection drops what it queued without FLUSH (the kernel releases in-flight
	 * descriptors, it does not close them in our name).
	 */
	stuck = ctl_closers_stuck(uid) >= CTL_CLOSERS_PER_UID;
	if (stuck) {
		ctl_log_refusal(uid, "its descriptors are still closing");
		ctl_conn_close(c);
		return;
	}
	n = recvmsg(ctl_conn_fd(c), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		ctl_conn_arm(c);
		return;
	}
	if (n <= 0) {	/* EOF: the client closed, or died; a lease ends here */
		ctl_conn_close(c);
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
				ctl_close_client_fds(&fd, 1, uid);
		}
	}
	r = rdmafs_proto_decode_req(buf, n, nfds, !!(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)),
				    &req);
	r = ctl_conn_request(c, r);
	full = ctl_workers_full();
	if (r)
		log_debug("ctl: pid %d: bad request (op %u): %s", (int)ctl_conn_cred(c)->pid,
			  req.op, strerror(-r));
	j = full ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		/* No job to hand the fds to: answer here; only a flood gets this far. */
		ctl_close_client_fds(fds, nfds, uid);
		if (ctl_conn_send_error(c, req.op, req.seq, r ? r : full ? -EAGAIN : -ENOMEM))
			ctl_conn_close(c);
		else
			ctl_conn_arm(c);
		return;
	}
	j->req = req;
	j->err = r;
	memcpy(j->fds, fds, nfds * sizeof(int));
	j->nfds = nfds;
	j->fd = nfds ? fds[0] : -1;
	j->c = c;
	ctl_conn_queued(c);	/* the job's reference */
	ctl_workers_queue(j);
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
					ctl_conns_sweep_idle();
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
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	int found = -ENOENT;

	if (!tb || !it) {
		found = errno ? -errno : -ENOMEM;
		goto out;
	}
	while (mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *target = mnt_fs_get_target(fs);

		if (!type || strncmp(type, "fuse", 4) || !target || strcmp(target, mnt))
			continue;
		*dev = mnt_fs_get_devno(fs);	/* the last one is the mount on top */
		found = 0;
	}
out:
	mnt_free_iter(it);
	mnt_unref_table(tb);
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
	ctl_conns_init(ctl.epfd);
	ctl_lease_resume();	/* a resumed generation: the dead one's leases */
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
	ctl_conns_close_all();
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
