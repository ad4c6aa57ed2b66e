// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-restartprobe MOUNTPOINT [KILLS]: proves, on the running kernel, what a FUSE
 * server restart with zero loss can build on (issue 15). Not rdmafs: a minimal low-level
 * libfuse server with passthrough, killed with SIGKILL KILLS times (default 20) while a
 * request is in flight, each time replaced by a new process that takes the /dev/fuse
 * descriptor back from a holder and asks the kernel to resend (FUSE_NOTIFY_RESEND).
 *
 * Processes: this one is the holder (it keeps /dev/fuse, the staging memfd and a state
 * memfd, and does nothing else with them); servers are fork+exec'd generations of this
 * program (--server), handed their descriptors over SCM_RIGHTS; a client keeps a
 * passthrough file open and mapped across every restart; a prober stats the mount in a
 * loop and counts ENOTCONN (and any other error).
 *
 * The file system: "f" (node 2) is passed through to the staging memfd; "g" (node 3) is
 * served by the server itself (direct_io), so its reads reach the server. Node ids are
 * fixed numbers and file handles carry the generation that issued them, so a server can
 * tell (and count) requests for node ids and handles an earlier generation created.
 *
 * Prints one "key=value" line per fact; exit 0 when every check holds, 77 when the
 * kernel lacks a feature it needs (passthrough, FUSE_NOTIFY_RESEND), 1 on a failed check.
 */
#define FUSE_USE_VERSION 317
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* Debian 12's <linux/fuse.h> is protocol 7.38: what 7.40 added (Linux 6.9). */
#ifndef FUSE_DEV_IOC_BACKING_OPEN
struct fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define FUSE_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct fuse_backing_map)
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif
#define PROBE_NOTIFY_RESEND 7			/* FUSE_NOTIFY_RESEND */
#define PROBE_UNIQUE_RESEND (1ULL << 63)	/* FUSE_UNIQUE_RESEND */
#define PROBE_HAS_RESEND (1ULL << 39)		/* FUSE_HAS_RESEND, in flags2 */
#define PROBE_PASSTHROUGH (1ULL << 37)		/* FUSE_PASSTHROUGH, in flags2 */
#define PROBE_INIT_EXT (1U << 30)		/* FUSE_INIT_EXT */

/* The unique of the INIT a restarted server feeds its own libfuse session: odd (the
 * kernel's are even), so its reply, swallowed by our writev, could never match one. */
#define SYNTH_INIT_UNIQUE ((1ULL << 62) | 1)

#define F_INO 2
#define G_INO 3
#define STAGE_SIZE (2u << 20)
#define PAGE 4096u
#define MAX_KILLS 40	/* page layout: 16+k, 64+k, 128+k, 192+k */
#define PIN_FIRST 192
#define PIN_PAGES 64

/* Shared by every process through the state memfd (the holder keeps it). */
struct probe_state {
	/* Written by generation 0 at INIT and first open; read by later generations. */
	uint8_t init_in[sizeof(struct fuse_init_in)];
	uint32_t init_in_len;
	int32_t backing_id;
	/* Holder -> server */
	_Atomic int hang_op;	/* opcode the server leaves unanswered (0: none) */
	_Atomic int use_new_id;	/* next OPEN of f replies with a freshly registered id */
	_Atomic int use_clone;	/* the next generation serves through FUSE_DEV_IOC_CLONE */
	/* Server -> holder */
	_Atomic int ready_gen;	/* generation that finished its (real or synthetic) INIT */
	_Atomic double ready_ms;	/* when (CLOCK_MONOTONIC) */
	_Atomic pid_t server_pid;	/* of that generation (supervised: not our child) */
	_Atomic uint64_t hung_unique;	/* the unique of the request left unanswered */
	_Atomic uint64_t resent_same_unique;	/* resent with that unique (| RESEND bit) */
	_Atomic uint64_t resent;		/* requests with FUSE_UNIQUE_RESEND set */
	_Atomic uint64_t resent_ops;		/* bit per opcode seen resent */
	_Atomic uint64_t foreign_nodeid;	/* requests for node ids an earlier gen looked up */
	_Atomic uint64_t foreign_nodeid_ops;
	_Atomic uint64_t foreign_fh;		/* requests with a handle an earlier gen issued */
	_Atomic uint64_t foreign_fh_ops;
	_Atomic uint64_t foreign_forget;	/* FORGETs of node ids an earlier gen looked up */
	_Atomic uint64_t forgets;
	_Atomic int new_id;			/* the id registered for use_new_id */
	_Atomic int new_id_gen;
	/* Prober */
	_Atomic uint64_t probes;
	_Atomic uint64_t probe_enotconn;
	_Atomic uint64_t probe_errors;
	_Atomic int probe_last_errno;
	_Atomic double probe_worst_ms;	/* the longest stat: an unrelated caller's blackout */
	_Atomic int probe_stop;
};

static struct probe_state *S;
static int gen;
static int dev_fd = -1;
static int stage_fd = -1;
static uint8_t looked_up[8];	/* node ids this generation answered a LOOKUP for */
static _Atomic uint64_t fh_next;
/* The unique of the request this worker thread read last: libfuse's multi-threaded loop
 * reads and handles a request in the same thread (how rdmafs can key a journal). */
