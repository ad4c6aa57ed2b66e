// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart.c - the daemon's side of the descriptor store (supervisor.h): put, drop, the
 * descriptors a resumed generation takes back, and the state tables (memfds the store
 * keeps) that survive a daemon's death. Interface and ownership: restart.h.
 */
#include "rdmafsd.h"
#include "restart.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESTART_TABLE_MAGIC 0x42545352u	/* "RSTB" */

union sup_buf {
	struct sup_msg m;
	char buf[SUP_MSG_MAX];
};

struct taken {
	uint64_t tag;
	int fd;			/* -1 once taken */
};

/*
 * Pipelined requests (restart_put_async(), restart_drop_async()): sent, their replies read
 * later. A message with its descriptors belongs to the supervisor's receive queue once
 * sendmsg() returns, so it outlives this process, and the supervisor serves a socket's
 * messages in order and drains it after a death before the next generation's LIST
 * (supervisor.c): what was sent counts as kept. At most RS_WINDOW requests wait for
 * their replies (bounded socket buffers on both sides: neither end blocks on a full one).
 */
#define RS_WINDOW 64
/*
 * DROPs are batched: a message each costs the sender and wakes the supervisor for its
 * receive and reply (unlink of 3,000 new files on a tmpfs backing, 4 alternated runs:
 * 140 us each with a DROP message per drop, 130 us batched). Pending drops go out as one message when RS_DROP_BATCH are pending, before a
 * PUT of one of their tags (a slot reused: the DROP must come first), before any
 * synchronous request, and at least every second (restart_flush_drops(), the flusher):
 * the store keeps what they name that much longer. A death with drops pending leaves
 * their descriptors in the store, as a death between a record's free and its drop
 * always could: the next generation closes those without a record (staging_resume()).
 */
#define RS_DROP_BATCH 32

struct pending {
	uint64_t tag;
	uint16_t op;
};

static struct {
	pthread_mutex_t lock;	/* one request at a time on the socket */
	int sock;		/* -1: not supervised */
	unsigned int gen;
	uint64_t died_ns;
	int prev_exit;
	bool resumed;
	struct taken *v;	/* what LIST handed back (resumed) */
	size_t n;
	struct pending win[RS_WINDOW];	/* sent, reply not read: oldest at whead */
	unsigned int whead, wn;
	int first_err;		/* first refusal of a pipelined request since restart_sync() */
	uint64_t refused;	/* pipelined requests the store refused */
	struct sup_msg rep[RS_WINDOW];	/* replies read in one recvmmsg() */
	uint64_t dq[RS_DROP_BATCH];	/* drops not sent yet */
	unsigned int dn;
} rs = { .lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1, .prev_exit = -1 };

/* The reply @m to the oldest pipelined request: a refusal is logged (rs.lock held). */
static void rs_settle(const struct sup_msg *m, ssize_t len)
{
	struct pending p = rs.win[rs.whead];
	int st;

	rs.whead = (rs.whead + 1) % RS_WINDOW;
	rs.wn--;
	if (len < (ssize_t)sizeof(*m) || m->magic != SUP_MAGIC || m->op != p.op)
		st = -EPROTO;
	else
		st = m->status;
	if (!st)
		return;
	if (!rs.first_err)
		rs.first_err = st;
	if (p.op == SUP_DROP && st == -ENOENT)
		return;		/* nothing held under it (a lock not held): nothing to do */
	rs.refused++;
	log_err("restart: %s of tag %#" PRIx64 " refused by the store: %s%s",
		p.op == SUP_PUT ? "put" : "drop", p.tag, strerror(-st),
		p.op == SUP_PUT ? " (a daemon death would lose what it names)" : "");
}

/*
 * Read the replies of pipelined requests (rs.lock held): with @wait at least one (blocks),
 * else those already queued. 0, or -errno when the socket failed (the replies still
 * awaited are given up on).
 */
