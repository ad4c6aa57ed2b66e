/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What rdma_target and rdma_writer share: the wire format of their SEND messages, rdma_cm
 * event and completion waiting, size parsing and error messages.
 */
#ifndef RDMA_COMMON_H
#define RDMA_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define RT_DEFAULT_PORT "7471"

/*
 * One fixed-size message in each SEND, little-endian on the wire. The target sends HELLO
 * once connected (the region to write), the writer sends COMMIT (make a range durable)
 * and the target answers COMMIT_REPLY (status and XXH3-64 of the range).
 *
 * With WRITE_WITH_IMM, the immediate names the range written: its offset in the region in
 * units of RT_IMM_UNIT bytes; its length is the completion's byte_len.
 */
#define RT_MAGIC 0x53464452u /* "RDFS" */
#define RT_VERSION 1
#define RT_IMM_UNIT 4096u

enum rt_msg_type {
	RT_HELLO = 1,
	RT_COMMIT = 2,
	RT_COMMIT_REPLY = 3,
};

#define RT_COMMIT_NAMED (1u << 0) /* COMMIT: the range is what the immediates named */

struct rt_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint64_t addr;	 /* HELLO: region address for RDMA WRITE */
	uint32_t rkey;	 /* HELLO */
	int32_t status;	 /* COMMIT_REPLY: 0 or a positive errno */
	uint64_t offset; /* COMMIT, COMMIT_REPLY: range in the region */
	uint64_t length; /* HELLO: region length; COMMIT, COMMIT_REPLY: range length */
	uint64_t hash;	 /* COMMIT_REPLY: XXH3-64 of the range after fsync */
	uint64_t named;	 /* COMMIT_REPLY: bytes named by immediates since the last commit */
	uint32_t flags;	 /* RT_COMMIT_* */
	uint32_t reserved[7];
};
_Static_assert(sizeof(struct rt_msg) == 88, "wire format");

void rt_msg_init(struct rt_msg *m, enum rt_msg_type type);
/* Converts between host and wire byte order in place (a no-op on little-endian hosts). */
void rt_msg_swap(struct rt_msg *m);
/* Returns 0 if @m (already in host order) is a well-formed message, -EPROTO if not. */
int rt_msg_check(const struct rt_msg *m, uint32_t byte_len);

extern const char *rt_prog;
#define rt_err(fmt, ...) fprintf(stderr, "%s: " fmt "\n", rt_prog, ##__VA_ARGS__)
/* "ibv_reg_mr failed: Bad address" for a function that returned -errno or set errno. */
#define rt_err_errno(what, err) rt_err("%s failed: %s", what, strerror(err))

/* Parses "64M", "4096", "1G", "2k": binary multiples. Returns 0 or -EINVAL. */
int rt_parse_size(const char *s, uint64_t *out);
/* Seconds since an arbitrary start, monotonic. */
double rt_now(void);

/*
 * Waits up to @timeout_ms (-1: forever) for the next rdma_cm event. Returns 0 with
 * *@ev set (ack it with rdma_ack_cm_event), -ETIMEDOUT, -EINTR or another -errno.
 */
int rt_get_cm_event(struct rdma_event_channel *ch, int timeout_ms, struct rdma_cm_event **ev);

/*
 * Polls up to @n completions from @cq into @wc, sleeping on @cc (the CQ's completion
 * channel) while there are none: no busy polling, which would take CPU from Soft-RoCE.
 * Returns the number of completions (>= 1) or -errno.
 */
int rt_wait_cq(struct ibv_comp_channel *cc, struct ibv_cq *cq, struct ibv_wc *wc, int n,
	       int timeout_ms);
/* Consumes one completion event of @cc if there is one and rearms its CQ. 0 or -errno. */
int rt_cq_event(struct ibv_comp_channel *cc);
/* Makes a file descriptor non-blocking. 0 or -errno. */
int rt_set_nonblock(int fd);

/* Fills @len bytes at @buf with the deterministic stream of @seed (splitmix64). */
void rt_fill_random(void *buf, uint64_t len, uint64_t seed);

#endif