static __thread uint64_t cur_unique;
static int io_fd = -1;		/* where requests are read and answered: dev_fd or a clone */
static bool supervised;		/* run by rdmafs-supervisor: descriptors go to its store */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "restartprobe[%s%d]: ", gen >= 0 ? "gen" : "holder", gen >= 0 ? gen : 0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- descriptors over SCM_RIGHTS ---- */

static int send_fds(int sock, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)] = { 0 };
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int recv_fds(int sock, int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -EIO;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int) * n))
		return -EPROTO;
	memcpy(fds, CMSG_DATA(c), sizeof(int) * n);
	return 0;
}

/* ---- the supervisor's store (src/supervisor.h), supervised mode ---- */

#define TAG_DEVFUSE SUP_TAG(SUP_K_DEVFUSE, 0)
#define TAG_STAGE SUP_TAG(SUP_K_STAGING, 1)

union sup_buf {
	struct sup_msg m;
	char buf[SUP_MSG_MAX];
};

/* One request to the supervisor; its reply status (descriptors of a LIST into @rfds). */
static int sup_xact(int sock, uint16_t op, const uint64_t *tags, uint32_t n, const int *fds,
		    union sup_buf *r, int *rfds, int max_rfds)
{
	union sup_buf q = { .m = { .magic = SUP_MAGIC, .version = SUP_VERSION, .op = op,
				   .count = n } };
	char cbuf[CMSG_SPACE(sizeof(int) * 8)] = { 0 };
	struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q.m) + n * sizeof(uint64_t) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n > 8)
		return -EINVAL;
	if (n)
		memcpy(q.m.tags, tags, n * sizeof(uint64_t));
	if (fds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	iov = (struct iovec){ .iov_base = r, .iov_len = sizeof(*r) };
	mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) < (ssize_t)sizeof(r->m))
		return -EPROTO;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS) {
		int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (k > max_rfds || k != (int)r->m.count)
			return -EPROTO;
		memcpy(rfds, CMSG_DATA(c), sizeof(int) * k);
	}
	return r->m.status;
}

/* The /dev/fuse and staging descriptors an earlier generation put in the store. */
static int sup_take_back(int sock, int *dev, int *stage)
{
	union sup_buf r;
	int fds[8], n;

	n = sup_xact(sock, SUP_LIST, NULL, 0, NULL, &r, fds, 8);
	if (n < 0)
		return n;
	*dev = *stage = -1;
	for (uint32_t i = 0; i < r.m.count; i++) {
		if (r.m.tags[i] == TAG_DEVFUSE)
			*dev = fds[i];
		else if (r.m.tags[i] == TAG_STAGE)
			*stage = fds[i];
		else
			close(fds[i]);
	}
	return *dev >= 0 && *stage >= 0 ? 0 : -ENOENT;
}

/* ---- the server ---- */

static void note_request(const struct fuse_in_header *in, const void *arg)
{
	uint64_t bit = 1ULL << (in->opcode & 63);
	uint64_t fh = 0;

	cur_unique = in->unique;
	if (in->unique & PROBE_UNIQUE_RESEND) {
		S->resent++;
		S->resent_ops |= bit;
		if ((in->unique & ~PROBE_UNIQUE_RESEND) == S->hung_unique)
			S->resent_same_unique++;
	}
	if (in->opcode == FUSE_INIT || in->opcode == FUSE_LOOKUP)
		return;
	if (in->opcode == FUSE_FORGET) {
		S->forgets++;
		if (in->nodeid < 8 && in->nodeid != FUSE_ROOT_ID && !looked_up[in->nodeid])
			S->foreign_forget++;
		return;
	}
	if (in->opcode == FUSE_BATCH_FORGET) {
		const struct fuse_batch_forget_in *b = arg;
		const struct fuse_forget_one *one = (const void *)(b + 1);

		for (uint32_t i = 0; i < b->count; i++) {
			S->forgets++;
			if (one[i].nodeid < 8 && one[i].nodeid != FUSE_ROOT_ID &&
			    !looked_up[one[i].nodeid])
				S->foreign_forget++;
		}
		return;
	}
	if (in->nodeid != FUSE_ROOT_ID && in->nodeid < 8 && !looked_up[in->nodeid]) {
		S->foreign_nodeid++;
		S->foreign_nodeid_ops |= bit;
	}
	/* The handle is the first field of the read, flush, release and fsync arguments. */
	if (in->opcode == FUSE_READ || in->opcode == FUSE_FLUSH || in->opcode == FUSE_RELEASE ||
	    in->opcode == FUSE_FSYNC)
		fh = *(const uint64_t *)arg;
	if (fh && (int)(fh >> 32) != gen) {
		S->foreign_fh++;
		S->foreign_fh_ops |= bit;
	}
}

