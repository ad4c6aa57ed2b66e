// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_writer: the active RDMA peer. Connects to rdma_target with rdma_cm, RDMA-WRITEs a
 * local file or generated data into the target's region (several chunks in flight), asks
 * the target to make it durable and compares the target's XXH3-64 with its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "rdma_common.h"

#define CM_TIMEOUT_MS 5000
#define CQ_TIMEOUT_MS 30000
#define WR_COMMIT (UINT64_MAX - 1)

struct writer_opts {
	const char *server;
	const char *port;
	const char *src_addr;
	const char *file;
	uint64_t size;
	uint64_t seed;
	uint64_t chunk;
	uint64_t offset; /* in the remote region */
	unsigned int depth;
	double duration;
	double wait;
	double hold;
	bool imm;
	bool vary;
	bool quiet;
};

/* What is written: a read-only mapping of the file, or generated data. */
struct source {
	void *buf;
	uint64_t len;
	bool copied; /* buf is anonymous memory (generated, or the file read into it) */
};

/* The connection and everything registered on it. */
struct link {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_mr *src_mr;
	struct ibv_mr *msg_mr;
	struct rt_msg msgs[2]; /* [0] receive, [1] send */
	bool qp_created;
	/* From the target's HELLO. */
	uint64_t remote_addr, remote_len;
	uint32_t rkey;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdma_writer [OPTIONS] --file FILE SERVER\n"
		"       rdma_writer [OPTIONS] --size SIZE [--seed N] SERVER\n"
		"\n"
		"Connects to rdma_target at SERVER through rdma_cm and RDMA-WRITEs FILE (or SIZE\n"
		"bytes generated from a seed) into the target's region, CHUNK bytes per work\n"
		"request, DEPTH in flight. Then asks the target to commit (fsync) the range and\n"
		"checks that the XXH3-64 the target computes matches the local one. Prints the\n"
		"write bandwidth and a final line \"result key=value ...\" for scripts.\n"
		"\n"
		"  -f, --file FILE       data to write\n"
		"  -s, --size SIZE       generate SIZE bytes (K, M, G suffixes) instead\n"
		"      --seed N          seed of the generated data (default 1)\n"
		"  -o, --offset OFF      where in the remote region to write (default 0)\n"
		"  -c, --chunk SIZE      bytes per RDMA WRITE (default 1M)\n"
		"  -d, --depth N         writes in flight (default 8)\n"
		"  -i, --imm             RDMA WRITE_WITH_IMM: each write names its range (offset\n"
		"                        in 4 KiB units); the commit covers what was named and\n"
		"                        the target's count of named bytes is checked too\n"
		"  -t, --duration SECS   benchmark: write the data over and over (whole passes)\n"
		"                        for at least SECS seconds, then commit and check\n"
		"  -V, --vary            with --size and --duration: each pass writes other data\n"
		"                        (8 bytes in every 4 KiB carry the pass number), so the\n"
		"                        region keeps changing; the check is against the last pass\n"
		"  -p, --port PORT       rdma_cm port (default " RT_DEFAULT_PORT ")\n"
		"  -b, --bind ADDR       local address to connect from\n"
		"  -w, --wait SECS       retry the connection this long while the target is not\n"
		"                        listening yet (default 10)\n"
		"  -H, --hold SECS       after the check, keep the connection (and so the target's\n"
		"                        registration) up to SECS seconds or until the target\n"
		"                        disconnects (prints \"target disconnected\")\n"
		"  -q, --quiet           only the result line\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 written and checksums match, 1 error or mismatch, 2 usage.\n");
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < 0 ? -EINVAL : 0;
}