static int rs_reap(bool wait)
{
	struct mmsghdr mm[RS_WINDOW];
	struct iovec iov[RS_WINDOW];
	unsigned int want = rs.wn;
	int k;

	if (!want)
		return 0;
	for (unsigned int i = 0; i < want; i++) {
		iov[i] = (struct iovec){ .iov_base = &rs.rep[i], .iov_len = sizeof(rs.rep[i]) };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	do
		k = recvmmsg(rs.sock, mm, want, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
	while (k < 0 && errno == EINTR);
	if (k < 0 && errno == EAGAIN && !wait)
		return 0;
	if (k <= 0) {
		int e = k < 0 ? -errno : -EPIPE;

		log_err("restart: replies of %u requests to the store: %s", rs.wn, strerror(-e));
		rs.wn = 0;
		return e;
	}
	for (int i = 0; i < k; i++) {
		if (!mm[i].msg_len) {	/* end of file: the supervisor is gone */
			log_err("restart: the store closed its socket; %u replies lost", rs.wn);
			rs.wn = 0;
			return -EPIPE;
		}
		rs_settle(&rs.rep[i], mm[i].msg_len);
	}
	return 0;
}

/* Every pipelined request answered (rs.lock held). */
static int rs_drain(void)
{
	int r = 0;

	while (rs.wn && !r)
		r = rs_reap(true);
	return r;
}

/* Send one request (rs.lock held). */
static int sup_send(uint16_t op, uint32_t arg, const uint64_t *tags, uint32_t n,
		    const int *fds)
{
	union sup_buf q;
	char cbuf[CMSG_SPACE(sizeof(int) * SUP_MAX_FDS)];
	struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q.m) + n * sizeof(uint64_t) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n > SUP_MAX_FDS)
		return -EINVAL;
	memset(&q.m, 0, sizeof(q.m));
	q.m.magic = SUP_MAGIC;
	q.m.version = SUP_VERSION;
	q.m.op = op;
	q.m.count = n;
	q.m.arg = arg;
	if (n)
		memcpy(q.m.tags, tags, n * sizeof(uint64_t));
	if (fds) {
		memset(cbuf, 0, CMSG_SPACE(sizeof(int) * n));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	while (sendmsg(rs.sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* One request, its reply, after every pipelined one is answered (rs.lock held);
 * descriptors of a LIST reply into @rfds (at most @max). */
static int rs_async(uint16_t op, const uint64_t *tags, unsigned int n, const int *fds);

/* Send the pending drops as one DROP (rs.lock held). 0 or -errno (they are given up). */
static int rs_flush_drops(void)
{
	unsigned int n = rs.dn;

	rs.dn = 0;
	return n && rs.sock >= 0 ? rs_async(SUP_DROP, rs.dq, n, NULL) : 0;
}

/* True if one of @tags has a drop pending (rs.lock held). */
static bool rs_drop_pending(const uint64_t *tags, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		for (unsigned int j = 0; j < rs.dn; j++)
			if (rs.dq[j] == tags[i])
				return true;
	return false;
}

static int sup_xact(uint16_t op, uint32_t arg, const uint64_t *tags, uint32_t n,
		    const int *fds, union sup_buf *r, int *rfds, int max)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SUP_MAX_FDS)];
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t len;
	int e;

	e = rs_flush_drops();
	if (!e)
		e = rs_drain();
	if (!e)
		e = sup_send(op, arg, tags, n, fds);
	if (e)
		return e;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	do
		len = recvmsg(rs.sock, &mh, MSG_CMSG_CLOEXEC);
	while (len < 0 && errno == EINTR);
	if (len < (ssize_t)sizeof(r->m))
		return len < 0 ? -errno : -EPROTO;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (k > max || k != (int)r->m.count) {
			int *got = (int *)CMSG_DATA(c);

			for (int i = 0; i < k; i++)
				close(got[i]);
			return -EPROTO;
		}
		memcpy(rfds, CMSG_DATA(c), sizeof(int) * k);
	}
	if (r->m.magic != SUP_MAGIC || r->m.op != op)
		return -EPROTO;
	return r->m.status;
}