static ssize_t probe_read(int fd, void *buf, size_t len, void *userdata)
{
	static __thread void *locked;
	const struct fuse_in_header *in = buf;
	ssize_t n;

	(void)userdata;
	/*
	 * The kernel copies a request into this buffer after taking it off the queue; if
	 * that copy faults while SIGKILL is pending, the fault fails and the kernel ends the
	 * request with EIO (fuse_dev_do_read()). A buffer locked in memory never faults.
	 */
	if (buf != locked && !getenv("RESTARTPROBE_NO_MLOCK")) {
		if (mlock(buf, len))
			say("mlock of the request buffer: %s", strerror(errno));
		locked = buf;
	}
	n = read(io_fd >= 0 ? io_fd : fd, buf, len);
	if (n < (ssize_t)sizeof(*in))
		return n;
	if (in->opcode == FUSE_INIT && gen == 0) {
		/* Kept for the generations after us: their libfuse must see the same INIT. */
		size_t l = n - sizeof(*in);

		if (l > sizeof(S->init_in))
			l = sizeof(S->init_in);
		memcpy(S->init_in, in + 1, l);
		S->init_in_len = l;
	}
	note_request(in, in + 1);
	return n;
}

static ssize_t probe_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *out = iov[0].iov_base;

	(void)userdata;
	if (out->unique == SYNTH_INIT_UNIQUE) {	/* our own INIT's reply: not the kernel's */
		ssize_t len = 0;

		for (int i = 0; i < count; i++)
			len += iov[i].iov_len;
		return len;
	}
	return writev(io_fd >= 0 ? io_fd : fd, iov, count);
}

static const struct fuse_custom_io probe_io = { .read = probe_read, .writev = probe_writev };

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_nlink = 1;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_size = STAGE_SIZE;
	}
}

/* Leaves the request unanswered when the holder asked for it; true if so. */
static bool hang(fuse_req_t req, int opcode)
{
	(void)req;
	if (S->hang_op != opcode)
		return false;
	S->hang_op = 0;
	S->hung_unique = cur_unique;	/* the holder kills us now; the request stays in flight */
	return true;
}

static void p_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (!fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH))
		say("kernel offers no passthrough");
	conn->max_backing_stack_depth = 1;
	fuse_unset_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
}

static void p_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .attr_timeout = 0, .entry_timeout = 3600 };

	if (parent != FUSE_ROOT_ID || (strcmp(name, "f") && strcmp(name, "g"))) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = name[0] == 'f' ? F_INO : G_INO;
	looked_up[e.ino] = 1;
	fill_attr(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void p_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && hang(req, FUSE_GETATTR))
		return;
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 0);
}

static void p_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fi->fh = ((uint64_t)gen << 32) | ++fh_next;
	if (ino == G_INO) {
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
		return;
	}
	if (gen == 0 && S->backing_id <= 0) {
		struct fuse_backing_map map = { .fd = stage_fd };
		int id = ioctl(dev_fd, FUSE_DEV_IOC_BACKING_OPEN, &map);

		if (id <= 0) {
			say("BACKING_OPEN: %s", strerror(errno));
			fuse_reply_err(req, EIO);
			return;
		}
		S->backing_id = id;
	}
	fi->backing_id = S->backing_id;
	if (S->use_new_id) {
		/* A second backing id for the same memfd, while an open of this inode still
		 * uses the first: what would a restarted server that lost the id table get? */
		struct fuse_backing_map map = { .fd = stage_fd };

		S->use_new_id = 0;
		fi->backing_id = ioctl(dev_fd, FUSE_DEV_IOC_BACKING_OPEN, &map);
		S->new_id = fi->backing_id;
		S->new_id_gen = gen;
	}
	fuse_reply_open(req, fi);
}

static void p_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	char *buf;

	(void)fi;
	if (hang(req, FUSE_READ))
		return;
	if (off >= STAGE_SIZE)
		size = 0;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memset(buf, ino == G_INO ? 'g' : '?', size);
	fuse_reply_buf(req, buf, size);
	free(buf);
}

static void p_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	if (hang(req, FUSE_FSYNC))
		return;
	fuse_reply_err(req, 0);
}

