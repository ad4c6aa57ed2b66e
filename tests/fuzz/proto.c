// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the daemon's control message decoder (rdmafs_proto_decode_req) and
 * the client's reply check, on arbitrary bytes. The first input byte picks the number of
 * attached fds and the "truncated" flag, as recvmsg() would report them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdmafs/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdmafs_proto_req req;
	unsigned nfds;
	int truncated, r;
	uint8_t *copy;

	if (!size)
		return 0;
	nfds = data[0] & 3;
	truncated = !!(data[0] & 4);
	data++;
	size--;
	/* An exact-size heap copy: ASan sees any read past the datagram. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	r = rdmafs_proto_decode_req(copy, size, nfds, truncated, &req);
	if (r == 0) {
		/* What the daemon relies on after a successful decode. */
		if (size != sizeof(struct rdmafs_req) || truncated || nfds > 1)
			abort();
		if (rdmafs_proto_rec_size(req.op) < 0)
			abort();
		if (req.op == RDMAFS_OP_MAP && (!req.arg || (req.arg & ~3)))
			abort();
		if (req.op == RDMAFS_OP_LEASE && (req.arg < 0 || req.arg > 64))
			abort();
		if ((req.op == RDMAFS_OP_MAP || req.op == RDMAFS_OP_LEASE ||
		     req.op == RDMAFS_OP_LEASE_BREAK) && nfds != 1)
			abort();
		if ((req.op == RDMAFS_OP_EVICT || req.op == RDMAFS_OP_METRICS ||
		     req.op == RDMAFS_OP_FILES) && nfds)
			abort();
		if (req.op == RDMAFS_OP_FILES && req.arg < 0)
			abort();
		if (req.op == RDMAFS_OP_METRICS && (req.arg || req.flags & ~RDMAFS_METRICS_NOSCAN))
			abort();
	} else if (r >= 0) {
		abort();
	}
	/* The client's side: a reply to each op. */
	for (uint16_t op = RDMAFS_OP_FLUSH; op <= RDMAFS_OP_FILES; op++) {
		long rs = rdmafs_proto_rec_size(op);

		if (rdmafs_proto_check_reply(copy, size, op, rs > 0 ? rs : 0) == 0 &&
		    size < sizeof(struct rdmafs_reply))
			abort();
	}
	free(copy);
	return 0;
}
