/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rdmafs/proto.h - the control socket's wire format, shared by the daemon (src/ctl.c) and
 * librdmafs: one SOCK_SEQPACKET datagram per message, fixed-width fields in host byte order
 * (the socket never leaves the machine), explicit reserved bytes that must be zero.
 *
 * Where the socket is: rdmafs_proto_sock_path(), RDMAFS_RUNDIR/<name>@<maj>:<min>.sock, <name>
 * from rdmafs_proto_sock_name() of the mountpoint's canonical path (realpath), maj:min the
 * FUSE mount's device. A file's mount (and device) is found from the fd's mnt_id.
 *
 * A request is struct rdmafs_req (48 bytes), with at most one file descriptor attached as
 * SCM_RIGHTS: the client's open file on the mount, proving access to it. A reply is
 * struct rdmafs_reply (32 bytes) followed by @count payload records of the op's type;
 * MAP replies carry the staging memfd as SCM_RIGHTS. While a request runs the daemon may
 * send RDMAFS_OP_PROGRESS messages first. A lease connection receives one
 * RDMAFS_OP_LEASE_BREAK_NOTICE when its lease is being broken.
 */
#ifndef RDMAFS_PROTO_H
#define RDMAFS_PROTO_H

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define RDMAFS_PROTO_MAGIC 0x464d4452u	/* "RDMF" in memory on little endian */
#define RDMAFS_PROTO_VERSION 1
/* No message is larger: requests are exactly sizeof(struct rdmafs_req). */
#define RDMAFS_MSG_MAX 16384
#define RDMAFS_REPLY_FLAG 0x8000u	/* op of a reply = op of the request | this */

enum rdmafs_op {
	RDMAFS_OP_FLUSH = 1,		/* fd: commit the file; flags ALL: every file */
	RDMAFS_OP_STAT = 2,		/* fd: one file; flags MOUNT: the mount */
	RDMAFS_OP_MAP = 3,		/* fd; arg = PROT_* wanted; reply carries the memfd */
	RDMAFS_OP_EVICT = 4,		/* drop staging nobody uses (commits it first) */
	RDMAFS_OP_LEASE = 5,		/* fd; arg = signo; the connection becomes the lease */
	RDMAFS_OP_LEASE_LIST = 6,	/* fd optional; arg = first index (paging) */
	RDMAFS_OP_LEASE_BREAK = 7,	/* fd: break every lease on the file */
	/* Added after 0.1 (same version: a daemon without them answers -EOPNOTSUPP). */
	RDMAFS_OP_METRICS = 8,		/* no fd: the mount's counters for monitoring */
	RDMAFS_OP_FILES = 9,		/* no fd; arg = first index (paging): staged files */
	RDMAFS_OP_PROGRESS = 0x100,	/* daemon -> client, before a reply */
	RDMAFS_OP_LEASE_BREAK_NOTICE = 0x101,	/* daemon -> lease holder */
};

/* Request flags. */
#define RDMAFS_FLUSH_ALL 0x1u
#define RDMAFS_FLUSH_PROGRESS 0x2u	/* count bytes to commit first, send PROGRESS */
#define RDMAFS_STAT_MOUNT 0x1u
#define RDMAFS_STAT_NOSCAN 0x2u		/* do not hash staging to count changed bytes */
#define RDMAFS_MAP_WRITE 0x2u		/* arg bits of MAP (same values as PROT_*) */
#define RDMAFS_MAP_READ 0x1u
#define RDMAFS_METRICS_NOSCAN 0x2u	/* METRICS, FILES: do not hash staging (dirty unknown) */

struct rdmafs_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t len;			/* whole message in bytes, header included */
	uint32_t seq;			/* chosen by the client, echoed in replies */
};

struct rdmafs_req {
	struct rdmafs_msg_hdr hdr;
	uint32_t flags;
	int32_t arg;
	uint8_t reserved[24];
};

struct rdmafs_reply {
	struct rdmafs_msg_hdr hdr;
	int32_t error;			/* 0 or a negative errno */
	uint32_t count;			/* payload records that follow */
	uint32_t next;			/* LEASE_LIST: index to ask for next, 0 = done */
	uint8_t reserved[4];
};

/* Flags of struct rdmafs_wire_stat. */
#define RDMAFS_ST_STAGED 0x1u		/* the file has staging memory */
#define RDMAFS_ST_SEALED 0x2u		/* nobody can write it any more */
#define RDMAFS_ST_PASSTHROUGH 0x4u	/* the kernel does the mount's I/O */
#define RDMAFS_ST_CHANGED_KNOWN 0x8u	/* changed_bytes was measured (scan) */

