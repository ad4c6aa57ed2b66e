/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lease.h - pin holders' leases on staged files (lease.c).
 */
#ifndef RDMAFS_LEASE_H
#define RDMAFS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct staged;

struct lease;

#define LEASE_PATH_MAX 256		/* a holder's name of its file, as listed */

/*
 * Add a lease on @st for the process @pid. @notify(@arg) is called once when a break
 * starts (from the breaking thread, without locks of ours held; once per break, however
 * many breakers wait, and again for a later break after a denied one); @signo, if not 0,
 * is sent to @pid right after it (through a pidfd: never to a recycled pid). @path (may
 * be NULL) is how the holder named the file, for lease_list(). The caller
 * holds an open of the file (so its staging cannot be dropped meanwhile) and owns the
 * returned lease until lease_release(). NULL with errno: EINVAL (bad pid or signo), ESRCH
 * (@pid is gone), EAGAIN (a break of @st is under way: try again after it), ESHUTDOWN
 * (the daemon is stopping), ENOMEM.
 */
struct lease *lease_add(struct staged *st, pid_t pid, int signo, const char *path,
			void (*notify)(void *arg), void *arg);
/*
 * Restart (doc/restart.md 3.5). lease_keep(): before the lease is reported granted, its
 * record and the holder's connection @connfd and pidfd go to the supervisor's store, so a
 * daemon death does not end it; 0 or -errno (then it must not be granted). Released
 * leases leave the store. A resumed generation takes the kept leases back one at a time
 * (lease_kept_next(): 0, or -ENOENT when none is left; k->connfd is the caller's), finds
 * its file and makes each a lease again with lease_adopt() (its notify and arg), which
 * owns k->pidfd and returns NULL with the lease dropped if it cannot.
 */
int lease_keep(struct lease *l, int connfd, uint32_t seq);
/* The "granted" reply of @l (request @seq of lease_keep()) was sent: a daemon death from
 * now on must not send it again (lease_kept.replied). */
void lease_replied(struct lease *l);
struct lease_kept {
	uint32_t staged_slot;		/* its file: staging_find_kept() */
	struct staged *st;		/* the caller's, for lease_adopt() */
	uint32_t slot;
	int connfd, pidfd;
	pid_t pid;
	int signo;
	struct timespec since;
	char path[LEASE_PATH_MAX];
	uint32_t seq;			/* the LEASE request's sequence number */
	bool replied;			/* its "granted" went out (else the resumer sends it) */
};
int lease_kept_next(struct lease_kept *k);
struct lease *lease_adopt(struct lease_kept *k, void (*notify)(void *arg), void *arg);
/* Give up kept lease @k (its connection could not be made again): closes k->pidfd. */
void lease_kept_drop(struct lease_kept *k);
/*
 * The holder released (closed its lease fd or died). Wakes a waiting breaker. Frees @l
 * (also a lease already dropped by a revoke or a noticed death). Safe from @notify itself;
 * from another thread it waits for a @notify of @l in progress, so do not hold a lock
 * that @notify takes.
 */
void lease_release(struct lease *l);
/*
 * Break every lease on @st before @why frees its pages. Waits up to lease_break_time for
 * holders to release (a holder that dies releases: its pidfd is watched); then
 * lease_expire decides: deny -> -EBUSY, revoke -> SIGBUS to the holders and 0. Call it
 * WITHOUT st->commit_lock: a dying holder's close sends FUSE FLUSH, which commits, and
 * must not wait for the breaker (the holder would never finish dying). Several breakers
 * may wait at once; holders are notified once.
 * lease_break_start() is for the operations that free pages: on 0 the break stays open,
 * new leases of @st are refused (EAGAIN), until the caller has freed the pages (under
 * commit_lock) and calls lease_break_done(@st). lease_break() is start + done, for a
 * break on demand (rdmafsctl lease break).
 */
int lease_break_start(struct staged *st, const char *why);
void lease_break_done(struct staged *st);
int lease_break(struct staged *st, const char *why);
/* Number of live leases on @st (0 means its pages may be freed); notices dead holders. */
unsigned lease_count(struct staged *st);
/*
 * Daemon shutdown: break every lease (notify, signal), wait briefly (at most
 * lease_break_time, capped at LEASE_SHUTDOWN_WAIT seconds) for releases, then revoke or
 * just log the rest; later lease_add()s fail with ESHUTDOWN. Before ctl_exit().
 */
#define LEASE_SHUTDOWN_WAIT 2
void lease_shutdown(void);

/* One holder, for `rdmafsctl lease list`. */
struct lease_info {
	uint64_t ino;			/* backing inode number of the leased file */
	pid_t pid;
	int signo;
	struct timespec since;		/* CLOCK_REALTIME when granted */
	bool breaking;			/* notified of a break not yet over */
	char path[LEASE_PATH_MAX];	/* as given to lease_add(), "" if none; may be cut */
};
/*
 * Holders of @st (NULL: of every file), at most @max into @out (may be NULL if @max is 0).
 * Returns how many there are, which may exceed @max.
 */
size_t lease_list(struct staged *st, struct lease_info *out, size_t max);

/* Counters since start-up, for `rdmafsctl stat`. */
struct lease_stats {
	uint64_t held;			/* leases held now */
	uint64_t granted;		/* lease_add()s that succeeded */
	uint64_t breaks;		/* lease_break()s that found leases to break */
	uint64_t denies;		/* ... that timed out and failed with EBUSY */
	uint64_t revokes;		/* leases revoked (SIGBUS) on timeout or shutdown */
	uint64_t deaths;		/* leases dropped because the holder died (pidfd) */
};
void lease_stats(struct lease_stats *out);

#endif