static void p_reply0(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void p_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void p_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops probe_ops = {
	.init = p_init,
	.lookup = p_lookup,
	.getattr = p_getattr,
	.open = p_open,
	.read = p_read,
	.fsync = p_fsync,
	.flush = p_reply0,
	.release = p_reply0,
	.forget = p_forget,
	.forget_multi = p_forget_multi,
};

/*
 * Generation 0 mounts; later generations get the mounted /dev/fuse descriptor from the
 * holder. libfuse 3.17 answers EIO to every request before it has seen an INIT, and the
 * kernel sends INIT once per connection: a restarted server feeds its session the INIT
 * generation 0 received (kept in the state memfd) and swallows the reply (probe_writev).
 */
static int server_main(int sock, const char *mountpoint)
{
	char *argv0[] = { "rdmafs-restartprobe", "-o", "fsname=restartprobe", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv0);
	struct fuse_loop_config *loop_cfg;
	struct fuse_session *se;
	int fds[3];

	if (supervised) {	/* state and staging inherited; the rest from the store */
		fds[0] = atoi(getenv("RESTARTPROBE_STATE_FD"));
		fds[2] = atoi(getenv("RESTARTPROBE_STAGE_FD"));
		if (gen > 0 && sup_take_back(sock, &fds[1], &fds[2]))
			return 1;
	} else if (recv_fds(sock, fds, gen == 0 ? 1 : 3)) {
		return 1;
	}
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (S == MAP_FAILED)
		return 1;
	se = fuse_session_new(&args, &probe_ops, sizeof(probe_ops), NULL);
	if (!se)
		return 1;
	if (gen == 0) {
		stage_fd = supervised ? fds[2] : memfd_create("restartprobe-stage", MFD_CLOEXEC);
		if (stage_fd < 0 || ftruncate(stage_fd, STAGE_SIZE))
			return 1;
		if (fuse_session_mount(se, mountpoint))
			return 1;
		dev_fd = fuse_session_fd(se);
		if (fuse_session_custom_io(se, &probe_io, sizeof(probe_io), dev_fd))
			return 1;
		/* The holder keeps the connection (and the staging) alive from now on. */
		fds[1] = dev_fd;
		fds[2] = stage_fd;
		if (supervised) {
			const uint64_t tags[2] = { TAG_DEVFUSE, TAG_STAGE };
			union sup_buf r;

			if (sup_xact(sock, SUP_PUT, tags, 2, fds + 1, &r, NULL, 0))
				return 1;
		} else if (send_fds(sock, fds + 1, 2)) {
			return 1;
		}
	} else {
		struct {
			struct fuse_in_header h;
			uint8_t arg[sizeof(struct fuse_init_in)];
		} init = { .h = { .opcode = FUSE_INIT, .unique = SYNTH_INIT_UNIQUE } };
		struct fuse_buf fb = { .mem = &init };
		struct fuse_out_header resend = { .len = sizeof(resend),
						  .error = PROBE_NOTIFY_RESEND };

		dev_fd = fds[1];
		stage_fd = fds[2];
		if (fuse_session_custom_io(se, &probe_io, sizeof(probe_io), dev_fd))
			return 1;
		memcpy(init.arg, S->init_in, S->init_in_len);
		init.h.len = sizeof(init.h) + S->init_in_len;
		fb.size = init.h.len;
		fuse_session_process_buf(se, &fb);
		if (fuse_session_exited(se)) {
			say("synthetic INIT refused");
			return 1;
		}
		if (S->use_clone) {
			/* As libfuse's clone_fd: a second /dev/fuse file on the connection,
			 * with its own queue of requests being processed. */
			io_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
			if (io_fd < 0 || ioctl(io_fd, FUSE_DEV_IOC_CLONE, &dev_fd)) {
				say("FUSE_DEV_IOC_CLONE: %s", strerror(errno));
				return 1;
			}
		}
		/* Requests the dead server had read and not answered go back to the queue. */
		if (write(dev_fd, &resend, sizeof(resend)) != sizeof(resend)) {
			say("FUSE_NOTIFY_RESEND: %s", strerror(errno));
			return 3;
		}
	}
	if (supervised) {
		union sup_buf r;

		if (sup_xact(sock, SUP_READY, NULL, 0, NULL, &r, NULL, 0))
			return 1;
	}
	close(sock);
	/* Multi-threaded, without clone_fd (F2 in doc/restart.md), as rdmafs serves. */
	loop_cfg = fuse_loop_cfg_create();
	if (!loop_cfg)
		return 1;
	fuse_loop_cfg_set_clone_fd(loop_cfg, 0);
	fuse_loop_cfg_set_max_threads(loop_cfg, 4);
	S->ready_ms = now_ms();
	S->server_pid = getpid();
	S->ready_gen = gen;
	fuse_session_loop_mt(se, loop_cfg);
	/* Unmounted (the kernel's read failed): done, which a supervisor takes as the end. */
	fuse_loop_cfg_destroy(loop_cfg);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return SUP_EXIT_DONE;
}

/* ---- the holder (this process), the client and the prober ---- */

enum { C_GETATTR = 1, C_READ, C_FSYNC, C_WRITE, C_NEWOPEN, C_CLOSE_G, C_EXIT };

struct cmd {
	int op;
	int arg;
};

struct result {
	int err;		/* 0 or errno */
	double done_ms;		/* CLOCK_MONOTONIC when the call returned */
};

static int mp_fd = -1;	/* the mountpoint's directory fd (*at() calls) */

static void fill_page(char *p, int tag)
{
	char t[16];

	snprintf(t, sizeof(t), "%07u", (unsigned int)tag % 10000000);
	for (unsigned int i = 0; i < PAGE; i += 8)
		memcpy(p + i, t, 8);
}

/* READ_FIXED from @src into @dst, a page of the registered (pinned) buffer; 0 or errno. */
static int pin_write(struct io_uring *ring, int src, const char *page, char *dst)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int res;

	if (pwrite(src, page, PAGE, 0) != PAGE)
		return errno;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_read_fixed(sqe, src, dst, PAGE, 0, 0);
	res = io_uring_submit_and_wait(ring, 1);
	if (res < 0)
		return -res;
	res = io_uring_wait_cqe(ring, &cqe);
	if (res < 0)
		return -res;
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res == PAGE ? 0 : res < 0 ? -res : EIO;
}

