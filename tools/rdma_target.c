// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_target: the passive RDMA peer. Maps a file (typically on an rdmafs mount) shared,
 * registers the mapping for remote writes, tells each client where it is, and on a
 * client's COMMIT makes the range durable with fsync and answers with its XXH3-64.
 * With --lease it holds an rdmafs lease on the file while the mapping is pinned and lets
 * go (deregister, unmap, release) when the lease is broken.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#ifdef HAVE_LIBRDMAFS
#include <rdmafs.h>
#endif

#include "rdma_common.h"

#define SEND_SLOTS 4

struct target_opts {
	const char *bind_addr;
	const char *port;
	const char *path; /* NULL with --anon */
	uint64_t size;
	unsigned int clients; /* 0: serve forever */
	unsigned int recv_depth;
	bool no_fsync;
	bool lease;
	bool verbose;
};

/* The memory remote peers write into: a shared file mapping or anonymous memory. */
struct region {
	void *map;
	uint64_t len;
	int fd; /* -1 for anonymous memory */
	int lease_fd; /* rdmafs lease on fd, -1 if none; readable when it is being broken */
};

/* One connected client. Owns everything it points to except the region. */
struct conn {
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_mr *region_mr;
	struct ibv_mr *msg_mr;
	struct rt_msg *msgs; /* recv_depth receive slots, then SEND_SLOTS send slots */
	unsigned int recv_depth;
	unsigned int send_next, sends_busy;
	bool inline_send, qp_created, disconnecting, failed;
	/* What the immediates of WRITE_WITH_IMM named since the last commit. */
	uint64_t named, named_lo, named_hi;
	uint64_t commits;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdma_target [OPTIONS] FILE\n"
		"       rdma_target [OPTIONS] --anon --size SIZE\n"
		"\n"
		"Maps FILE (MAP_SHARED, grown to SIZE if shorter), registers the mapping with\n"
		"ibv_reg_mr for remote writes and serves RDMA clients (rdma_writer) through\n"
		"rdma_cm: each gets {addr, rkey, len} in a SEND; its COMMIT makes a range durable\n"
		"with fsync(FILE) and is answered with the status and XXH3-64 of the range.\n"
		"Prints \"listening on ADDR:PORT\" once it accepts connections.\n"
		"\n"
		"  -b, --bind ADDR      local address to listen on (default 0.0.0.0: all RDMA devices)\n"
		"  -p, --port PORT      rdma_cm port (default " RT_DEFAULT_PORT ")\n"
		"  -s, --size SIZE      region size (K, M, G suffixes); default: FILE's size\n"
		"  -n, --clients N      exit after serving N clients one after another\n"
		"                       (default 1; 0 serves until SIGINT/SIGTERM)\n"
		"      --anon           register anonymous memory instead of a file (a baseline)\n"
		"      --no-fsync       answer COMMIT without fsync\n"
		"      --lease          take an rdmafs lease on FILE (librdmafs rdmafs_lease) before\n"
		"                       registering it; when the lease is broken (a shrinking\n"
		"                       truncate, a hole punch, eviction or shutdown of rdmafs),\n"
		"                       disconnect the client, deregister, unmap, release the lease\n"
		"                       and exit 0 (prints \"lease broken\" and \"lease released\")\n"
		"      --recv-depth N   receives posted, bounds WRITE_WITH_IMM in flight (default 128)\n"
		"  -v, --verbose        log every named range\n"
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 all clients served, 1 error (e.g. \"ibv_reg_mr failed: Bad address\"\n"
		"when the kernel refuses a long-term pin of FILE's mapping), 2 usage.\n");
}

