// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rdmafs.c - owns librdmafs: finding a file's mount and its control socket, one request
 * per connection (the lease's connection is the lease fd), the public rdmafs_* calls.
 */
#include "rdmafs.h"

#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "rdmafs/proto.h"

#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))

static uint32_t next_seq(void)
{
	static uint32_t seq;

	return __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
}

/* Mountpoint and device of the mount @fd is on, if it is an rdmafs mount. */
static int mount_of_fd(int fd, char *mnt, size_t size, unsigned *maj, unsigned *min)
{
	char path[64], *line = NULL;
	struct libmnt_table *tb;
	struct libmnt_iter *it;
	struct libmnt_fs *fs = NULL, *k;
	const char *fstype, *target;
	size_t cap = 0;
	int mnt_id = -1, r;
	dev_t dev;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0)
		if (sscanf(line, "mnt_id: %d", &mnt_id) == 1)
			break;
	fclose(f);
	free(line);
	if (mnt_id < 0)
		return -ENOTSUP;
	tb = mnt_new_table();
	it = mnt_new_iter(MNT_ITER_FORWARD);
	r = tb && it ? mnt_table_parse_file(tb, "/proc/self/mountinfo") : -ENOMEM;
	if (r) {
		r = r < 0 ? r : -EINVAL;
		goto out;
	}
	while (!fs && mnt_table_next_fs(tb, it, &k) == 0)
		if (mnt_fs_get_id(k) == mnt_id)
			fs = k;
	fstype = fs ? mnt_fs_get_fstype(fs) : NULL;
	target = fs ? mnt_fs_get_target(fs) : NULL;
	if (!fstype || !target || strcmp(fstype, "fuse.rdmafs")) {
		r = -EXDEV;	/* not an rdmafs mount */
		goto out;
	}
	if (strlen(target) >= size) {
		r = -ENAMETOOLONG;
		goto out;
	}
	strcpy(mnt, target);
	dev = mnt_fs_get_devno(fs);
	*maj = major(dev);
	*min = minor(dev);
out:
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return r;
}

static int connect_mount(const char *mnt, unsigned maj, unsigned min)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, r;

	r = rdmafs_proto_sock_path(RDMAFS_RUNDIR, mnt, maj, min, sa.sun_path, sizeof(sa.sun_path));
	if (r)
		return r;
	/* Our file goes to whoever listens there: only in a directory no one else controls. */
	if (lstat(RDMAFS_RUNDIR, &sb) < 0)
		return errno == ENOENT ? -ENOTCONN : -errno;
	r = rdmafs_proto_rundir_trusted(&sb, getuid());
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = errno == ENOENT ? -ENOTCONN : -errno;	/* no daemon socket for it */
		close(fd);
		return r;
	}
	return fd;
}

/* A connection to the daemon of the mount holding the open file @fd. */
static int connect_fd(int fd)
{
	char mnt[PATH_MAX];
	unsigned maj = 0, min = 0;
	int r = mount_of_fd(fd, mnt, sizeof(mnt), &maj, &min);

	return r ? r : connect_mount(mnt, maj, min);
}

static int connect_path(const char *path)
{
	int fd, r;

	if (!path)
		return -EINVAL;
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = connect_fd(fd);
	close(fd);
	return r;
}

struct xact {
	uint16_t op;
	uint32_t flags;
	int32_t arg;
	int fd;				/* to pass, or -1 */
	void *recs;			/* out: up to max_recs records */
	uint32_t max_recs, count, next;
	int fd_out;			/* received fd, or -1 */
	rdmafs_progress_fn progress;
	void *arg_progress;
	bool lost;			/* out: the connection dropped before the reply */
};

static void copy_count(struct rdmafs_report *r, const struct rdmafs_wire_count *w)
{
	memset(r, 0, sizeof(*r));
	r->files_done = w->files_done;
	r->files_total = w->files_total;
	r->bytes = w->bytes;
	r->files_failed = w->files_failed;
	r->first_error = w->first_error;
	r->bytes_total = w->bytes_total;
}

