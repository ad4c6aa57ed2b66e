// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Shared by the RDMA peer tools: wire format helpers, rdma_cm and CQ waiting, parsing.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rdma_common.h"

void rt_msg_init(struct rt_msg *m, enum rt_msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->magic = RT_MAGIC;
	m->version = RT_VERSION;
	m->type = type;
}

void rt_msg_swap(struct rt_msg *m)
{
	m->magic = htole32(m->magic);
	m->version = htole16(m->version);
	m->type = htole16(m->type);
	m->addr = htole64(m->addr);
	m->rkey = htole32(m->rkey);
	m->status = (int32_t)htole32((uint32_t)m->status);
	m->offset = htole64(m->offset);
	m->length = htole64(m->length);
	m->hash = htole64(m->hash);
	m->named = htole64(m->named);
	m->flags = htole32(m->flags);
}

int rt_msg_check(const struct rt_msg *m, uint32_t byte_len)
{
	if (byte_len != sizeof(*m) || m->magic != RT_MAGIC || m->version != RT_VERSION)
		return -EPROTO;
	if (m->type < RT_HELLO || m->type > RT_COMMIT_REPLY)
		return -EPROTO;
	return 0;
}

const char *rt_prog = "rdma";

int rt_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' || (*end == 'b' && shift))
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

double rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_fd(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n = poll(&pfd, 1, timeout_ms);

	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

int rt_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int rt_get_cm_event(struct rdma_event_channel *ch, int timeout_ms, struct rdma_cm_event **ev)
{
	for (;;) {
		int ret;

		if (rdma_get_cm_event(ch, ev) == 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		/* The channel fd is non-blocking: wait for it. */
		ret = wait_fd(ch->fd, timeout_ms);
		if (ret)
			return ret;
	}
}

int rt_cq_event(struct ibv_comp_channel *cc)
{
	struct ibv_cq *ev_cq;
	void *ev_ctx;

	if (ibv_get_cq_event(cc, &ev_cq, &ev_ctx)) {
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	ibv_ack_cq_events(ev_cq, 1);
	if (ibv_req_notify_cq(ev_cq, 0))
		return -errno;
	return 0;
}

int rt_wait_cq(struct ibv_comp_channel *cc, struct ibv_cq *cq, struct ibv_wc *wc, int n,
	       int timeout_ms)
{
	for (;;) {
		int got, ret;

		got = ibv_poll_cq(cq, n, wc);
		if (got)
			return got < 0 ? -EIO : got;
		/* Armed before the second poll so that no completion slips in between. */
		if (ibv_req_notify_cq(cq, 0))
			return -errno;
		got = ibv_poll_cq(cq, n, wc);
		if (got)
			return got < 0 ? -EIO : got;
		ret = wait_fd(cc->fd, timeout_ms);
		if (ret)
			return ret;
		ret = rt_cq_event(cc);
		if (ret)
			return ret;
	}
}

/* splitmix64: a fast generator whose stream depends only on the seed. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rt_fill_random(void *buf, uint64_t len, uint64_t seed)
{
	uint64_t state = seed, v, i;
	unsigned char *p = buf;

	for (i = 0; i + 8 <= len; i += 8) {
		v = htole64(splitmix64(&state));
		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		v = htole64(splitmix64(&state));
		memcpy(p + i, &v, len - i);
	}
}