static int parse_opts(int argc, char **argv, struct target_opts *o)
{
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "clients", required_argument, NULL, 'n' },
		{ "anon", no_argument, NULL, 'A' },
		{ "no-fsync", no_argument, NULL, 'F' },
		{ "lease", no_argument, NULL, 'L' },
		{ "recv-depth", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool anon = false;
	uint64_t v;
	int c;

	*o = (struct target_opts){ .bind_addr = "0.0.0.0", .port = RT_DEFAULT_PORT,
				   .clients = 1, .recv_depth = 128 };
	while ((c = getopt_long(argc, argv, "b:p:s:n:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': o->bind_addr = optarg; break;
		case 'p': o->port = optarg; break;
		case 's':
			if (rt_parse_size(optarg, &o->size) || o->size == 0) {
				rt_err("bad size '%s'", optarg);
				return -1;
			}
			break;
		case 'n':
		case 'R':
			if (rt_parse_size(optarg, &v) || v > 1u << 20 || (c == 'R' && v == 0)) {
				rt_err("bad number '%s'", optarg);
				return -1;
			}
			if (c == 'n')
				o->clients = v;
			else
				o->recv_depth = v;
			break;
		case 'A': anon = true; break;
		case 'F': o->no_fsync = true; break;
		case 'L':
#ifndef HAVE_LIBRDMAFS
			rt_err("--lease: built without librdmafs");
			return -1;
#endif
			o->lease = true;
			break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (anon) {
		if (o->lease) {
			rt_err("--lease needs a FILE on an rdmafs mount, not --anon");
			return -1;
		}
		if (optind != argc || !o->size) {
			rt_err("--anon takes --size and no FILE");
			return -1;
		}
		return 0;
	}
	if (optind != argc - 1) {
		rt_err("expected one FILE (or --anon)");
		return -1;
	}
	o->path = argv[optind];
	return 0;
}

static int region_open(struct region *r, const struct target_opts *o)
{
	struct stat st;
	int err;

	r->fd = -1;
	r->lease_fd = -1;
	if (!o->path) {
		r->len = o->size;
		r->map = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (r->map == MAP_FAILED) {
			err = errno;
			rt_err("mmap of %" PRIu64 " anonymous bytes failed: %s", r->len,
			       strerror(err));
			return -err;
		}
		return 0;
	}
	/* Created only when its size is known. */
	r->fd = open(o->path, O_RDWR | O_CLOEXEC | (o->size ? O_CREAT : 0), 0644);
	if (r->fd < 0) {
		err = errno;
		rt_err("open %s: %s", o->path, strerror(err));
		return -err;
	}
	if (fstat(r->fd, &st)) {
		err = errno;
		rt_err("stat %s: %s", o->path, strerror(err));
		goto err_close;
	}
	r->len = o->size ? o->size : (uint64_t)st.st_size;
	if (r->len == 0) {
		rt_err("%s is empty: give --size", o->path);
		err = EINVAL;
		goto err_close;
	}
	if ((uint64_t)st.st_size < r->len && ftruncate(r->fd, r->len)) {
		err = errno;
		rt_err("ftruncate %s to %" PRIu64 ": %s", o->path, r->len, strerror(err));
		goto err_close;
	}
	r->map = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		err = errno;
		rt_err("mmap %s: %s", o->path, strerror(err));
		goto err_close;
	}
	return 0;

err_close:
	close(r->fd);
	r->fd = -1;
	return -err;
}

/*
 * Takes the lease before the first ibv_reg_mr: a shrinking truncate between the pin and
 * the lease would leave the pin on pages the file no longer has.
 */
static int region_lease(struct region *r, const struct target_opts *o)
{
#ifdef HAVE_LIBRDMAFS
	int fd = rdmafs_lease(r->fd, 0);

	if (fd < 0) {
		rt_err("rdmafs_lease %s failed: %s%s", o->path, strerror(-fd),
		       fd == -EXDEV ? " (not on an rdmafs mount)" : "");
		return fd;
	}
	r->lease_fd = fd;
	printf("lease held on %s\n", o->path);
	fflush(stdout);
	return 0;
#else
	(void)r;
	(void)o;
	return -ENOTSUP;
#endif
}

/* Unmaps, then releases the lease (the pins must be gone by now), then closes the file. */
static void region_close(struct region *r)
{
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, r->len);
	r->map = NULL;
	if (r->lease_fd >= 0)
		close(r->lease_fd);
	r->lease_fd = -1;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static int post_recv(struct conn *c, unsigned int slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)&c->msgs[slot],
		.length = sizeof(struct rt_msg),
		.lkey = c->msg_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 }, *bad;
	int ret = ibv_post_recv(c->id->qp, &wr, &bad);

	if (ret) {
		rt_err_errno("ibv_post_recv", ret);
		return -ret;
	}
	return 0;
}