static int parse_opts(int argc, char **argv, struct writer_opts *o)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "offset", required_argument, NULL, 'o' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "depth", required_argument, NULL, 'd' },
		{ "imm", no_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 't' },
		{ "vary", no_argument, NULL, 'V' },
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "wait", required_argument, NULL, 'w' },
		{ "hold", required_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	*o = (struct writer_opts){ .port = RT_DEFAULT_PORT, .seed = 1, .chunk = 1 << 20,
				   .depth = 8, .wait = 10 };
	while ((c = getopt_long(argc, argv, "f:s:o:c:d:it:Vp:b:w:H:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->file = optarg; break;
		case 's':
		case 'S':
		case 'o':
		case 'c':
		case 'd':
			if (rt_parse_size(optarg, &v)) {
				rt_err("bad number '%s'", optarg);
				return -1;
			}
			if (c == 's')
				o->size = v;
			else if (c == 'S')
				o->seed = v;
			else if (c == 'o')
				o->offset = v;
			else if (c == 'c')
				o->chunk = v;
			else
				o->depth = v;
			break;
		case 'i': o->imm = true; break;
		case 'V': o->vary = true; break;
		case 't':
		case 'w':
		case 'H':
			if (parse_seconds(optarg, c == 't' ? &o->duration :
						  c == 'w' ? &o->wait : &o->hold)) {
				rt_err("bad number of seconds '%s'", optarg);
				return -1;
			}
			break;
		case 'p': o->port = optarg; break;
		case 'b': o->src_addr = optarg; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc - 1) {
		rt_err("expected one SERVER address");
		return -1;
	}
	o->server = argv[optind];
	if (!o->file == !o->size) {
		rt_err("give either --file or --size");
		return -1;
	}
	if (o->chunk == 0 || o->chunk > (1u << 30) || o->depth == 0 || o->depth > 1024) {
		rt_err("chunk must be 1 byte to 1 GiB, depth 1 to 1024");
		return -1;
	}
	if (o->vary && o->file) {
		rt_err("--vary needs generated data (--size), not --file");
		return -1;
	}
	if (o->imm && (o->chunk % RT_IMM_UNIT || o->offset % RT_IMM_UNIT)) {
		rt_err("--imm needs chunk and offset in multiples of %u", RT_IMM_UNIT);
		return -1;
	}
	return 0;
}

static int source_open(struct source *s, const struct writer_opts *o)
{
	struct stat st;
	int fd, err;

	if (!o->file) {
		s->len = o->size;
		s->buf = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (s->buf == MAP_FAILED) {
			err = errno;
			rt_err("mmap of %" PRIu64 " bytes failed: %s", s->len, strerror(err));
			return -err;
		}
		s->copied = true;
		rt_fill_random(s->buf, s->len, o->seed);
		return 0;
	}
	fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		rt_err("open %s: %s", o->file, strerror(err));
		return -err;
	}
	if (fstat(fd, &st)) {
		err = errno;
		rt_err("stat %s: %s", o->file, strerror(err));
		goto err_close;
	}
	s->len = st.st_size;
	if (s->len == 0) {
		rt_err("%s is empty", o->file);
		err = EINVAL;
		goto err_close;
	}
	/* Read-only long-term pins are allowed on any file system: no copy needed. */
	s->buf = mmap(NULL, s->len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (s->buf == MAP_FAILED) {
		err = errno;
		rt_err("mmap %s: %s", o->file, strerror(err));
		goto err_close;
	}
	close(fd);
	return 0;

err_close:
	close(fd);
	return -err;
}

/* Replaces a file mapping that could not be registered by a private copy of it. */
static int source_copy(struct source *s)
{
	void *copy = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	if (copy == MAP_FAILED)
		return -errno;
	memcpy(copy, s->buf, s->len);
	munmap(s->buf, s->len);
	s->buf = copy;
	s->copied = true;
	return 0;
}

static void source_close(struct source *s)
{
	if (s->buf && s->buf != MAP_FAILED)
		munmap(s->buf, s->len);
}

static void link_destroy(struct link *l)
{
	if (l->qp_created)
		rdma_destroy_qp(l->id);
	if (l->src_mr)
		ibv_dereg_mr(l->src_mr);
	if (l->msg_mr)
		ibv_dereg_mr(l->msg_mr);
	if (l->cq)
		ibv_destroy_cq(l->cq);
	if (l->cc)
		ibv_destroy_comp_channel(l->cc);
	if (l->pd)
		ibv_dealloc_pd(l->pd);
	if (l->id)
		rdma_destroy_id(l->id);
	if (l->ch)
		rdma_destroy_event_channel(l->ch);
	memset(l, 0, sizeof(*l));
}

/*
 * Waits for the rdma_cm event @want on the link. Returns 0, -ECONNREFUSED when the target
 * rejected or could not be reached (worth retrying), or another -errno.
 */
static int expect_cm_event(struct link *l, enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type got;
	int ret, status;

	ret = rt_get_cm_event(l->ch, CM_TIMEOUT_MS, &ev);
	if (ret) {
		rt_err("waiting for %s: %s", rdma_event_str(want), strerror(-ret));
		return ret;
	}
	got = ev->event;
	status = ev->status;
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	if (got == RDMA_CM_EVENT_REJECTED || got == RDMA_CM_EVENT_UNREACHABLE ||
	    got == RDMA_CM_EVENT_CONNECT_ERROR)
		return -ECONNREFUSED;
	rt_err("expected %s, got %s (status %d)", rdma_event_str(want), rdma_event_str(got),
	       status);
	return -EPROTO;
}

static int post_recv(struct link *l)
{
	struct ibv_sge sge = { .addr = (uintptr_t)&l->msgs[0], .length = sizeof(l->msgs[0]),
			       .lkey = l->msg_mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = 0, .sg_list = &sge, .num_sge = 1 }, *bad;
	int ret = ibv_post_recv(l->id->qp, &wr, &bad);

	if (ret)
		rt_err_errno("ibv_post_recv", ret);
	return -ret;
}

/* One connection attempt: resolve, set up the QP and memory, connect. */
static int link_connect(struct link *l, struct source *s, const struct writer_opts *o)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM },
			*dst = NULL, *src = NULL;
	struct ibv_qp_init_attr qpa = { 0 };
	struct rdma_conn_param cp = { 0 };
	int ret;

	ret = getaddrinfo(o->server, o->port, &hints, &dst);
	if (!ret && o->src_addr)
		ret = getaddrinfo(o->src_addr, NULL, &hints, &src);
	if (ret) {
		rt_err("bad address: %s", gai_strerror(ret));
		ret = -EINVAL;
		goto out;
	}
	l->ch = rdma_create_event_channel();
	if (!l->ch) {
		ret = -errno;
		rt_err("rdma_create_event_channel failed: %s (is rdma_ucm loaded?)",
		       strerror(errno));
		goto out;
	}
	ret = rt_set_nonblock(l->ch->fd);
	if (ret)
		goto out;
	if (rdma_create_id(l->ch, &l->id, NULL, RDMA_PS_TCP)) {
		ret = -errno;
		rt_err_errno("rdma_create_id", errno);
		goto out;
	}
	if (rdma_resolve_addr(l->id, src ? src->ai_addr : NULL, dst->ai_addr, CM_TIMEOUT_MS)) {
		ret = -errno;
		rt_err("rdma_resolve_addr %s failed: %s", o->server, strerror(errno));
		goto out;
	}
	ret = expect_cm_event(l, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (ret) {
		if (ret == -ECONNREFUSED)
			rt_err("no RDMA route to %s", o->server);
		ret = ret == -ECONNREFUSED ? -EHOSTUNREACH : ret;
		goto out;
	}
	if (rdma_resolve_route(l->id, CM_TIMEOUT_MS)) {
		ret = -errno;
		rt_err_errno("rdma_resolve_route", errno);
		goto out;
	}
	ret = expect_cm_event(l, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (ret)
		goto out;

	l->pd = ibv_alloc_pd(l->id->verbs);
	if (!l->pd) {
		ret = -errno;
		rt_err_errno("ibv_alloc_pd", errno);
		goto out;
	}
	/* The source is only read by the device: no write access, no write pin. */
	l->src_mr = ibv_reg_mr(l->pd, s->buf, s->len, 0);
	if (!l->src_mr && !s->copied) {
		rt_err("ibv_reg_mr of %s failed: %s; writing from a copy", o->file,
		       strerror(errno));
		ret = source_copy(s);
		if (ret) {
			rt_err("no memory for a copy of %s: %s", o->file, strerror(-ret));
			goto out;
		}
		l->src_mr = ibv_reg_mr(l->pd, s->buf, s->len, 0);
	}
	if (!l->src_mr) {
		ret = -errno;
		rt_err("ibv_reg_mr failed: %s (%" PRIu64 " source bytes)", strerror(errno),
		       s->len);
		goto out;
	}
	l->msg_mr = ibv_reg_mr(l->pd, l->msgs, sizeof(l->msgs), IBV_ACCESS_LOCAL_WRITE);
	if (!l->msg_mr) {
		ret = -errno;
		rt_err("ibv_reg_mr of message buffers failed: %s", strerror(errno));
		goto out;
	}
	l->cc = ibv_create_comp_channel(l->id->verbs);
	if (!l->cc) {
		ret = -errno;
		rt_err_errno("ibv_create_comp_channel", errno);
		goto out;
	}
	ret = rt_set_nonblock(l->cc->fd);
	if (ret)
		goto out;
	l->cq = ibv_create_cq(l->id->verbs, o->depth + 4, NULL, l->cc, 0);
	if (!l->cq) {
		ret = -errno;
		rt_err_errno("ibv_create_cq", errno);
		goto out;
	}
	qpa.send_cq = l->cq;
	qpa.recv_cq = l->cq;
	qpa.qp_type = IBV_QPT_RC;
	qpa.sq_sig_all = 1;
	qpa.cap.max_send_wr = o->depth + 2;
	qpa.cap.max_recv_wr = 2;
	qpa.cap.max_send_sge = 1;
	qpa.cap.max_recv_sge = 1;
	if (rdma_create_qp(l->id, l->pd, &qpa)) {
		ret = -errno;
		rt_err_errno("rdma_create_qp", errno);
		goto out;
	}
	l->qp_created = true;
	ret = post_recv(l);
	if (ret)
		goto out;
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.retry_count = 7;
	cp.rnr_retry_count = 7; /* a target short of receives makes us wait, not fail */
	if (rdma_connect(l->id, &cp)) {
		ret = -errno;
		rt_err_errno("rdma_connect", errno);
		goto out;
	}
	ret = expect_cm_event(l, RDMA_CM_EVENT_ESTABLISHED);
out:
	if (src)
		freeaddrinfo(src);
	if (dst)
		freeaddrinfo(dst);
	if (ret)
		link_destroy(l);
	return ret;
}

/* Waits for completions; fails on any error status. Returns the count or -errno. */
static int wait_wc(struct link *l, struct ibv_wc *wc, int n)
{
	int got = rt_wait_cq(l->cc, l->cq, wc, n, CQ_TIMEOUT_MS), i;

	if (got < 0) {
		rt_err("waiting for completions: %s", strerror(-got));
		return got;
	}
	for (i = 0; i < got; i++) {
		if (wc[i].status != IBV_WC_SUCCESS) {
			rt_err("work request %s failed: %s",
			       wc[i].wr_id == WR_COMMIT ? "commit" :
			       wc[i].opcode == IBV_WC_RECV ? "receive" : "write",
			       ibv_wc_status_str(wc[i].status));
			return -EIO;
		}
	}
	return got;
}

static int recv_msg(struct link *l, enum rt_msg_type type, struct rt_msg *out)
{
	struct ibv_wc wc;
	int ret;

	do {
		ret = wait_wc(l, &wc, 1);
		if (ret < 0)
			return ret;
	} while (wc.opcode != IBV_WC_RECV); /* completions of our sends */
	*out = l->msgs[0];
	rt_msg_swap(out);
	if (rt_msg_check(out, wc.byte_len) || out->type != type) {
		rt_err("malformed message from the target");
		return -EPROTO;
	}
	return post_recv(l);
}

static int post_write(struct link *l, const struct source *s, const struct writer_opts *o,
		      uint64_t off, uint64_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)s->buf + off, .length = (uint32_t)len,
			       .lkey = l->src_mr->lkey };
	struct ibv_send_wr wr = { .wr_id = off, .sg_list = &sge, .num_sge = 1 }, *bad;
	uint64_t roff = o->offset + off;
	int ret;

	wr.opcode = o->imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
	if (o->imm)
		wr.imm_data = htonl((uint32_t)(roff / RT_IMM_UNIT));
	wr.wr.rdma.remote_addr = l->remote_addr + roff;
	wr.wr.rdma.rkey = l->rkey;
	ret = ibv_post_send(l->id->qp, &wr, &bad);
	if (ret)
		rt_err_errno("ibv_post_send", ret);
	return -ret;
}