/* STAT payload: one record, a file or the whole mount (sums; files = staged files). */
struct rdmafs_wire_stat {
	uint64_t size;			/* staged size (file) / bytes staged (mount) */
	uint64_t staged_bytes;		/* memory held by staging */
	uint64_t changed_bytes;		/* not yet committed */
	uint64_t committed_bytes;	/* written and fdatasynced, lifetime */
	uint64_t commit_ns;		/* time in successful commits, lifetime */
	uint64_t commits, failures;
	uint64_t scanned_bytes;
	int64_t last_commit_sec;	/* CLOCK_REALTIME, 0 = never */
	int64_t last_error_sec;
	uint32_t last_commit_nsec;
	int32_t last_error;		/* negative errno of the last failed commit, 0 if none */
	int32_t pending_error;		/* returned by the next flush */
	uint32_t opens, opens_w, leases;
	uint32_t files;			/* staged files counted */
	uint32_t staging_mode;		/* 0 shmem, 1 thp, 2 hugetlb, 3 none */
	uint64_t page_size;
	uint64_t chunk_size;
	uint64_t budget;		/* mount: staging_budget, bytes */
	uint64_t src_ino;		/* file: backing inode number */
	uint32_t flags;			/* RDMAFS_ST_* */
	uint32_t flush_interval;	/* seconds */
	/* mount: lease counters since start-up */
	uint64_t lease_granted, lease_breaks, lease_denies, lease_revokes, lease_deaths;
	uint64_t lost_pages;		/* staged pages the kernel dropped (never committed) */
	uint64_t syncs;			/* fdatasyncs of backing files, lifetime */
	uint64_t budget_refusals;	/* writes refused with ENOSPC: staging_budget reached */
	/* mount: the process that keeps the mount's descriptors (doc/restart.md), 0 = none */
	int32_t supervisor_pid;
	uint32_t restart_flags;		/* mount: RDMAFS_RS_* */
	/* mount: the daemon's restarts (doc/restart.md) */
	uint32_t generation;		/* of the daemon serving now, 0 = the first */
	uint32_t restarts;		/* daemon deaths the mount survived */
	uint64_t last_blackout_us;	/* death to the first answer after the last one */
	/* mount: how the generation before this one ended: its exit status (0-255),
	 * 256 + the signal that killed it, or -1 (none: generation 0) */
	int32_t prev_exit;
	uint32_t reserved2;
	char version[48];		/* mount: the serving daemon's version, NUL-terminated */
};
/* restart_flags of struct rdmafs_wire_stat */
#define RDMAFS_RS_RESTARTABLE 0x1u	/* a daemon death would be survived */

/* MAP payload; the memfd rides along as SCM_RIGHTS. */
struct rdmafs_wire_map {
	uint64_t size;			/* bytes of file data */
	uint64_t page_size;		/* map a multiple of this */
	uint32_t prot;			/* what the fd allows: RDMAFS_MAP_* */
	uint8_t reserved[12];
};

/* FLUSH and EVICT payload; PROGRESS carries the same record. */
struct rdmafs_wire_count {
	uint64_t files_done, files_total;
	uint64_t bytes;			/* committed (flush) or freed (evict); PROGRESS: written */
	uint32_t files_failed;
	int32_t first_error;
	uint64_t bytes_total;		/* FLUSH_PROGRESS: bytes to commit when it began, else 0 */
};

#define RDMAFS_LEASE_PATH_MAX 208
/* LEASE_LIST payload. */
struct rdmafs_wire_lease {
	uint64_t src_ino;
	int32_t pid;			/* holder */
	int32_t signo;
	uint32_t state;			/* 0 held, 1 being broken */
	uint8_t reserved[12];
	char path[RDMAFS_LEASE_PATH_MAX];	/* mount-relative, NUL-terminated, may be cut */
};

#define RDMAFS_METRICS_BUCKETS 16
#define RDMAFS_METRICS_ERRNOS 16
#define RDMAFS_DIRTY_UNKNOWN UINT64_MAX
/* Flags of struct rdmafs_wire_metrics and rdmafs_wire_file. */
#define RDMAFS_MF_DIRTY_PARTIAL 0x1u	/* some files were in a commit: not scanned */
#define RDMAFS_MF_COMMITTING 0x2u	/* file: a commit of it is running */
#define RDMAFS_MF_SEALED 0x4u		/* file: nobody can write it any more */