/* Every descriptor in the store, into rs.v. */
static int restart_list(void)
{
	union sup_buf r;
	int fds[SUP_MAX_FDS];
	uint32_t at = 0;

	do {
		int st = sup_xact(SUP_LIST, at, NULL, 0, NULL, &r, fds, SUP_MAX_FDS);
		struct taken *v;

		if (st < 0)
			return st;
		v = realloc(rs.v, (rs.n + r.m.count + 1) * sizeof(*v));
		if (!v) {
			for (uint32_t i = 0; i < r.m.count; i++)
				close(fds[i]);
			return -ENOMEM;
		}
		rs.v = v;
		for (uint32_t i = 0; i < r.m.count; i++)
			rs.v[rs.n++] = (struct taken){ .tag = r.m.tags[i], .fd = fds[i] };
		at = r.m.arg;
	} while (at);
	return 0;
}

int restart_init(bool enable)
{
	const char *fd = getenv(SUP_ENV_FD), *gen = getenv(SUP_ENV_GEN);
	const char *died = getenv(SUP_ENV_DIED);
	int r;

	/* Not for the daemons a shell started from here, nor for a forked helper. */
	unsetenv(SUP_ENV_FD);
	if (!fd || !gen)
		return 0;
	rs.sock = atoi(fd);
	rs.gen = strtoul(gen, NULL, 10);
	rs.died_ns = died ? strtoull(died, NULL, 10) : 0;
	if (getenv(SUP_ENV_PREV))
		rs.prev_exit = atoi(getenv(SUP_ENV_PREV));
	if (fcntl(rs.sock, F_SETFD, FD_CLOEXEC) < 0) {
		rs.sock = -1;
		return -EBADF;
	}
	if (!enable) {
		restart_disable();
		return 0;
	}
	if (rs.gen == 0)
		return 0;
	r = restart_list();
	if (r) {
		log_err("restart: list of the store: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < rs.n; i++)
		if (rs.v[i].tag == SUP_TAG(SUP_K_DEVFUSE, 0))
			rs.resumed = true;
	log_info("restart: generation %u, %zu descriptors from the store%s", rs.gen, rs.n,
		 rs.resumed ? "" : " (no /dev/fuse: mounting afresh)");
	return 0;
}

void restart_exit(void)
{
	for (size_t i = 0; i < rs.n; i++)
		if (rs.v[i].fd >= 0)
			close(rs.v[i].fd);
	free(rs.v);
	rs.v = NULL;
	rs.n = 0;
	/* Replies already there: refusals logged. The rest is the supervisor's (it serves
	 * what was sent after this process is gone, too). */
	rs_flush_drops();
	if (rs.sock >= 0)
		rs_reap(false);
	rs.wn = 0;
	if (rs.sock >= 0)
		close(rs.sock);
	rs.sock = -1;
}

bool restart_supervised(void)
{
	return rs.sock >= 0;
}

bool restart_resumed(void)
{
	return rs.resumed;
}

unsigned int restart_generation(void)
{
	return rs.gen;
}

uint64_t restart_died_ns(void)
{
	return rs.died_ns;
}

int restart_prev_exit(void)
{
	return rs.prev_exit;
}

void restart_disable(void)
{
	static const unsigned int tables[] = { RESTART_T_META, RESTART_T_INODES,
					       RESTART_T_HANDLES, RESTART_T_STAGED,
					       RESTART_T_JOURNAL };
	union sup_buf r;

	/* What was put so far goes (-ENOENT for what never was), so that the store keeps
	 * no /dev/fuse: the next generation then finds nothing to resume and ends. */
	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0) {
		uint64_t tag = SUP_TAG(SUP_K_DEVFUSE, 0);

		sup_xact(SUP_DROP, 0, &tag, 1, NULL, &r, NULL, 0);
		for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
			tag = SUP_TAG(SUP_K_STATE, tables[i]);
			sup_xact(SUP_DROP, 0, &tag, 1, NULL, &r, NULL, 0);
		}
		close(rs.sock);
	}
	rs.sock = -1;
	pthread_mutex_unlock(&rs.lock);
}