/*
 * --vary: stamps the pass number into the first 8 bytes of every 4 KiB of [off, off+len),
 * so that every chunk of the target's dirty map changes on every pass.
 */
static void stamp_pass(const struct source *s, uint64_t off, uint64_t len, uint64_t pass)
{
	uint64_t p;

	for (p = (off + 4095) & ~4095ull; p + 8 <= off + len; p += 4096)
		memcpy((char *)s->buf + p, &pass, 8);
}

/* Writes whole passes of the source until o->duration has passed. Returns bytes or -errno. */
static int64_t write_passes(struct link *l, const struct source *s, const struct writer_opts *o,
			    unsigned int *passes)
{
	double start = rt_now();
	unsigned int inflight = 0;
	uint64_t written = 0, off;
	struct ibv_wc wc[16];
	int n;

	*passes = 0;
	do {
		/*
		 * A chunk's bytes are stamped just before it is posted; its write of the
		 * previous pass must be done by then, which holds when a pass has more
		 * chunks than may be in flight: else drain first.
		 */
		if (o->vary && *passes && s->len / o->chunk < o->depth) {
			while (inflight) {
				n = wait_wc(l, wc, 16);
				if (n < 0)
					return n;
				inflight -= n;
			}
		}
		for (off = 0; off < s->len; off += o->chunk) {
			uint64_t len = s->len - off < o->chunk ? s->len - off : o->chunk;

			while (inflight == o->depth) {
				n = wait_wc(l, wc, 16);
				if (n < 0)
					return n;
				inflight -= n;
			}
			if (o->vary && *passes)
				stamp_pass(s, off, len, *passes);
			n = post_write(l, s, o, off, len);
			if (n)
				return n;
			inflight++;
			written += len;
		}
		(*passes)++;
	} while (rt_now() - start < o->duration);
	while (inflight) {
		n = wait_wc(l, wc, 16);
		if (n < 0)
			return n;
		inflight -= n;
	}
	return written;
}

