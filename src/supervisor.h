/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * supervisor.h - wire format between the rdmafs supervisor (a descriptor store that
 * outlives daemon generations, doc/restart.md) and the daemon it runs. One
 * SOCK_SEQPACKET socketpair per generation; the daemon finds its end in the environment
 * (SUP_ENV_FD) and its generation number in SUP_ENV_GEN.
 *
 * Every message is one struct sup_msg header followed by @count 64-bit tags; PUT
 * requests and LIST replies carry one descriptor per tag (SCM_RIGHTS, in tag order).
 * Each request gets exactly one reply (LIST: one per page). A request that is malformed,
 * truncated or carries descriptors it should not is answered with an error and changes
 * nothing; descriptors that came with it are closed.
 */
#ifndef RDMAFS_SUPERVISOR_H
#define RDMAFS_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#define SUP_MAGIC 0x52505553u		/* "SUPR" little-endian */
#define SUP_VERSION 1
#define SUP_MAX_FDS 250			/* per message (the kernel's SCM_MAX_FD is 253) */
#define SUP_MAX_ENTRIES 65536		/* descriptors the store holds at most */

#define SUP_ENV_FD "RDMAFS_SUPERVISOR_FD"
#define SUP_ENV_GEN "RDMAFS_SUPERVISOR_GEN"
/* Generations after the first: CLOCK_MONOTONIC (ns) when the supervisor saw the previous
 * one exit (the start of the blackout), and the back-off it waited (ms) before this one. */
#define SUP_ENV_DIED "RDMAFS_SUPERVISOR_DIED_NS"
#define SUP_ENV_BACKOFF "RDMAFS_SUPERVISOR_BACKOFF_MS"
/* How the previous generation ended: its exit status (0-255) or 256 + its signal. */
#define SUP_ENV_PREV "RDMAFS_SUPERVISOR_PREV_EXIT"

/* Exit status of a daemon generation, as the supervisor reads it. */
#define SUP_EXIT_DONE 0			/* unmounted: the supervisor closes all and exits */
#define SUP_EXIT_HANDOVER 75		/* start the next generation now (upgrade) */
#define SUP_EXIT_DONE_ERR 76		/* the mount ended with an error (not every change
					 * committed, nothing to resume): the supervisor
					 * closes all and exits 1 */
#define SUP_EXIT_INCOMPAT 77		/* a resumed generation cannot serve this mount (its
					 * INIT reply or a state table layout differs from the
					 * recorded one), before SUP_READY: after an upgrade the
					 * supervisor goes back to the previous binary */
/*
 * Generation 0 exiting before SUP_READY: it could not mount; the supervisor exits with its
 * status. Anything else, or death by a signal: a crash; the next generation starts at
 * once, unless this was the third generation within 10 s to die before SUP_READY (a
 * start-up crash loop): then it waits 1 s, 2 s, ... up to 30 s.
 */

enum sup_op {
	/* daemon -> supervisor; tags[i] names fd i. An existing tag is replaced (its old
	 * descriptor closed). Reply: status 0 or -errno (-ENOSPC: store full), all or none. */
	SUP_PUT = 1,
	/* tags to close and forget. Reply: 0, or -ENOENT (a tag is unknown: nothing closed). */
	SUP_DROP = 2,
	/* arg = index of the first entry. Reply: up to SUP_MAX_FDS tags with their
	 * descriptors (duplicates: the store keeps its own), arg = index of the next page,
	 * 0 after the last. */
	SUP_LIST = 3,
	/* The generation serves: its death from now on is not a start-up failure and does not
	 * count towards the crash back-off. No tags. Reply: 0. */
	SUP_READY = 4,
};

/*
 * Tags: the kind in the top byte, an id below. The store does not interpret them; the
 * daemon's restart module (doc/restart.md, section 3) names what it keeps.
 */
#define SUP_TAG(kind, id) (((uint64_t)(kind) << 56) | ((uint64_t)(id) & ((1ULL << 56) - 1)))
#define SUP_TAG_KIND(tag) ((unsigned int)((tag) >> 56))
enum sup_kind {
	SUP_K_DEVFUSE = 1,	/* the /dev/fuse file of the mount */
	SUP_K_STATE,		/* state memfds (id: which table) */
	SUP_K_STAGING,		/* staging memfd of staged file id */
	SUP_K_LOCK,		/* stager lock fd of staged file id */
	SUP_K_LEASECONN,	/* lease connection of lease id */
	SUP_K_PIDFD,		/* pidfd of lease id's holder */
	SUP_K_FLOCK,		/* backing fd carrying a flock, of handle id */
	SUP_K_INODEFD,		/* permanent fd of inode slot id */
	SUP_K_CTLLISTEN,	/* the control socket's listener */
};

struct sup_msg {
	uint32_t magic;		/* SUP_MAGIC */
	uint16_t version;	/* SUP_VERSION */
	uint16_t op;		/* enum sup_op */
	uint32_t count;		/* tags following the header */
	int32_t status;		/* replies: 0 or -errno; requests: 0 */
	uint32_t arg;		/* SUP_LIST: first entry (request), next page (reply) */
	uint32_t reserved;	/* 0 */
	uint64_t tags[];
};
_Static_assert(sizeof(struct sup_msg) == 24, "sup_msg header is 24 bytes on the wire");

#define SUP_MSG_MAX (sizeof(struct sup_msg) + SUP_MAX_FDS * sizeof(uint64_t))

/*
 * The supervisor's loop (supervisor.c): runs generations of @argv (exec of @path, or of
 * argv[0] through PATH when NULL) until one ends the mount; its exit status. At the first
 * SUP_READY it writes one byte to @notify_fd (if >= 0) and closes it, and with @detach
 * points its stdin, stdout and stderr at /dev/null.
 */
int supervisor_run(const char *path, char *argv[], int notify_fd, bool detach);

#endif