/* Sends @m (host order). Inline when the QP allows it, else from a send slot. */
static int post_send(struct conn *c, const struct rt_msg *m)
{
	struct rt_msg *buf = &c->msgs[c->recv_depth + c->send_next];
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = sizeof(*buf),
			       .lkey = c->msg_mr->lkey };
	struct ibv_send_wr wr = { .wr_id = UINT64_MAX, .sg_list = &sge, .num_sge = 1,
				  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED },
			   *bad;
	int ret;

	if (c->sends_busy == SEND_SLOTS) {
		rt_err("client sends faster than it waits for answers");
		return -EPROTO;
	}
	*buf = *m;
	rt_msg_swap(buf);
	if (c->inline_send)
		wr.send_flags |= IBV_SEND_INLINE;
	ret = ibv_post_send(c->id->qp, &wr, &bad);
	if (ret) {
		rt_err_errno("ibv_post_send", ret);
		return -ret;
	}
	c->send_next = (c->send_next + 1) % SEND_SLOTS;
	c->sends_busy++;
	return 0;
}

static void conn_destroy(struct conn *c)
{
	if (!c)
		return;
	if (c->qp_created)
		rdma_destroy_qp(c->id);
	if (c->region_mr)
		ibv_dereg_mr(c->region_mr);
	if (c->msg_mr)
		ibv_dereg_mr(c->msg_mr);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
	if (c->id)
		rdma_destroy_id(c->id);
	free(c->msgs);
	free(c);
}

/* Sets up a connection for the request on @id and accepts it. Takes @id in all cases. */
static int conn_create(struct rdma_cm_id *id, struct region *r, const struct target_opts *o,
		       struct conn **out)
{
	struct ibv_qp_init_attr qpa = { 0 };
	struct rdma_conn_param cp = { 0 };
	unsigned int slots = o->recv_depth + SEND_SLOTS, i;
	struct conn *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return -ENOMEM;
	}
	c->id = id;
	c->recv_depth = o->recv_depth;
	c->msgs = calloc(slots, sizeof(*c->msgs));
	if (!c->msgs) {
		err = ENOMEM;
		goto err_reject;
	}
	c->pd = ibv_alloc_pd(id->verbs);
	if (!c->pd) {
		err = errno;
		rt_err_errno("ibv_alloc_pd", err);
		goto err_reject;
	}
	/* The pin: this is what the kernel refuses on most file systems (EFAULT). */
	c->region_mr = ibv_reg_mr(c->pd, r->map, r->len,
				  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					  IBV_ACCESS_REMOTE_READ);
	if (!c->region_mr) {
		err = errno;
		rt_err("ibv_reg_mr failed: %s (%s, %" PRIu64 " bytes)", strerror(err),
		       o->path ? o->path : "anonymous memory", r->len);
		goto err_reject;
	}
	c->msg_mr = ibv_reg_mr(c->pd, c->msgs, slots * sizeof(*c->msgs), IBV_ACCESS_LOCAL_WRITE);
	if (!c->msg_mr) {
		err = errno;
		rt_err("ibv_reg_mr of message buffers failed: %s", strerror(err));
		goto err_reject;
	}
	c->cc = ibv_create_comp_channel(id->verbs);
	if (!c->cc) {
		err = errno;
		rt_err_errno("ibv_create_comp_channel", err);
		goto err_reject;
	}
	err = -rt_set_nonblock(c->cc->fd);
	if (err)
		goto err_reject;
	c->cq = ibv_create_cq(id->verbs, o->recv_depth + 2 * SEND_SLOTS, NULL, c->cc, 0);
	if (!c->cq) {
		err = errno;
		rt_err_errno("ibv_create_cq", err);
		goto err_reject;
	}
	if (ibv_req_notify_cq(c->cq, 0)) {
		err = errno;
		rt_err_errno("ibv_req_notify_cq", err);
		goto err_reject;
	}
	qpa.send_cq = c->cq;
	qpa.recv_cq = c->cq;
	qpa.qp_type = IBV_QPT_RC;
	qpa.sq_sig_all = 1;
	qpa.cap.max_send_wr = 2 * SEND_SLOTS;
	qpa.cap.max_recv_wr = o->recv_depth;
	qpa.cap.max_send_sge = 1;
	qpa.cap.max_recv_sge = 1;
	qpa.cap.max_inline_data = sizeof(struct rt_msg);
	if (rdma_create_qp(id, c->pd, &qpa)) {
		/* Some devices have no inline data: ask again without. */
		qpa.cap.max_inline_data = 0;
		if (rdma_create_qp(id, c->pd, &qpa)) {
			err = errno;
			rt_err_errno("rdma_create_qp", err);
			goto err_reject;
		}
	}
	c->qp_created = true;
	c->inline_send = qpa.cap.max_inline_data >= sizeof(struct rt_msg);
	for (i = 0; i < o->recv_depth; i++) {
		err = -post_recv(c, i);
		if (err)
			goto err_reject;
	}
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.rnr_retry_count = 7;
	if (rdma_accept(id, &cp)) {
		err = errno;
		rt_err_errno("rdma_accept", err);
		goto err_destroy;
	}
	*out = c;
	return 0;