/* One request and its reply on @sock; returns the reply's error or a transport -errno. */
static int xact(int sock, struct xact *x)
{
	long rec_size = rdmafs_proto_rec_size(x->op);
	char cbuf[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8))) = { 0 };
	char *buf = malloc(RDMAFS_MSG_MAX);
	struct rdmafs_req req;
	struct iovec iov = { .iov_base = &req, .iov_len = 0 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint32_t seq = next_seq();
	int r = 0;

	x->fd_out = -1;
	x->count = x->next = 0;
	x->lost = false;
	if (!buf)
		return -ENOMEM;
	iov.iov_len = rdmafs_proto_encode_req(&req, x->op, seq, x->flags, x->arg);
	if (x->fd >= 0)
		rdmafs_proto_attach_fd(&msg, cbuf, sizeof(cbuf), x->fd);
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR) {
			r = -errno;
			x->lost = r == -EPIPE || r == -ECONNRESET;
			goto out;
		}
	}
	for (;;) {
		struct rdmafs_reply rep = { 0 };
		struct iovec riov = { .iov_base = buf, .iov_len = RDMAFS_MSG_MAX };
		struct msghdr rmsg = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = cbuf,
				       .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sock, &rmsg, MSG_CMSG_CLOEXEC);
		int got_fd = -1;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			x->lost = r == -ECONNRESET || r == -EPIPE;
			goto out;
		}
		if (n == 0) {
			r = -ECONNRESET;	/* the daemon went away */
			x->lost = true;
			goto out;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&rmsg); cm; cm = CMSG_NXTHDR(&rmsg, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(int)))
				memcpy(&got_fd, CMSG_DATA(cm), sizeof(int));
		memcpy(&rep, buf, n >= (ssize_t)sizeof(rep) ? sizeof(rep) : 0);
		if (n >= (ssize_t)sizeof(rep) && rep.hdr.op == RDMAFS_OP_PROGRESS &&
		    rdmafs_proto_check_reply(buf, n, RDMAFS_OP_PROGRESS,
					     sizeof(struct rdmafs_wire_count)) == 0) {
			if (got_fd >= 0)
				close(got_fd);
			if (x->progress && rep.count == 1) {
				struct rdmafs_wire_count w;
				struct rdmafs_report pr;

				memcpy(&w, buf + sizeof(rep), sizeof(w));
				copy_count(&pr, &w);
				x->progress(&pr, x->arg_progress);
			}
			continue;
		}
		r = rdmafs_proto_check_reply(buf, n, x->op, rec_size > 0 ? rec_size : 0);
		if (!r && rep.hdr.seq != seq)
			r = -EBADMSG;
		if (r) {
			if (got_fd >= 0)
				close(got_fd);
			goto out;
		}
		if (rep.count > x->max_recs)
			rep.count = x->max_recs;
		if (rep.count && x->recs)
			memcpy(x->recs, buf + sizeof(rep), (size_t)rep.count * rec_size);
		x->count = rep.count;
		x->next = rep.next;
		x->fd_out = got_fd;
		r = rep.error;
		break;
	}
out:
	free(buf);
	return r;
}

/*
 * A daemon that dies with a request it had accepted closes the connection without a
 * reply; under a supervisor the next generation serves within a blackout (doc/restart.md
 * 3.5: the listener is kept, a new connect waits in its backlog). Requests that can be
 * asked twice with the same outcome are asked again on a new connection, for up to
 * RETRY_LIMIT_S after the first loss; the others return the loss (-ECONNRESET): the
 * daemon may or may not have done them.
 */
#define RETRY_LIMIT_S 60

static bool idempotent(uint16_t op)
{
	switch (op) {
	case RDMAFS_OP_FLUSH:		/* commit again: 0 once everything is committed */
	case RDMAFS_OP_STAT:
	case RDMAFS_OP_MAP:		/* the same memfd again */
	case RDMAFS_OP_LEASE_LIST:
	case RDMAFS_OP_METRICS:
	case RDMAFS_OP_FILES:
		return true;
	default:			/* LEASE, LEASE_BREAK, EVICT */
		return false;
	}
}

