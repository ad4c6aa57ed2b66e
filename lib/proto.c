// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * proto.c - owns the control protocol codec: encoding and validation of requests and
 * replies (include/rdmafs/proto.h). Pure functions, no I/O; linked into the daemon and
 * librdmafs, unit-tested and fuzzed on their own.
 */
#include "rdmafs/proto.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

long rdmafs_proto_rec_size(uint16_t op)
{
	switch (op) {
	case RDMAFS_OP_FLUSH:
	case RDMAFS_OP_EVICT:
	case RDMAFS_OP_PROGRESS:
		return sizeof(struct rdmafs_wire_count);
	case RDMAFS_OP_STAT:
		return sizeof(struct rdmafs_wire_stat);
	case RDMAFS_OP_MAP:
		return sizeof(struct rdmafs_wire_map);
	case RDMAFS_OP_LEASE_LIST:
		return sizeof(struct rdmafs_wire_lease);
	case RDMAFS_OP_METRICS:
		return sizeof(struct rdmafs_wire_metrics);
	case RDMAFS_OP_FILES:
		return sizeof(struct rdmafs_wire_file);
	case RDMAFS_OP_LEASE:
	case RDMAFS_OP_LEASE_BREAK:
	case RDMAFS_OP_LEASE_BREAK_NOTICE:
		return 0;
	default:
		return -1;
	}
}

int rdmafs_proto_decode_req(const void *buf, size_t len, unsigned nfds, int truncated,
			    struct rdmafs_proto_req *out)
{
	struct rdmafs_req req;
	uint32_t allowed = 0;
	int fd_rule;		/* 1 required, 0 forbidden, 2 optional */