static int commit(struct link *l, const struct writer_opts *o, uint64_t len, struct rt_msg *rep)
{
	struct ibv_sge sge = { .addr = (uintptr_t)&l->msgs[1], .length = sizeof(l->msgs[1]),
			       .lkey = l->msg_mr->lkey };
	struct ibv_send_wr wr = { .wr_id = WR_COMMIT, .sg_list = &sge, .num_sge = 1,
				  .opcode = IBV_WR_SEND },
			   *bad;
	int ret;

	rt_msg_init(&l->msgs[1], RT_COMMIT);
	l->msgs[1].offset = o->offset;
	l->msgs[1].length = len;
	l->msgs[1].flags = o->imm ? RT_COMMIT_NAMED : 0;
	rt_msg_swap(&l->msgs[1]);
	ret = ibv_post_send(l->id->qp, &wr, &bad);
	if (ret) {
		rt_err_errno("ibv_post_send", ret);
		return -ret;
	}
	return recv_msg(l, RT_COMMIT_REPLY, rep);
}

/* Waits up to @secs for the target to disconnect. Returns true if it did. */
static bool hold_connection(struct link *l, double secs)
{
	double end = rt_now() + secs, left;
	struct rdma_cm_event *ev;

	while ((left = end - rt_now()) > 0) {
		enum rdma_cm_event_type t;
		int ret = rt_get_cm_event(l->ch, (int)(left * 1000) + 1, &ev);

		if (ret == -ETIMEDOUT || ret == -EINTR)
			continue;
		if (ret)
			return false;
		t = ev->event;
		rdma_ack_cm_event(ev);
		if (t == RDMA_CM_EVENT_DISCONNECTED) {
			printf("target disconnected\n");
			fflush(stdout);
			return true;
		}
	}
	return false;
}