/* After x's connection was lost: whether to ask again (@t0: the first loss, set here). */
static bool retry_lost(const struct xact *x, struct timespec *t0)
{
	struct timespec now, nap = { 0, 1000 * 1000 };

	if (!x->lost || !idempotent(x->op))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!t0->tv_sec && !t0->tv_nsec)
		*t0 = now;
	else if (now.tv_sec - t0->tv_sec >= RETRY_LIMIT_S)
		return false;
	nanosleep(&nap, NULL);	/* a reset loop must not spin */
	return true;
}

/*
 * A request whose reply comes in pages (LEASE_LIST, FILES): on one connection to x->fd's
 * mount (or @path's when x->fd < 0), ask page after page from record 0 (x->arg) until the
 * daemon names no next one. @fill turns each wire record into an element of @elem_size
 * bytes (zeroed before) of the array put in *@out. Returns the number of elements or
 * -errno (then *@out is NULL).
 */
static int request_pages(const char *path, struct xact *x, size_t elem_size,
			 void (*fill)(void *elem, const void *rec), void **out)
{
	size_t rec_size = (size_t)rdmafs_proto_rec_size(x->op);
	uint32_t per_msg = (RDMAFS_MSG_MAX - sizeof(struct rdmafs_reply)) / rec_size;
	char *w = calloc(per_msg, rec_size), *v = NULL;
	size_t n = 0;
	int sock, r = 0;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	struct timespec t0 = { 0 };

again:
	sock = x->fd >= 0 ? connect_fd(x->fd) : connect_path(path);
	if (sock < 0) {
		free(v);
		free(w);
		return sock;
	}
	for (uint32_t first = 0;;) {
		char *nv;

		x->arg = (int32_t)first;
		x->recs = w;
		x->max_recs = per_msg;
		r = xact(sock, x);
		if (r)
			break;
		nv = realloc(v, (n + x->count + 1) * elem_size);
		if (!nv) {
			r = -ENOMEM;
			break;
		}
		v = nv;
		for (uint32_t i = 0; i < x->count; i++, n++) {
			memset(v + n * elem_size, 0, elem_size);
			fill(v + n * elem_size, w + i * rec_size);
		}
		if (!x->next || x->next <= first || n > INT_MAX / 2)
			break;
		first = x->next;
	}
	close(sock);
	if (r && retry_lost(x, &t0)) {	/* from the first page again */
		n = 0;
		goto again;
	}
	free(w);
	if (r) {
		free(v);
		return r;
	}
	*out = v;
	return (int)n;
}

/* Connect to @fd's mount (or @path's when @fd < 0), run one request, hang up; again on
 * a new connection when an idempotent one lost its connection (retry_lost()). */
static int request(const char *path, struct xact *x)
{
	struct timespec t0 = { 0 };
	int sock, r;

	do {
		sock = x->fd >= 0 ? connect_fd(x->fd) : connect_path(path);
		if (sock < 0)
			return sock;
		r = xact(sock, x);
		close(sock);
	} while (r && retry_lost(x, &t0));
	return r;
}

int rdmafs_flush(int fd)
{
	struct rdmafs_wire_count w;
	struct xact x = { .op = RDMAFS_OP_FLUSH, .fd = fd, .recs = &w, .max_recs = 1 };

	if (fd < 0)
		return -EBADF;
	return request(NULL, &x);
}

int rdmafs_flush_all_report(const char *path, struct rdmafs_report *report,
			    rdmafs_progress_fn fn, void *arg)
{
	struct rdmafs_wire_count w = { 0 };
	struct xact x = { .op = RDMAFS_OP_FLUSH, .flags = RDMAFS_FLUSH_ALL, .fd = -1,
			  .recs = &w, .max_recs = 1, .progress = fn, .arg_progress = arg };
	int r = request(path, &x);

	if (report)
		copy_count(report, &w);
	return r;
}