	memset(out, 0, sizeof(*out));
	if (len >= sizeof(struct rdmafs_msg_hdr)) {
		memcpy(&req.hdr, buf, sizeof(req.hdr));
		out->seq = req.hdr.seq;
		out->op = req.hdr.op;
	}
	if (truncated || len > RDMAFS_MSG_MAX)
		return -EMSGSIZE;
	if (len < sizeof(struct rdmafs_msg_hdr))
		return -EBADMSG;
	if (req.hdr.magic != RDMAFS_PROTO_MAGIC)
		return -EPROTO;
	if (req.hdr.version != RDMAFS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (req.hdr.len != len)
		return -EBADMSG;
	if (len != sizeof(req))
		return len > sizeof(req) ? -EMSGSIZE : -EBADMSG;
	memcpy(&req, buf, sizeof(req));
	if (!all_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	switch (req.hdr.op) {
	case RDMAFS_OP_FLUSH:
		allowed = RDMAFS_FLUSH_ALL | RDMAFS_FLUSH_PROGRESS;
		fd_rule = (req.flags & RDMAFS_FLUSH_ALL) ? 0 : 1;
		break;
	case RDMAFS_OP_STAT:
		allowed = RDMAFS_STAT_MOUNT | RDMAFS_STAT_NOSCAN;
		fd_rule = (req.flags & RDMAFS_STAT_MOUNT) ? 0 : 1;
		break;
	case RDMAFS_OP_MAP:
		if (req.arg & ~(int32_t)(RDMAFS_MAP_READ | RDMAFS_MAP_WRITE) || !req.arg)
			return -EINVAL;
		fd_rule = 1;
		break;
	case RDMAFS_OP_EVICT:
		fd_rule = 0;
		break;
	case RDMAFS_OP_LEASE:
		if (req.arg < 0 || req.arg > 64)	/* 0 = no signal, else a valid signo */
			return -EINVAL;
		fd_rule = 1;
		break;
	case RDMAFS_OP_LEASE_LIST:
		if (req.arg < 0)
			return -EINVAL;
		fd_rule = 2;
		break;
	case RDMAFS_OP_LEASE_BREAK:
		fd_rule = 1;
		break;
	case RDMAFS_OP_METRICS:
		allowed = RDMAFS_METRICS_NOSCAN;
		fd_rule = 0;
		break;
	case RDMAFS_OP_FILES:
		if (req.arg < 0)
			return -EINVAL;
		allowed = RDMAFS_METRICS_NOSCAN;
		fd_rule = 0;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (req.hdr.op != RDMAFS_OP_MAP && req.hdr.op != RDMAFS_OP_LEASE &&
	    req.hdr.op != RDMAFS_OP_LEASE_LIST && req.hdr.op != RDMAFS_OP_FILES && req.arg)
		return -EINVAL;
	if (req.flags & ~allowed)
		return -EINVAL;
	if (nfds > 1 || (fd_rule == 1 && nfds != 1) || (fd_rule == 0 && nfds))
		return -EBADF;
	out->flags = req.flags;
	out->arg = req.arg;
	out->nfds = nfds;
	return 0;
}

size_t rdmafs_proto_encode_req(struct rdmafs_req *req, uint16_t op, uint32_t seq,
			       uint32_t flags, int32_t arg)
{
	memset(req, 0, sizeof(*req));
	req->hdr.magic = RDMAFS_PROTO_MAGIC;
	req->hdr.version = RDMAFS_PROTO_VERSION;
	req->hdr.op = op;
	req->hdr.len = sizeof(*req);
	req->hdr.seq = seq;
	req->flags = flags;
	req->arg = arg;
	return sizeof(*req);
}

size_t rdmafs_proto_encode_reply(struct rdmafs_reply *rep, uint16_t op, uint32_t seq,
				 int32_t error, uint32_t count, size_t rec_size)
{
	memset(rep, 0, sizeof(*rep));
	rep->hdr.magic = RDMAFS_PROTO_MAGIC;
	rep->hdr.version = RDMAFS_PROTO_VERSION;
	rep->hdr.op = op >= RDMAFS_OP_PROGRESS ? op : (uint16_t)(op | RDMAFS_REPLY_FLAG);
	rep->hdr.len = (uint32_t)(sizeof(*rep) + count * rec_size);
	rep->hdr.seq = seq;
	rep->error = error;
	rep->count = count;
	return rep->hdr.len;
}

int rdmafs_proto_check_reply(const void *buf, size_t len, uint16_t op, size_t rec_size)
{
	struct rdmafs_reply rep;
	uint16_t want = op >= RDMAFS_OP_PROGRESS ? op : (uint16_t)(op | RDMAFS_REPLY_FLAG);

	if (len < sizeof(rep) || len > RDMAFS_MSG_MAX)
		return -EBADMSG;
	memcpy(&rep, buf, sizeof(rep));
	if (rep.hdr.magic != RDMAFS_PROTO_MAGIC)
		return -EPROTO;
	if (rep.hdr.version != RDMAFS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (rep.hdr.op != want || rep.hdr.len != len || !all_zero(rep.reserved, sizeof(rep.reserved)))
		return -EBADMSG;
	if (rep.count > (RDMAFS_MSG_MAX - sizeof(rep)) / (rec_size ? rec_size : 1) ||
	    len != sizeof(rep) + (size_t)rep.count * rec_size)
		return -EBADMSG;
	if (rep.error > 0 || rep.error < -4095)
		return -EBADMSG;
	return 0;
}

void rdmafs_proto_unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

void rdmafs_proto_attach_fd(struct msghdr *msg, void *cbuf, size_t cbuf_size, int fd)
{
	struct cmsghdr *cm;

	msg->msg_control = cbuf;
	msg->msg_controllen = cbuf_size;
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

int rdmafs_proto_rundir_trusted(const struct stat *st, unsigned owner)
{
	if (!S_ISDIR(st->st_mode) || (st->st_uid != owner && st->st_uid != 0) ||
	    (st->st_mode & (S_IWGRP | S_IWOTH)))
		return -EPERM;
	return 0;
}

int rdmafs_proto_sock_path(const char *rundir, const char *mnt, unsigned maj, unsigned min,
			   char *buf, size_t size)
{
	char name[128];
	uint64_t h = 0xcbf29ce484222325ull;
	int r = rdmafs_proto_sock_name(mnt, name, sizeof(name));

	if (r)
		return r;
	r = snprintf(buf, size, "%s/%s@%u:%u.sock", rundir, name, maj, min);
	if (r >= 0 && (size_t)r < size)
		return 0;
	for (const unsigned char *q = (const unsigned char *)mnt; *q; q++)
		h = (h ^ *q) * 0x100000001b3ull;
	r = snprintf(buf, size, "%s/h-%016llx@%u:%u.sock", rundir, (unsigned long long)h, maj, min);
	return r >= 0 && (size_t)r < size ? 0 : -ENAMETOOLONG;
}