int restart_put(uint64_t tag, int fd)
{
	union sup_buf r;
	int ret = 0;

	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0)
		ret = sup_xact(SUP_PUT, 0, &tag, 1, &fd, &r, NULL, 0);
	pthread_mutex_unlock(&rs.lock);
	if (ret)
		log_err("restart: put tag %#" PRIx64 ": %s", tag, strerror(-ret));
	return ret;
}

int restart_drop(uint64_t tag)
{
	union sup_buf r;
	int ret = 0;

	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0)
		ret = sup_xact(SUP_DROP, 0, &tag, 1, NULL, &r, NULL, 0);
	pthread_mutex_unlock(&rs.lock);
	return ret;
}

/* Send @op for @n @tags (and @fds), its reply read later (rs.lock held). */
static int rs_async(uint16_t op, const uint64_t *tags, unsigned int n, const int *fds)
{
	int r = 0;

	if (op == SUP_PUT && rs_drop_pending(tags, n))
		r = rs_flush_drops();
	if (!r && rs.wn == RS_WINDOW)
		r = rs_reap(true);
	if (!r)
		r = sup_send(op, 0, tags, n, fds);
	if (r)
		return r;
	rs.win[(rs.whead + rs.wn) % RS_WINDOW] = (struct pending){ .tag = tags[0], .op = op };
	rs.wn++;
	return 0;
}

int restart_put_async(uint64_t tag, int fd)
{
	return restart_put_many_async(&tag, &fd, 1);
}

int restart_put_many_async(const uint64_t *tags, const int *fds, unsigned int n)
{
	int ret = 0;

	if (!n || n > SUP_MAX_FDS)
		return -EINVAL;
	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0)
		ret = rs_async(SUP_PUT, tags, n, fds);
	pthread_mutex_unlock(&rs.lock);
	if (ret)
		log_err("restart: put tag %#" PRIx64 "%s: %s", tags[0], n > 1 ? " and more" : "",
			strerror(-ret));
	return ret;
}

int restart_drop_async(uint64_t tag)
{
	int ret = 0;

	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0) {
		rs.dq[rs.dn++] = tag;
		if (rs.dn == RS_DROP_BATCH)
			ret = rs_flush_drops();
	}
	pthread_mutex_unlock(&rs.lock);
	return ret;
}

int restart_flush_drops(void)
{
	int ret;

	pthread_mutex_lock(&rs.lock);
	ret = rs_flush_drops();
	pthread_mutex_unlock(&rs.lock);
	return ret;
}

int restart_sync(void)
{
	int ret = 0;

	pthread_mutex_lock(&rs.lock);
	ret = rs_flush_drops();
	if (!ret && rs.sock >= 0)
		ret = rs_drain();
	if (!ret)
		ret = rs.first_err;
	rs.first_err = 0;
	pthread_mutex_unlock(&rs.lock);
	return ret;
}