int rdmafs_flush_all(const char *path)
{
	return rdmafs_flush_all_report(path, NULL, NULL, NULL);
}

static void copy_stat(struct rdmafs_stat *st, const struct rdmafs_wire_stat *w)
{
	memset(st, 0, sizeof(*st));
	st->size = w->size;
	st->staged_bytes = w->staged_bytes;
	st->changed_bytes = w->changed_bytes;
	st->committed_bytes = w->committed_bytes;
	st->commit_ns = w->commit_ns;
	st->commits = w->commits;
	st->failures = w->failures;
	st->scanned_bytes = w->scanned_bytes;
	st->lost_pages = w->lost_pages;
	st->syncs = w->syncs;
	st->budget_refusals = w->budget_refusals;
	st->last_commit.tv_sec = w->last_commit_sec;
	st->last_commit.tv_nsec = w->last_commit_nsec;
	st->last_error_time = w->last_error_sec;
	st->last_error = w->last_error;
	st->pending_error = w->pending_error;
	st->opens = w->opens;
	st->opens_w = w->opens_w;
	st->leases = w->leases;
	st->files = w->files;
	st->staging_mode = w->staging_mode;
	st->flags = w->flags;
	st->flush_interval = w->flush_interval;
	st->page_size = w->page_size;
	st->chunk_size = w->chunk_size;
	st->budget = w->budget;
	st->ino = w->src_ino;
	st->lease_granted = w->lease_granted;
	st->lease_breaks = w->lease_breaks;
	st->lease_denies = w->lease_denies;
	st->lease_revokes = w->lease_revokes;
	st->lease_deaths = w->lease_deaths;
	st->generation = w->generation;
	st->restarts = w->restarts;
	st->last_blackout_us = w->last_blackout_us;
	st->supervisor_pid = w->supervisor_pid;
	st->restartable = !!(w->restart_flags & RDMAFS_RS_RESTARTABLE);
	st->prev_exit = w->prev_exit;
	memcpy(st->version, w->version, sizeof(st->version));
	st->version[sizeof(st->version) - 1] = 0;
}

int rdmafs_stat(int fd, struct rdmafs_stat *st)
{
	return rdmafs_stat_flags(fd, st, 0);
}

int rdmafs_stat_flags(int fd, struct rdmafs_stat *st, unsigned flags)
{
	struct rdmafs_wire_stat w;
	struct xact x = { .op = RDMAFS_OP_STAT, .fd = fd, .recs = &w, .max_recs = 1,
			  .flags = (flags & RDMAFS_NO_SCAN) ? RDMAFS_STAT_NOSCAN : 0 };
	int r;

	if (fd < 0)
		return -EBADF;
	if (flags & ~RDMAFS_NO_SCAN)
		return -EINVAL;
	r = request(NULL, &x);
	if (!r && x.count != 1)
		r = -EBADMSG;
	if (!r)
		copy_stat(st, &w);
	return r;
}

int rdmafs_mount_stat(const char *path, struct rdmafs_stat *st)
{
	return rdmafs_mount_stat_flags(path, st, 0);
}

int rdmafs_mount_stat_flags(const char *path, struct rdmafs_stat *st, unsigned flags)
{
	struct rdmafs_wire_stat w;
	struct xact x = { .op = RDMAFS_OP_STAT, .fd = -1, .recs = &w, .max_recs = 1,
			  .flags = RDMAFS_STAT_MOUNT |
				   ((flags & RDMAFS_NO_SCAN) ? RDMAFS_STAT_NOSCAN : 0) };
	int r;

	if (flags & ~RDMAFS_NO_SCAN)
		return -EINVAL;
	r = request(path, &x);

	if (!r && x.count != 1)
		r = -EBADMSG;
	if (!r)
		copy_stat(st, &w);
	return r;
}