err_reject:
	rdma_reject(id, NULL, 0);
err_destroy:
	conn_destroy(c);
	return -err;
}

static int send_hello(struct conn *c, const struct region *r)
{
	struct rt_msg m;

	rt_msg_init(&m, RT_HELLO);
	m.addr = (uintptr_t)r->map;
	m.rkey = c->region_mr->rkey;
	m.length = r->len;
	return post_send(c, &m);
}

static int handle_commit(struct conn *c, const struct region *r, const struct target_opts *o,
			 const struct rt_msg *req)
{
	uint64_t off = req->offset, len = req->length;
	struct rt_msg m;
	double t0 = rt_now(), t1;

	rt_msg_init(&m, RT_COMMIT_REPLY);
	if (req->flags & RT_COMMIT_NAMED) {
		off = c->named ? c->named_lo : 0;
		len = c->named ? c->named_hi - c->named_lo : 0;
	}
	if (off > r->len || len > r->len - off) {
		m.status = ERANGE;
	} else if (r->fd >= 0 && !o->no_fsync && fsync(r->fd)) {
		m.status = errno;
		rt_err("commit: fsync %s: %s", o->path, strerror(errno));
	}
	t1 = rt_now();
	if (!m.status)
		m.hash = XXH3_64bits((const char *)r->map + off, len);
	m.offset = off;
	m.length = len;
	m.named = c->named;
	printf("commit offset=%" PRIu64 " length=%" PRIu64 " named=%" PRIu64
	       " status=%d fsync_ms=%.1f xxh3=%016" PRIx64 "\n",
	       off, len, c->named, m.status, (t1 - t0) * 1e3, m.hash);
	fflush(stdout);
	c->named = c->named_lo = c->named_hi = 0;
	c->commits++;
	return post_send(c, &m);
}

static int handle_imm(struct conn *c, const struct region *r, const struct target_opts *o,
		      const struct ibv_wc *wc)
{
	uint64_t off = (uint64_t)ntohl(wc->imm_data) * RT_IMM_UNIT, len = wc->byte_len;

	if (off > r->len || len > r->len - off) {
		rt_err("immediate names %" PRIu64 "+%" PRIu64 ", outside the region", off, len);
		return -ERANGE;
	}
	if (o->verbose)
		printf("written offset=%" PRIu64 " length=%" PRIu64 "\n", off, len);
	if (!c->named || off < c->named_lo)
		c->named_lo = off;
	if (!c->named || off + len > c->named_hi)
		c->named_hi = off + len;
	c->named += len;
	return 0;
}