static void link_disconnect(struct link *l)
{
	struct rdma_cm_event *ev;

	if (rdma_disconnect(l->id))
		return;
	/* Let the target see a clean end; do not wait long for it. */
	while (rt_get_cm_event(l->ch, 2000, &ev) == 0) {
		enum rdma_cm_event_type t = ev->event;

		rdma_ack_cm_event(ev);
		if (t == RDMA_CM_EVENT_DISCONNECTED)
			break;
	}
}

int main(int argc, char **argv)
{
	struct writer_opts o;
	struct source s = { 0 };
	struct link l = { 0 };
	struct rt_msg hello, rep;
	unsigned int passes;
	double t0, t1, t2, deadline;
	uint64_t local_hash;
	int64_t written;
	int ret, rc = 1;
	bool ok;

	rt_prog = "rdma_writer";
	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (source_open(&s, &o))
		return 1;
	local_hash = XXH3_64bits(s.buf, s.len);

	deadline = rt_now() + o.wait;
	for (;;) {
		ret = link_connect(&l, &s, &o);
		if (ret != -ECONNREFUSED)
			break;
		if (rt_now() >= deadline) {
			rt_err("%s:%s refused the connection (is rdma_target running?)",
			       o.server, o.port);
			break;
		}
		usleep(200 * 1000);
	}
	if (ret)
		goto out_source;
	ret = recv_msg(&l, RT_HELLO, &hello);
	if (ret)
		goto out_link;
	l.remote_addr = hello.addr;
	l.remote_len = hello.length;
	l.rkey = hello.rkey;
	if (!o.quiet)
		printf("connected to %s:%s, remote region %" PRIu64 " bytes, source %" PRIu64
		       " bytes (%s)\n",
		       o.server, o.port, l.remote_len, s.len, o.file ? o.file : "generated");
	fflush(stdout); /* before any error message, in logs that merge both */
	if (o.offset > l.remote_len || s.len > l.remote_len - o.offset) {
		rt_err("%" PRIu64 " bytes at offset %" PRIu64 " do not fit the remote region of %" PRIu64
		       " bytes",
		       s.len, o.offset, l.remote_len);
		goto out_disconnect;
	}
	if (o.imm && (o.offset + s.len) / RT_IMM_UNIT > UINT32_MAX) {
		rt_err("--imm: offsets beyond 16 TiB cannot be named");
		goto out_disconnect;
	}

	t0 = rt_now();
	written = write_passes(&l, &s, &o, &passes);
	t1 = rt_now();
	if (written < 0)
		goto out_disconnect;
	if (o.vary)
		local_hash = XXH3_64bits(s.buf, s.len); /* the last pass */
	ret = commit(&l, &o, s.len, &rep);
	t2 = rt_now();
	if (ret)
		goto out_disconnect;

	ok = rep.status == 0 && rep.hash == local_hash && rep.offset == o.offset &&
	     rep.length == s.len && (!o.imm || rep.named == (uint64_t)written);
	if (!o.quiet) {
		printf("wrote %" PRId64 " bytes in %.3f s: %.1f MiB/s (%u passes, chunk %" PRIu64
		       ", depth %u%s)\n",
		       written, t1 - t0, written / (t1 - t0) / (1 << 20), passes, o.chunk, o.depth,
		       o.imm ? ", write with immediate" : "");
		printf("commit: %.1f ms, status %d, remote xxh3 %016" PRIx64 ", local %016" PRIx64
		       "\n",
		       (t2 - t1) * 1e3, rep.status, rep.hash, local_hash);
		fflush(stdout);
	}
	if (rep.status)
		rt_err("the target could not commit: %s", strerror(rep.status));
	else if (rep.offset != o.offset || rep.length != s.len)
		rt_err("the target committed %" PRIu64 "+%" PRIu64 ", not %" PRIu64 "+%" PRIu64,
		       rep.offset, rep.length, o.offset, s.len);
	else if (rep.hash != local_hash)
		rt_err("checksum mismatch: the remote range differs from the source");
	else if (!ok)
		rt_err("the immediates named %" PRIu64 " bytes, %" PRId64 " were written",
		       rep.named, written);
	printf("result bytes=%" PRId64 " seconds=%.3f mib_per_s=%.1f passes=%u commit_ms=%.1f"
	       " xxh3=%016" PRIx64 " match=%d\n",
	       written, t1 - t0, written / (t1 - t0) / (1 << 20), passes, (t2 - t1) * 1e3,
	       local_hash, ok);
	fflush(stdout);
	rc = ok ? 0 : 1;
	if (o.hold > 0 && hold_connection(&l, o.hold))
		goto out_link;

out_disconnect:
	link_disconnect(&l);
out_link:
	link_destroy(&l);
out_source:
	source_close(&s);
	return rc;
}