int rdmafs_map(int fd, int prot, void **addr, size_t *len)
{
	struct rdmafs_wire_map w;
	struct xact x = { .op = RDMAFS_OP_MAP, .fd = fd, .recs = &w, .max_recs = 1 };
	void *p;
	int r;

	if (fd < 0)
		return -EBADF;
	if (prot & ~(PROT_READ | PROT_WRITE))
		return -EINVAL;
	x.arg = RDMAFS_MAP_READ | ((prot & PROT_WRITE) ? RDMAFS_MAP_WRITE : 0);
	r = request(NULL, &x);
	if (!r && (x.count != 1 || x.fd_out < 0 || !w.page_size ||
		   ((prot & PROT_WRITE) && !(w.prot & RDMAFS_MAP_WRITE))))
		r = -EBADMSG;
	if (!r && !w.size)
		r = -ENODATA;	/* an empty file: nothing to map */
	if (r)
		goto out;
	*len = ALIGN_UP(w.size, w.page_size);
	p = mmap(NULL, *len, prot ? prot : PROT_READ, MAP_SHARED, x.fd_out, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	*addr = p;
out:
	if (x.fd_out >= 0)
		close(x.fd_out);	/* the mapping keeps the memory */
	return r;
}

int rdmafs_unmap(void *addr, size_t len)
{
	return munmap(addr, len) < 0 ? -errno : 0;
}

int rdmafs_lease(int fd, int signo)
{
	struct xact x = { .op = RDMAFS_OP_LEASE, .fd = fd, .arg = signo };
	int sock, r;

	if (fd < 0)
		return -EBADF;
	sock = connect_fd(fd);
	if (sock < 0)
		return sock;
	r = xact(sock, &x);
	if (r) {
		close(sock);
		return r;
	}
	return sock;	/* the connection is the lease */
}

static void fill_lease(void *elem, const void *rec)
{
	struct rdmafs_lease_info *v = elem;
	const struct rdmafs_wire_lease *w = rec;

	v->ino = w->src_ino;
	v->pid = w->pid;
	v->signo = w->signo;
	v->breaking = w->state == 1;
	memcpy(v->path, w->path, sizeof(v->path));
	v->path[sizeof(v->path) - 1] = 0;
}

int rdmafs_lease_list(const char *path, int fd, struct rdmafs_lease_info **out)
{
	struct xact x = { .op = RDMAFS_OP_LEASE_LIST, .fd = fd };
	void *v;
	int n = request_pages(path, &x, sizeof(**out), fill_lease, &v);

	*out = v;
	return n;
}

int rdmafs_lease_break(int fd)
{
	struct xact x = { .op = RDMAFS_OP_LEASE_BREAK, .fd = fd };

	if (fd < 0)
		return -EBADF;
	return request(NULL, &x);
}

int rdmafs_evict(const char *path, struct rdmafs_report *report)
{
	struct rdmafs_wire_count w = { 0 };
	struct xact x = { .op = RDMAFS_OP_EVICT, .fd = -1, .recs = &w, .max_recs = 1 };
	int r = request(path, &x);

	if (report)
		copy_count(report, &w);
	return r;
}

int rdmafs_flush_progress(int fd, const char *path, struct rdmafs_report *report,
			  rdmafs_progress_fn fn, void *arg)
{
	struct rdmafs_wire_count w = { 0 };
	struct xact x = { .op = RDMAFS_OP_FLUSH, .flags = RDMAFS_FLUSH_PROGRESS, .fd = fd,
			  .recs = &w, .max_recs = 1, .progress = fn, .arg_progress = arg };
	int r;

	if (fd < 0)
		x.flags |= RDMAFS_FLUSH_ALL;
	r = request(path, &x);
	if (r == -EINVAL && !x.count) {	/* a daemon older than the flag: flush without */
		x.flags &= ~RDMAFS_FLUSH_PROGRESS;
		r = request(path, &x);
	}
	if (report)
		copy_count(report, &w);
	return r;
}

int rdmafs_metrics(const char *path, unsigned flags, struct rdmafs_metrics *m)
{
	struct rdmafs_wire_metrics w;
	struct xact x = { .op = RDMAFS_OP_METRICS, .fd = -1, .recs = &w, .max_recs = 1,
			  .flags = (flags & RDMAFS_NO_SCAN) ? RDMAFS_METRICS_NOSCAN : 0 };
	int r;

	if (flags & ~RDMAFS_NO_SCAN)
		return -EINVAL;
	r = request(path, &x);
	if (!r && x.count != 1)
		r = -EBADMSG;
	if (r)
		return r;
	memset(m, 0, sizeof(*m));
	m->staged_bytes = w.staged_bytes;
	m->budget_bytes = w.budget_bytes;
	m->dirty_bytes = w.dirty_bytes == RDMAFS_DIRTY_UNKNOWN ? RDMAFS_DIRTY_NOT_KNOWN :
								 w.dirty_bytes;
	m->files = w.files;
	m->files_committing = w.files_committing;
	m->files_failing = w.files_failing;
	m->opens = w.opens;
	m->opens_w = w.opens_w;
	m->leases = w.leases;
	m->files_staged_total = w.files_staged_total;
	m->files_dropped_total = w.files_dropped_total;
	m->evictions_total = w.evictions_total;
	m->evicted_bytes_total = w.evicted_bytes_total;
	m->committed_bytes_total = w.committed_bytes_total;
	m->written_bytes_total = w.written_bytes_total;
	m->scanned_bytes_total = w.scanned_bytes_total;
	m->commits_total = w.commits_total;
	m->commit_ns_total = w.commit_ns_total;
	m->failures_total = w.failures_total;
	m->lease_granted = w.lease_granted;
	m->lease_breaks = w.lease_breaks;
	m->lease_denies = w.lease_denies;
	m->lease_revokes = w.lease_revokes;
	m->lease_deaths = w.lease_deaths;
	m->flags = w.flags & (RDMAFS_M_DIRTY_PARTIAL | RDMAFS_M_COMMITTING | RDMAFS_M_SEALED);
	m->nbuckets = w.nbuckets <= RDMAFS_M_BUCKETS ? w.nbuckets : RDMAFS_M_BUCKETS;
	for (unsigned i = 0; i < m->nbuckets; i++) {
		m->bucket_le_ns[i] = w.bucket_le_ns[i];
		m->bucket_count[i] = w.bucket_count[i];
	}
	m->nerrnos = w.nerrnos <= RDMAFS_M_ERRNOS ? w.nerrnos : RDMAFS_M_ERRNOS;
	for (unsigned i = 0; i < m->nerrnos; i++) {
		m->failures[i].error = w.failures[i].error;
		m->failures[i].count = w.failures[i].count;
	}
	return 0;
}

static void fill_file(void *elem, const void *rec)
{
	struct rdmafs_file_info *v = elem;
	const struct rdmafs_wire_file *w = rec;

	v->ino = w->src_ino;
	v->size = w->size;
	v->staged_bytes = w->staged_bytes;
	v->dirty_bytes = w->dirty_bytes == RDMAFS_DIRTY_UNKNOWN ? RDMAFS_DIRTY_NOT_KNOWN :
								   w->dirty_bytes;
	v->committed_bytes = w->committed_bytes;
	v->commits = w->commits;
	v->failures = w->failures;
	v->commit_ns = w->commit_ns;
	v->opens = w->opens;
	v->opens_w = w->opens_w;
	v->leases = w->leases;
	v->flags = w->flags;
	v->pending_error = w->pending_error;
	v->staging_mode = w->staging_mode;
	memcpy(v->path, w->path, sizeof(v->path));
	v->path[sizeof(v->path) - 1] = 0;
}

int rdmafs_files(const char *path, unsigned flags, struct rdmafs_file_info **out)
{
	struct xact x = { .op = RDMAFS_OP_FILES, .fd = -1,
			  .flags = (flags & RDMAFS_NO_SCAN) ? RDMAFS_METRICS_NOSCAN : 0 };

	void *v = NULL;
	int n = -EINVAL;

	if (!(flags & ~RDMAFS_NO_SCAN))
		n = request_pages(path, &x, sizeof(**out), fill_file, &v);
	*out = v;
	return n;
}