#ifdef RDMAFS_TEST_KNOBS
ssize_t restart_test_knob(char *buf, size_t size)
{
	const char *path = getenv("RDMAFS_TEST_DIE");
	ssize_t n;
	int fd;

	if (!path || !size || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

void restart_test_die(const char *where)
{
	int fd = open(getenv("RDMAFS_TEST_DIE"), O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	log_notice("test: dying %s (RDMAFS_TEST_DIE)", where);
	_exit(99);
}
#else
ssize_t restart_test_knob(char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return -1;
}

void restart_test_die(const char *where)
{
	(void)where;
}
#endif

uint64_t restart_refused(void)
{
	uint64_t n;

	pthread_mutex_lock(&rs.lock);
	n = rs.refused;
	pthread_mutex_unlock(&rs.lock);
	return n;
}

int restart_ready(void)
{
	union sup_buf r;
	int ret = 0;

	pthread_mutex_lock(&rs.lock);
	if (rs.sock >= 0)
		ret = sup_xact(SUP_READY, 0, NULL, 0, NULL, &r, NULL, 0);
	pthread_mutex_unlock(&rs.lock);
	return ret;
}

int restart_take(uint64_t tag)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&rs.lock);
	for (size_t i = 0; i < rs.n; i++) {
		if (rs.v[i].tag == tag && rs.v[i].fd >= 0) {
			fd = rs.v[i].fd;
			rs.v[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&rs.lock);
	return fd;
}

int restart_take_next(unsigned int kind, uint64_t *tag)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&rs.lock);
	for (size_t i = 0; i < rs.n; i++) {
		if (SUP_TAG_KIND(rs.v[i].tag) == kind && rs.v[i].fd >= 0) {
			fd = rs.v[i].fd;
			*tag = rs.v[i].tag;
			rs.v[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&rs.lock);
	return fd;
}

/* ---- state tables ---- */

enum { REC_FREE = 0, REC_VALID = 1 };

struct table_hdr {
	uint32_t magic;
	uint32_t layout_version;
	uint32_t record_size;
	uint32_t capacity;
	_Atomic uint32_t hwm;	/* raised before a slot is first used */
	uint32_t id;
	uint8_t pad[40];
};
_Static_assert(sizeof(struct table_hdr) == 64, "table header is 64 bytes");

struct rec_hdr {
	_Atomic uint32_t state;
	uint32_t seq;
};

struct restart_table {
	pthread_mutex_t lock;	/* free list */
	struct table_hdr *hdr;
	uint8_t *recs;
	size_t map_len, stride;
	uint32_t *free;		/* free slots below hwm, the lowest last */
	uint32_t nfree, free_cap;
	bool adopted;
};

static struct rec_hdr *rec_hdr(const struct restart_table *t, uint32_t slot)
{
	return (struct rec_hdr *)(t->recs + (size_t)slot * t->stride);
}

static int table_map(struct restart_table *t, int fd)
{
	void *p = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	t->hdr = p;
	t->recs = (uint8_t *)p + sizeof(struct table_hdr);
	return 0;
}

/* Adopted: every slot below hwm that is not valid is free (a death mid-allocation);
 * the lowest ends up last in the free list, so it is used first. */
static int table_scan(struct restart_table *t)
{
	uint32_t hwm = atomic_load(&t->hdr->hwm);

	t->free_cap = hwm + 64;
	t->free = malloc(t->free_cap * sizeof(*t->free));
	if (!t->free)
		return -ENOMEM;
	for (uint32_t s = hwm; s-- > 0;) {
		struct rec_hdr *h = rec_hdr(t, s);

		if (atomic_load_explicit(&h->state, memory_order_acquire) != REC_VALID) {
			atomic_store(&h->state, REC_FREE);
			t->free[t->nfree++] = s;
		}
	}
	return 0;
}

struct restart_table *restart_table_open(unsigned int id, size_t record_size,
					 uint32_t layout_version, uint32_t capacity)
{
	uint64_t tag = SUP_TAG(SUP_K_STATE, id);
	struct restart_table *t = calloc(1, sizeof(*t));
	char name[32];
	int fd, r;

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->stride = ALIGN_UP(sizeof(struct rec_hdr) + record_size, 8);
	t->map_len = sizeof(struct table_hdr) + t->stride * capacity;
	fd = restart_take(tag);
	if (fd >= 0) {
		struct stat sb;

		r = fstat(fd, &sb) ? -errno : 0;
		if (!r && (size_t)sb.st_size < sizeof(struct table_hdr))
			r = -EPROTO;
		if (!r) {
			/* its own capacity, not ours */
			struct table_hdr h;

			if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
				r = -EIO;
			else if (h.magic != RESTART_TABLE_MAGIC || h.id != id ||
				 h.layout_version != layout_version ||
				 h.record_size != record_size)
				r = -EPROTO;
			else
				t->map_len = sizeof(struct table_hdr) + t->stride * h.capacity;
			if (!r && (size_t)sb.st_size < t->map_len)
				r = -EPROTO;
		}
		if (!r)
			r = table_map(t, fd);
		close(fd);
		if (!r)
			r = table_scan(t);
		if (r) {
			log_err("restart: state table %u from the store: %s", id, strerror(-r));
			goto fail;
		}
		t->adopted = true;
		return t;
	}
	snprintf(name, sizeof(name), "rdmafs-state-%u", id);
	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	r = ftruncate(fd, t->map_len) ? -errno : 0;
	if (!r)
		r = table_map(t, fd);
	if (!r) {
		t->hdr->magic = RESTART_TABLE_MAGIC;
		t->hdr->layout_version = layout_version;
		t->hdr->record_size = record_size;
		t->hdr->capacity = capacity;
		t->hdr->id = id;
		atomic_store(&t->hdr->hwm, 0);
		r = restart_put(tag, fd);
	}
	close(fd);
	if (r)
		goto fail;
	return t;
fail:
	if (t->hdr)
		munmap(t->hdr, t->map_len);
	pthread_mutex_destroy(&t->lock);
	free(t->free);
	free(t);
	errno = -r;
	return NULL;
}

void restart_table_close(struct restart_table *t)
{
	if (!t)
		return;
	munmap(t->hdr, t->map_len);
	pthread_mutex_destroy(&t->lock);
	free(t->free);
	free(t);
}

bool restart_table_adopted(const struct restart_table *t)
{
	return t->adopted;
}

uint32_t restart_table_capacity(const struct restart_table *t)
{
	return t->hdr->capacity;
}

uint32_t restart_table_hwm(const struct restart_table *t)
{
	return atomic_load(&t->hdr->hwm);
}

void *restart_table_rec(struct restart_table *t, uint32_t slot)
{
	if (slot >= t->hdr->capacity)
		return NULL;
	return rec_hdr(t, slot) + 1;
}

int64_t restart_table_alloc(struct restart_table *t)
{
	struct rec_hdr *h;
	int64_t slot;

	pthread_mutex_lock(&t->lock);
	if (t->nfree) {
		slot = t->free[--t->nfree];
	} else {
		uint32_t hwm = atomic_load(&t->hdr->hwm);

		if (hwm >= t->hdr->capacity) {
			pthread_mutex_unlock(&t->lock);
			return -ENOSPC;
		}
		atomic_store(&t->hdr->hwm, hwm + 1);
		slot = hwm;
	}
	pthread_mutex_unlock(&t->lock);
	h = rec_hdr(t, slot);
	h->seq++;
	if (!h->seq)
		h->seq = 1;
	memset(h + 1, 0, t->hdr->record_size);
	return slot;
}

void restart_table_publish(struct restart_table *t, uint32_t slot)
{
	atomic_store_explicit(&rec_hdr(t, slot)->state, REC_VALID, memory_order_release);
}

void restart_table_free(struct restart_table *t, uint32_t slot)
{
	atomic_store_explicit(&rec_hdr(t, slot)->state, REC_FREE, memory_order_release);
	pthread_mutex_lock(&t->lock);
	if (t->nfree == t->free_cap) {
		uint32_t cap = t->free_cap ? t->free_cap * 2 : 64;
		uint32_t *v = realloc(t->free, cap * sizeof(*v));

		if (!v) {	/* leaked until the next generation's scan */
			pthread_mutex_unlock(&t->lock);
			return;
		}
		t->free = v;
		t->free_cap = cap;
	}
	t->free[t->nfree++] = slot;
	pthread_mutex_unlock(&t->lock);
}

bool restart_table_valid(const struct restart_table *t, uint32_t slot)
{
	return slot < atomic_load(&t->hdr->hwm) &&
	       atomic_load_explicit(&rec_hdr(t, slot)->state, memory_order_acquire) ==
		       REC_VALID;
}

uint32_t restart_table_seq(const struct restart_table *t, uint32_t slot)
{
	return rec_hdr(t, slot)->seq;
}