/* Handles the completions of @c. A negative return ends the connection. */
static int conn_poll(struct conn *c, const struct region *r, const struct target_opts *o)
{
	struct ibv_wc wc[16];
	int n, i, ret;

	ret = rt_cq_event(c->cc);
	if (ret) {
		rt_err_errno("ibv_get_cq_event", -ret);
		return ret;
	}
	while ((n = ibv_poll_cq(c->cq, 16, wc)) > 0) {
		for (i = 0; i < n; i++) {
			struct rt_msg *m;

			if (wc[i].status != IBV_WC_SUCCESS) {
				/* Flushed work requests after a disconnect are no news. */
				if (wc[i].status == IBV_WC_WR_FLUSH_ERR)
					return -ECONNRESET;
				rt_err("completion error: %s (opcode %d)",
				       ibv_wc_status_str(wc[i].status), wc[i].opcode);
				return -EIO;
			}
			switch (wc[i].opcode) {
			case IBV_WC_SEND:
				c->sends_busy--;
				continue;
			case IBV_WC_RECV_RDMA_WITH_IMM:
				ret = handle_imm(c, r, o, &wc[i]);
				break;
			case IBV_WC_RECV:
				m = &c->msgs[wc[i].wr_id];
				rt_msg_swap(m);
				if (rt_msg_check(m, wc[i].byte_len) || m->type != RT_COMMIT) {
					rt_err("malformed message from the client (%u bytes)",
					       wc[i].byte_len);
					return -EPROTO;
				}
				ret = handle_commit(c, r, o, m);
				break;
			default:
				rt_err("unexpected completion opcode %d", wc[i].opcode);
				return -EPROTO;
			}
			if (ret)
				return ret;
			ret = post_recv(c, wc[i].wr_id);
			if (ret)
				return ret;
		}
	}
	if (n < 0) {
		rt_err("ibv_poll_cq failed");
		return -EIO;
	}
	return 0;
}

static const char *peer_name(struct rdma_cm_id *id, char *buf, size_t len)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);

	if (getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
							  sizeof(struct sockaddr_in),
			buf, len, NULL, 0, NI_NUMERICHOST))
		snprintf(buf, len, "?");
	return buf;
}

static int listen_on(struct rdma_event_channel *ch, const struct target_opts *o,
		     struct rdma_cm_id **out)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM },
			*ai;
	struct rdma_cm_id *id;
	int ret, err;

	ret = getaddrinfo(o->bind_addr, o->port, &hints, &ai);
	if (ret) {
		rt_err("bad address %s port %s: %s", o->bind_addr, o->port, gai_strerror(ret));
		return -EINVAL;
	}
	if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP)) {
		err = errno;
		rt_err_errno("rdma_create_id", err);
		goto err_free;
	}
	if (rdma_bind_addr(id, ai->ai_addr)) {
		err = errno;
		rt_err("rdma_bind_addr %s failed: %s%s", o->bind_addr, strerror(err),
		       err == ENODEV || err == EADDRNOTAVAIL ? " (no RDMA device on it?)" : "");
		goto err_destroy;
	}
	if (rdma_listen(id, 8)) {
		err = errno;
		rt_err_errno("rdma_listen", err);
		goto err_destroy;
	}
	freeaddrinfo(ai);
	*out = id;
	return 0;

err_destroy:
	rdma_destroy_id(id);
err_free:
	freeaddrinfo(ai);
	return -err;
}