/*
 * METRICS payload: one record. Totals count since the daemon started (monotonic, unlike
 * the STAT sums over the files staged now); gauges are now.
 */
struct rdmafs_wire_metrics {
	uint64_t staged_bytes;		/* gauge: staging memory charged to the budget */
	uint64_t budget_bytes;		/* gauge: staging_budget */
	uint64_t dirty_bytes;		/* gauge: not yet committed; RDMAFS_DIRTY_UNKNOWN */
	uint64_t files;			/* gauge: staged files */
	uint64_t files_committing;	/* gauge: commits running now */
	uint64_t files_failing;		/* gauge: files whose next flush returns an error */
	uint64_t opens, opens_w;	/* gauge: open handles of staged files */
	uint64_t leases;		/* gauge: leases held */
	uint64_t files_staged_total;	/* files staged (filled from the backing file) */
	uint64_t files_dropped_total;	/* staging released when idle and clean */
	uint64_t evictions_total;	/* staging evicted to make room (staging_budget) */
	uint64_t evicted_bytes_total;
	uint64_t committed_bytes_total;	/* written and fdatasynced */
	uint64_t written_bytes_total;	/* written by commit writes (before fdatasync) */
	uint64_t scanned_bytes_total;	/* hashed by commit passes */
	uint64_t commits_total;		/* commits that wrote something, = histogram count */
	uint64_t commit_ns_total;	/* = histogram sum */
	uint64_t failures_total;	/* failed commits, all errnos */
	uint64_t lease_granted, lease_breaks, lease_denies, lease_revokes, lease_deaths;
	uint32_t flags;			/* RDMAFS_MF_* */
	uint32_t nbuckets;		/* commit latency buckets used, <= RDMAFS_METRICS_BUCKETS */
	uint64_t bucket_le_ns[RDMAFS_METRICS_BUCKETS];	/* upper bounds, last UINT64_MAX */
	uint64_t bucket_count[RDMAFS_METRICS_BUCKETS];	/* commits in (previous, le] */
	uint32_t nerrnos;		/* failure records used, <= RDMAFS_METRICS_ERRNOS */
	uint32_t reserved1;
	struct {
		int32_t error;		/* negative errno; 0: every other errno */
		uint32_t reserved;
		uint64_t count;
	} failures[RDMAFS_METRICS_ERRNOS];
	uint8_t reserved[64];
};

/* FILES payload: one record per staged file. */
struct rdmafs_wire_file {
	uint64_t src_ino;		/* backing inode number */
	uint64_t size;
	uint64_t staged_bytes;
	uint64_t dirty_bytes;		/* RDMAFS_DIRTY_UNKNOWN: not scanned */
	uint64_t committed_bytes;	/* since staged */
	uint64_t commits, failures;
	uint64_t commit_ns;
	uint32_t opens, opens_w, leases;
	uint32_t flags;			/* RDMAFS_MF_* */
	int32_t pending_error;
	uint32_t staging_mode;
	uint8_t reserved[24];
	char path[RDMAFS_LEASE_PATH_MAX];	/* mount-relative, NUL-terminated, may be cut */
};

static_assert(sizeof(struct rdmafs_msg_hdr) == 16, "wire size");
static_assert(sizeof(struct rdmafs_req) == 48, "wire size");
static_assert(sizeof(struct rdmafs_reply) == 32, "wire size");
static_assert(sizeof(struct rdmafs_wire_stat) == 296, "wire size");
static_assert(sizeof(struct rdmafs_wire_map) == 32, "wire size");
static_assert(sizeof(struct rdmafs_wire_count) == 40, "wire size");
static_assert(sizeof(struct rdmafs_wire_lease) == 240, "wire size");
static_assert(sizeof(struct rdmafs_wire_metrics) == 784, "wire size");
static_assert(sizeof(struct rdmafs_wire_file) == 320, "wire size");

#define RDMAFS_LEASE_PER_MSG ((RDMAFS_MSG_MAX - sizeof(struct rdmafs_reply)) / \
			      sizeof(struct rdmafs_wire_lease))
#define RDMAFS_FILES_PER_MSG ((RDMAFS_MSG_MAX - sizeof(struct rdmafs_reply)) / \
			      sizeof(struct rdmafs_wire_file))

/* A request as the daemon understood it. */
struct rdmafs_proto_req {
	uint16_t op;
	uint32_t seq, flags;
	int32_t arg;
	unsigned nfds;			/* descriptors that came with it: 0 or 1 */
};