/* The client: one passthrough open of f, mapped, kept across every restart. */
static void client_main(int cmd_rd, int res_wr)
{
	int f = openat(mp_fd, "f", O_RDWR), g = openat(mp_fd, "g", O_RDONLY);
	char *map, page[PAGE], want[PAGE];
	struct io_uring ring;
	struct iovec pin_iov;
	struct cmd c;
	struct result r;
	int src;

	if (f < 0 || g < 0)
		_exit(10);
	map = mmap(NULL, STAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (map == MAP_FAILED)
		_exit(11);
	fill_page(map, 1);	/* before any death: must survive every one */
	/* A long-term pin (FOLL_LONGTERM, as ibv_reg_mr) of pages 192..255, taken once,
	 * before any death; the kernel writes through it after every restart. */
	pin_iov.iov_base = map + (size_t)PIN_FIRST * PAGE;
	pin_iov.iov_len = (size_t)PIN_PAGES * PAGE;
	src = memfd_create("restartprobe-src", MFD_CLOEXEC);
	if (src < 0 || io_uring_queue_init(4, &ring, 0) ||
	    io_uring_register_buffers(&ring, &pin_iov, 1))
		_exit(14);
	while (read(cmd_rd, &c, sizeof(c)) == sizeof(c)) {
		r.err = 0;
		switch (c.op) {
		case C_GETATTR: {
			struct stat st;

			if (fstat(g, &st))
				r.err = errno;
			else if (st.st_size != STAGE_SIZE)
				r.err = EBADMSG;
			break;
		}
		case C_READ:
			if (pread(g, page, PAGE, 0) != PAGE)
				r.err = errno ? errno : EBADMSG;
			else if (page[0] != 'g' || page[PAGE - 1] != 'g')
				r.err = EBADMSG;
			break;
		case C_FSYNC:
			if (fsync(f))
				r.err = errno;
			break;
		case C_WRITE:
			/* Through the mapping and through the old descriptor (passthrough). */
			fill_page(map + (size_t)(16 + c.arg) * PAGE, 1000 + c.arg);
			fill_page(page, 2000 + c.arg);
			if (pwrite(f, page, PAGE, (off_t)(64 + c.arg) * PAGE) != PAGE)
				r.err = errno;
			fill_page(want, 1);
			if (memcmp(map, want, PAGE))	/* written before the first death */
				r.err = EBADMSG;
			/* And through the pin: the kernel reads into the pinned pages. */
			fill_page(page, 4000 + c.arg);
			if (!r.err)
				r.err = pin_write(&ring, src, page,
						  map + (size_t)(PIN_FIRST + c.arg) * PAGE);
			break;
		case C_NEWOPEN: {
			/* A new open, served by this generation, of the file an earlier one
			 * registered the backing id for. */
			int nf = openat(mp_fd, "f", O_RDWR);

			if (nf < 0) {
				r.err = errno;
				break;
			}
			fill_page(page, 3000 + c.arg);
			if (pwrite(nf, page, PAGE, (off_t)(128 + c.arg) * PAGE) != PAGE)
				r.err = errno;
			close(nf);
			break;
		}
		case C_CLOSE_G:
			close(g);
			g = -1;
			break;
		case C_EXIT:
			munmap(map, STAGE_SIZE);
			close(f);
			_exit(0);
		}
		r.done_ms = now_ms();
		if (write(res_wr, &r, sizeof(r)) != sizeof(r))
			_exit(12);
	}
	_exit(13);
}

static int cmd_wr = -1, res_rd = -1;	/* the holder's ends of the client's pipes */

/* Ask the client to do @op; 0, or -1 if the client is gone. */
static int client_send(int op, int arg)
{
	struct cmd c = { op, arg };

	return write(cmd_wr, &c, sizeof(c)) == sizeof(c) ? 0 : -1;
}

/* The result of the client's last command; 0, or -1 if the client is gone. */
static int client_wait(struct result *r)
{
	return read(res_rd, r, sizeof(*r)) == sizeof(*r) ? 0 : -1;
}

static int client_do(int op, int arg, struct result *r)
{
	return client_send(op, arg) ? -1 : client_wait(r);
}

static void prober_main(void)
{
	struct stat st;

	while (!S->probe_stop) {
		double t = now_ms();

		if (fstatat(mp_fd, "", &st, AT_EMPTY_PATH)) {	/* GETATTR of the root */
			S->probe_last_errno = errno;
			if (errno == ENOTCONN)
				S->probe_enotconn++;
			else
				S->probe_errors++;
		}
		t = now_ms() - t;
		if (t > S->probe_worst_ms)
			S->probe_worst_ms = t;
		S->probes++;
		usleep(200);
	}
	_exit(0);
}

/* Wait until generation @g serves; its pid, or -1 if @watch (our child) exits first. */
static pid_t wait_ready(int g, pid_t watch)
{
	for (double end = now_ms() + 10000; S->ready_gen != g; usleep(100))
		if (now_ms() > end || waitpid(watch, NULL, WNOHANG) == watch)
			return -1;
	return S->server_pid;
}

static pid_t spawn_server(const char *self, const char *mountpoint, int state_fd, int *dev,
			  int *stage, int g)
{
	int sv[2], fds[3] = { state_fd, *dev, *stage };
	char gs[16], ss[16];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid == 0) {
		fcntl(sv[1], F_SETFD, 0);	/* the only descriptor the server inherits */
		snprintf(gs, sizeof(gs), "%d", g);
		snprintf(ss, sizeof(ss), "%d", sv[1]);
		execl(self, self, "--server", gs, ss, mountpoint, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0 || send_fds(sv[0], fds, g == 0 ? 1 : 3)) {
		close(sv[0]);
		return -1;
	}
	if (g == 0 && recv_fds(sv[0], fds + 1, 2)) {
		close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*dev = fds[1];
	*stage = fds[2];
	close(sv[0]);
	/* Until it serves (it has read the state: use_clone may change after this). */
	if (wait_ready(g, pid) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static pid_t supervisor = -1;	/* supervised mode: rdmafs-supervisor, our child */

/*
 * Supervised mode: start rdmafs-supervisor, which runs the server generations and keeps
 * /dev/fuse and the staging memfd in its store (not us: we keep only what we check).
 */
static pid_t start_supervised(const char *sup, const char *self, const char *mnt,
			      int state, int stage)
{
	char v[16];

	supervisor = fork();
	if (supervisor == 0) {
		snprintf(v, sizeof(v), "%d", state);
		setenv("RESTARTPROBE_STATE_FD", v, 1);
		snprintf(v, sizeof(v), "%d", stage);
		setenv("RESTARTPROBE_STAGE_FD", v, 1);
		execl(sup, sup, "--", self, "--sup-server", mnt, (char *)NULL);
		_exit(127);
	}
	return supervisor < 0 ? -1 : wait_ready(0, supervisor);
}

/* Supervised mode: stop the last generation and the supervisor (0 if it exits 0). */
static int stop_supervised(void)
{
	int status = -1;

	/* After the unmount the server's read fails: it exits 0, and so does the supervisor. */
	for (double end = now_ms() + 10000; now_ms() < end; usleep(1000))
		if (waitpid(supervisor, &status, WNOHANG) == supervisor)
			return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
	kill(supervisor, SIGTERM);
	waitpid(supervisor, &status, 0);
	return -1;
}

static int wait_counter(_Atomic uint64_t *c, uint64_t min, double timeout_ms)
{
	double end = now_ms() + timeout_ms;

	while (*c < min) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(200);
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static bool page_is(int fd, unsigned int pgno, int tag)
{
	char got[PAGE], want[PAGE];

	fill_page(want, tag);
	return pread(fd, got, PAGE, (off_t)pgno * PAGE) == PAGE && !memcmp(got, want, PAGE);
}

static void print_ops(uint64_t ops)
{
	static const char *const names[64] = { [FUSE_LOOKUP] = "LOOKUP",
		[FUSE_GETATTR] = "GETATTR", [FUSE_OPEN] = "OPEN", [FUSE_READ] = "READ",
		[FUSE_WRITE] = "WRITE", [FUSE_RELEASE] = "RELEASE", [FUSE_FSYNC] = "FSYNC",
		[FUSE_FLUSH] = "FLUSH" };
	const char *sep = "";

	for (int i = 0; i < 64; i++) {
		if (!(ops & (1ULL << i)))
			continue;
		if (names[i])
			printf("%s%s", sep, names[i]);
		else
			printf("%s%d", sep, i);
		sep = ",";
	}
	printf("\n");
}

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			say(__VA_ARGS__);                                                  \
			failed = 1;                                                        \
		}                                                                          \
	} while (0)

int main(int argc, char *argv[])
{
	static const char *const opname[] = { [FUSE_GETATTR] = "GETATTR",
		[FUSE_READ] = "READ", [FUSE_FSYNC] = "FSYNC" };
	static const int hang_ops[] = { FUSE_GETATTR, FUSE_READ, FUSE_FSYNC };
	static const int hang_cmds[] = { C_GETATTR, C_READ, C_FSYNC };
	double blackout[MAX_KILLS], restart[MAX_KILLS];
	int state_fd, dev = -1, stage = -1, kills = 20, failed = 0, cmd_p[2], res_p[2];
	int answered = 0;
	pid_t server, client = -1, prober = -1;
	char self[4096];
	const char *mnt;
	uint64_t flags, resent_in_loop = 0, probe_failed = 0;
	int probe_errno = 0;
	double probe_worst = 0;
	const char *sup_path = NULL;
	struct result r;
	ssize_t n;

	if (argc == 5 && !strcmp(argv[1], "--server")) {
		gen = atoi(argv[2]);
		return server_main(atoi(argv[3]), argv[4]);
	}
	if (argc == 3 && !strcmp(argv[1], "--sup-server") && getenv(SUP_ENV_FD) &&
	    getenv(SUP_ENV_GEN)) {
		supervised = true;
		gen = atoi(getenv(SUP_ENV_GEN));
		return server_main(atoi(getenv(SUP_ENV_FD)), argv[2]);
	}
	gen = -1;
	if (argc > 2 && !strcmp(argv[1], "--supervised")) {
		sup_path = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s [--supervised RDMAFS_SUPERVISOR] MOUNTPOINT [KILLS]\n",
			argv[0]);
		return 2;
	}
	mnt = argv[1];
	if (argc == 3)
		kills = atoi(argv[2]);
	if (kills < 1 || kills > MAX_KILLS)
		return 2;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	/* Supervised: the supervisor and its generations inherit both memfds. */
	state_fd = memfd_create("restartprobe-state", sup_path ? 0 : MFD_CLOEXEC);
	if (state_fd < 0 || ftruncate(state_fd, sizeof(*S)))
		return 1;
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
	if (S == MAP_FAILED)
		return 1;
	S->ready_gen = -1;

	if (sup_path) {
		stage = memfd_create("restartprobe-stage", 0);
		server = stage < 0 ? -1 : start_supervised(sup_path, self, mnt, state_fd, stage);
	} else {
		server = spawn_server(self, mnt, state_fd, &dev, &stage, 0);
	}
	if (server < 0) {
		say("generation 0 did not mount %s", mnt);
		return 1;
	}
	mp_fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* waits for INIT */
	if (mp_fd < 0 || S->ready_gen != 0 || !S->init_in_len) {
		say("mount %s: %s", mnt, strerror(errno));
		failed = 1;
		goto out_server;
	}
	{
		const struct fuse_init_in *ii = (const void *)S->init_in;

		flags = ii->flags;
		if (ii->flags & PROBE_INIT_EXT)
			flags |= (uint64_t)ii->flags2 << 32;
		printf("kernel_protocol=%u.%u init_flags=0x%llx\n", ii->major, ii->minor,
		       (unsigned long long)flags);
	}
	if (!(flags & PROBE_PASSTHROUGH) || !(flags & PROBE_HAS_RESEND)) {
		printf("skip=%s\n", !(flags & PROBE_PASSTHROUGH) ? "no FUSE passthrough"
								  : "no FUSE_NOTIFY_RESEND");
		failed = 77;
		goto out_server;
	}

	if (pipe2(cmd_p, O_CLOEXEC) || pipe2(res_p, O_CLOEXEC))
		return 1;
	cmd_wr = cmd_p[1];
	res_rd = res_p[0];
	client = fork();
	if (client == 0)
		client_main(cmd_p[0], res_p[1]);
	prober = fork();
	if (prober == 0)
		prober_main();

	/* Sanity, before any death: the new open and the writes work, pages reach the memfd. */
	if (client_do(C_WRITE, 0, &r) || r.err) {
		say("client did not start (%s)", strerror(r.err));
		failed = 1;
		goto out_client;
	}
	printf("backing_id=%d\n", S->backing_id);
	CHECK(page_is(stage, 0, 1) && page_is(stage, 16, 1000) && page_is(stage, 64, 2000) &&
	      page_is(stage, PIN_FIRST, 4000),
	      "writes before the first death did not reach the memfd");

	for (int k = 0; k < kills; k++) {
		int op = hang_ops[k % 3];
		double t0;

		S->hung_unique = 0;
		S->hang_op = op;
		if (client_send(hang_cmds[k % 3], k))
			break;
		if (wait_counter(&S->hung_unique, 1, 10000)) {
			say("kill %d: the %s never reached generation %d", k, opname[op], k);
			failed = 1;
			break;
		}
		/* The request is read by the server and unanswered: kill it now. */
		t0 = now_ms();
		kill(server, SIGKILL);
		if (sup_path) {	/* the supervisor notices and starts the next */
			server = wait_ready(k + 1, supervisor);
		} else {
			waitpid(server, NULL, 0);
			server = spawn_server(self, mnt, state_fd, &dev, &stage, k + 1);
		}
		if (server < 0) {
			say("kill %d: generation %d did not start", k, k + 1);
			failed = 1;
			break;
		}
		if (client_wait(&r)) {
			failed = 1;
			break;
		}
		blackout[answered] = r.done_ms - t0;
		restart[answered] = S->ready_ms - t0;
		CHECK(!r.err, "kill %d: the %s in flight failed: %s", k, opname[op],
		      strerror(r.err));
		if (r.err)
			break;
		answered++;
		/* Mapping and old descriptor still go to the memfd; a new open reuses the id
		 * generation 0 registered. */
		if (client_do(C_WRITE, k + 1, &r))
			break;
		CHECK(!r.err, "kill %d: write after the restart: %s", k, strerror(r.err));
		if (client_do(C_NEWOPEN, k + 1, &r))
			break;
		CHECK(!r.err, "kill %d: new open with the old backing id: %s", k, strerror(r.err));
		CHECK(page_is(stage, 16 + k + 1, 1000 + k + 1), "kill %d: mapped write lost", k);
		CHECK(page_is(stage, 64 + k + 1, 2000 + k + 1), "kill %d: old-fd write lost", k);
		CHECK(page_is(stage, 128 + k + 1, 3000 + k + 1), "kill %d: new-fd write lost", k);
		CHECK(page_is(stage, PIN_FIRST + k + 1, 4000 + k + 1), "kill %d: pinned write lost",
		      k);
		CHECK(page_is(stage, 0, 1), "kill %d: page written before the deaths lost", k);
		if (failed)
			break;
	}

	resent_in_loop = S->resent_same_unique;
	probe_failed = S->probe_enotconn + S->probe_errors;
	probe_errno = S->probe_last_errno;
	probe_worst = S->probe_worst_ms;
	if (!failed && !sup_path) {	/* (needs control of the spawn and /dev/fuse) */
		/* Served through a cloned /dev/fuse file (libfuse's clone_fd): the request
		 * in flight when that server dies is on the clone's queue, which dies with
		 * it, although the holder keeps the connection. */
		pid_t cloned;

		S->use_clone = 1;
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		cloned = spawn_server(self, mnt, state_fd, &dev, &stage, kills + 1);
		S->use_clone = 0;
		S->hung_unique = 0;
		S->hang_op = FUSE_GETATTR;
		if (cloned < 0 || client_send(C_GETATTR, 0) ||
		    wait_counter(&S->hung_unique, 1, 10000)) {
			say("clone generation did not start or get the request");
			failed = 1;
			server = cloned;
			goto out_client;
		}
		kill(cloned, SIGKILL);
		waitpid(cloned, NULL, 0);
		server = spawn_server(self, mnt, state_fd, &dev, &stage, kills + 2);
		if (server < 0 || client_wait(&r)) {
			failed = 1;
			goto out_client;
		}
		printf("inflight_on_cloned_fd_at_death=%s\n", r.err ? strerror(r.err) : "answered");
		if (client_do(C_WRITE, kills + 2, &r))
			r.err = EIO;
		CHECK(!r.err && page_is(stage, PIN_FIRST + kills + 2, 4000 + kills + 2),
		      "the mount did not survive the death of a clone_fd server");
	}
	if (!failed) {
		/* A second backing id for the same memfd while an open uses the first. */
		S->use_new_id = 1;
		if (!client_do(C_NEWOPEN, 400, &r))
			printf("new_backing_id=%d open_with_new_id=%s\n", S->new_id,
			       r.err ? strerror(r.err) : "ok");
		/* FORGET of a node id generation 0 created: the holder invalidates g's entry
		 * (it can write notifications on the descriptor it holds), the client closes
		 * g, and the kernel forgets the inode. */
		if (!sup_path && !client_do(C_CLOSE_G, 0, &r)) {
			struct fuse_notify_inval_entry_out e = { .parent = FUSE_ROOT_ID,
								 .namelen = 1 };
			struct fuse_out_header h = { .len = sizeof(h) + sizeof(e) + 2,
						     .error = FUSE_NOTIFY_INVAL_ENTRY };
			struct iovec iov[] = { { &h, sizeof(h) }, { &e, sizeof(e) }, { "g", 2 } };
			uint64_t before = S->foreign_forget;

			if (writev(dev, iov, 3) != (ssize_t)h.len)
				say("INVAL_ENTRY: %s", strerror(errno));
			printf("forget_of_earlier_node_id=%s\n",
			       wait_counter(&S->foreign_forget, before + 1, 5000) ? "not seen"
										    : "delivered");
		}
	}

	S->probe_stop = 1;	/* (again at out_client: harmless) */
	waitpid(prober, NULL, 0);
	qsort(blackout, answered, sizeof(double), cmp_double);
	printf("kills=%d answered=%d\n", kills, answered);
	if (answered)
		printf("blackout_ms median=%.2f worst=%.2f best=%.2f\n", blackout[answered / 2],
		       blackout[answered - 1], blackout[0]);
	qsort(restart, answered, sizeof(double), cmp_double);
	if (answered)	/* kill to the new server's first read of /dev/fuse */
		printf("restart_ms median=%.2f worst=%.2f\n", restart[answered / 2],
		       restart[answered - 1]);
	/* Errors counted to the end (the clone phase may fail a stat in flight, see above);
	 * failed and worst (the longest stat) during the kills. */
	printf("probes=%llu enotconn=%llu other_errors=%llu failed_during_kills=%llu "
	       "worst_ms=%.2f\n",
	       (unsigned long long)S->probes, (unsigned long long)S->probe_enotconn,
	       (unsigned long long)S->probe_errors, (unsigned long long)probe_failed,
	       probe_worst);
	printf("resent_with_original_unique=%llu\n", (unsigned long long)resent_in_loop);
	printf("resent=%llu ops=", (unsigned long long)S->resent);
	print_ops(S->resent_ops);
	printf("requests_for_earlier_node_ids=%llu ops=", (unsigned long long)S->foreign_nodeid);
	print_ops(S->foreign_nodeid_ops);
	printf("requests_with_earlier_handles=%llu ops=", (unsigned long long)S->foreign_fh);
	print_ops(S->foreign_fh_ops);
	CHECK(answered == kills, "%d of %d in-flight requests answered", answered, kills);
	CHECK(!S->probe_enotconn, "the mount answered ENOTCONN");
	CHECK(!probe_failed, "the mount failed %llu stats during the kills (last: %s)",
	      (unsigned long long)probe_failed, strerror(probe_errno));
	CHECK(resent_in_loop == (uint64_t)answered,
	      "%llu of %d in-flight requests resent with their unique",
	      (unsigned long long)resent_in_loop, answered);
out_client:
	S->probe_stop = 1;
	waitpid(prober, NULL, 0);
	if (!client_send(C_EXIT, 0))
		waitpid(client, NULL, 0);
out_server:
	if (mp_fd >= 0)
		close(mp_fd);
	if (umount2(mnt, MNT_DETACH))
		say("umount %s: %s", mnt, strerror(errno));
	if (sup_path) {
		if (supervisor > 0 && stop_supervised() && !failed) {
			say("the supervisor did not exit 0 after the unmount");
			failed = 1;
		}
	} else {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	return failed;
}