static int serve(struct rdma_event_channel *ch, struct region *r, const struct target_opts *o)
{
	struct conn *c = NULL;
	unsigned int served = 0, failed = 0;
	char peer[64];
	int ret = 0;

	while (!stop && (!o->clients || served < o->clients)) {
		struct pollfd pfd[3] = { { .fd = ch->fd, .events = POLLIN },
					 { .fd = c ? c->cc->fd : -1, .events = POLLIN },
					 { .fd = r->lease_fd, .events = POLLIN } };
		struct rdma_cm_event *ev;
		struct rdma_cm_id *ev_id;
		enum rdma_cm_event_type type;

		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			rt_err_errno("poll", errno);
			break;
		}
		if (pfd[2].revents) {
			/*
			 * The lease is being broken (or the daemon went away): the pin
			 * must go. The client's writes fail from here on.
			 */
			printf("lease broken: deregistering and releasing %s\n", o->path);
			fflush(stdout);
			if (c) {
				rdma_disconnect(c->id);
				printf("client done: %" PRIu64 " commits, cut by the lease break\n",
				       c->commits);
			}
			conn_destroy(c);	/* ibv_dereg_mr: the pin is gone */
			region_close(r);	/* munmap, then the lease is released */
			printf("lease released\n");
			fflush(stdout);
			return 0;
		}
		if (c && (pfd[1].revents & POLLIN) && !c->disconnecting) {
			int err = conn_poll(c, r, o);

			if (err) {
				c->failed = err != -ECONNRESET;
				c->disconnecting = true;
				rdma_disconnect(c->id);
			}
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		ret = rt_get_cm_event(ch, 0, &ev);
		if (ret == -ETIMEDOUT) {
			ret = 0;
			continue;
		}
		if (ret) {
			rt_err_errno("rdma_get_cm_event", -ret);
			break;
		}
		type = ev->event;
		ev_id = ev->id;
		/* Acked first: rdma_destroy_id waits for the acks of its events. */
		rdma_ack_cm_event(ev);
		if (type == RDMA_CM_EVENT_CONNECT_REQUEST && c) {
			/* One client at a time: the region has one writer. */
			rdma_reject(ev_id, NULL, 0);
			rdma_destroy_id(ev_id);
			continue;
		}
		switch (type) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			ret = conn_create(ev_id, r, o, &c);
			if (ret)
				return ret; /* e.g. ibv_reg_mr refused: nothing to serve */
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			if (!c || ev_id != c->id)
				break;
			printf("client %s connected\n", peer_name(c->id, peer, sizeof(peer)));
			fflush(stdout);
			if (send_hello(c, r)) {
				c->disconnecting = true;
				rdma_disconnect(c->id);
			}
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			if (!c || ev_id != c->id)
				break;
			if (type != RDMA_CM_EVENT_DISCONNECTED) {
				rt_err("client connection failed: %s", rdma_event_str(type));
				c->failed = true;
			} else if (!c->disconnecting) {
				rdma_disconnect(c->id);
			}
			printf("client done: %" PRIu64 " commits%s\n", c->commits,
			       c->failed ? ", failed" : "");
			fflush(stdout);
			failed += c->failed;
			conn_destroy(c);
			c = NULL;
			served++;
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			rt_err("RDMA device removed");
			conn_destroy(c);
			return -ENODEV;
		default:
			break;
		}
	}
	conn_destroy(c);
	if (!ret && failed)
		ret = -EIO;
	return ret;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct rdma_event_channel *ch;
	struct rdma_cm_id *listen_id = NULL;
	struct target_opts o;
	struct region r = { 0 };
	int ret;

	rt_prog = "rdma_target";
	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (region_open(&r, &o))
		return 1;
	if (o.lease && region_lease(&r, &o))
		goto err_region;
	ch = rdma_create_event_channel();
	if (!ch) {
		rt_err("rdma_create_event_channel failed: %s (is rdma_ucm loaded?)",
		       strerror(errno));
		goto err_region;
	}
	if (rt_set_nonblock(ch->fd))
		goto err_channel;
	if (listen_on(ch, &o, &listen_id))
		goto err_channel;
	printf("listening on %s:%s, region %" PRIu64 " bytes (%s)\n", o.bind_addr, o.port, r.len,
	       o.path ? o.path : "anonymous memory");
	fflush(stdout);

	ret = serve(ch, &r, &o);

	rdma_destroy_id(listen_id);
	rdma_destroy_event_channel(ch);
	region_close(&r);
	return ret ? 1 : 0;

err_channel:
	rdma_destroy_event_channel(ch);
err_region:
	region_close(&r);
	return 1;
}