/*
 * Decode and validate one request datagram of @len bytes that came with @nfds file
 * descriptors (@truncated: the kernel cut the datagram or its control data). Pure.
 * Returns 0, or -errno to send back: -EMSGSIZE (oversized/cut), -EBADMSG (short, bad
 * length), -EPROTO (bad magic), -EPROTONOSUPPORT (version), -EOPNOTSUPP (op),
 * -EINVAL (flags, arg, reserved bytes), -EBADF (an fd missing or not expected).
 * @out->seq is filled whenever the header could be read, so errors echo it.
 */
int rdmafs_proto_decode_req(const void *buf, size_t len, unsigned nfds, int truncated,
			    struct rdmafs_proto_req *out);
/* Fill a request; returns its size. */
size_t rdmafs_proto_encode_req(struct rdmafs_req *req, uint16_t op, uint32_t seq,
			       uint32_t flags, int32_t arg);
/*
 * Check a reply (or notice) datagram: header, length = header + count * @rec_size for
 * replies to @op. Returns 0 or -EBADMSG/-EPROTO/-EPROTONOSUPPORT. Pure.
 */
int rdmafs_proto_check_reply(const void *buf, size_t len, uint16_t op, size_t rec_size);
/* Fill a reply header for @count records of @rec_size; returns the message size. */
size_t rdmafs_proto_encode_reply(struct rdmafs_reply *rep, uint16_t op, uint32_t seq,
				 int32_t error, uint32_t count, size_t rec_size);
/* Payload record size of replies to @op (0: none, -1 unknown op). */
long rdmafs_proto_rec_size(uint16_t op);

/* Attach @fd to @msg as SCM_RIGHTS, in @cbuf (CMSG_SPACE(sizeof(int)) bytes, zeroed). */
struct msghdr;
void rdmafs_proto_attach_fd(struct msghdr *msg, void *cbuf, size_t cbuf_size, int fd);

/* Undo /proc/self/mountinfo's octal escapes (\040 for a space, ...) in place. */
void rdmafs_proto_unescape(char *s);

/*
 * May the control-socket directory described by @st (from lstat) be trusted? It must be a
 * real directory owned by @owner (or root) that no one else can write: whoever can write
 * it can put a socket of theirs where clients send their files. 0 or -EPERM.
 */
struct stat;
int rdmafs_proto_rundir_trusted(const struct stat *st, unsigned owner);

/*
 * Full socket path of the rdmafs mount at @mnt (canonical path) with device @maj:@min:
 * @rundir/<name>@<maj>:<min>.sock, <name> from rdmafs_proto_sock_name(). The device
 * (unique among live mounts) keeps two mounts on one mountpoint apart; a path too long
 * for sun_path uses the name's hashed form. 0 or -ENAMETOOLONG.
 */
int rdmafs_proto_sock_path(const char *rundir, const char *mnt, unsigned maj, unsigned min,
			   char *buf, size_t size);

/*
 * Socket file name (no directory, no ".sock") for the mountpoint's canonical path @path:
 * the path without its leading '/', '/' -> '-', bytes other than [A-Za-z0-9_.] -> \xNN
 * (so '-' is \x2d, as systemd escapes paths); "-" for "/". A name longer than 80 bytes
 * (sun_path is 108) becomes "h-" and the 16 hex digits of the path's FNV-1a 64 hash.
 * Returns 0 or -ENAMETOOLONG if @size is too small.
 */
static inline int rdmafs_proto_sock_name(const char *path, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char name[400];
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)path;
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *q = p; *q; q++)
		h = (h ^ *q) * 0x100000001b3ull;
	while (*p == '/')
		p++;
	if (!*p)
		name[n++] = '-';
	for (; *p && n < sizeof(name) - 5; p++) {
		if (*p == '/') {
			if (p[1] && p[1] != '/')
				name[n++] = '-';
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '_' || (*p == '.' && n)) {
			name[n++] = (char)*p;
		} else {
			name[n++] = '\\';
			name[n++] = 'x';
			name[n++] = hex[*p >> 4];
			name[n++] = hex[*p & 15];
		}
	}
	name[n] = 0;
	if (n > 80 || *p)
		n = (size_t)snprintf(name, sizeof(name), "h-%016llx", (unsigned long long)h);
	if (n + 1 > size)
		return -ENAMETOOLONG;
	memcpy(buf, name, n + 1);
	return 0;
}

#endif
