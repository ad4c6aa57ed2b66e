// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lease.c - owns leases of pin holders on staged files: the lease table and the
 * break/wait/expire policy. An operation that would free staged pages breaks them first.
 */
#include "rdmafsd.h"
#include "restart.h"

#include <inttypes.h>
#include <utlist.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

/* How often a waiting breaker looks at the holders' pidfds for one that died. */
#define DEATH_POLL_MS 50

struct lease {
	struct staged *st;		/* a staging reference, dropped when the lease is freed */
	pid_t pid;
	int pidfd;			/* owned; a lease without one is refused */
	int signo;
	char path[LEASE_PATH_MAX];	/* the holder's name of the file, for listings */
	void (*notify)(void *arg);
	void *arg;
	struct timespec since;		/* CLOCK_REALTIME when granted */
	uint32_t rslot;			/* its record + 1 (lease_keep()), 0: none */
	/* lt.lock protects everything below. */
	bool live;			/* counted in st->nleases: its pages must not be freed */
	bool notified;			/* told of the break(s) now under way */
	bool notifying;			/* notifier is calling notify() outside the lock */
	bool notifier_frees;		/* released from inside notify(): the notifier frees it */
	pthread_t notifier;
	struct lease *next, *prev;	/* lt.head (utlist) */
};

static struct {
	/*
	 * A leaf lock (taken under ino->lock, commit_lock or st->lock, nothing taken under
	 * it). Protects the list, every lease's state, st->nleases, st->lease_breakers,
	 * shutdown and stats.
	 */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a lease went away or stopped notifying */
	struct lease *head;		/* every lease not yet freed, live or dropped */
	bool shutdown;
	struct lease_stats stats;
} lt = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/*
 * A lease the next daemon generation takes over (doc/restart.md 3.5): one record per kept
 * lease in RESTART_T_LEASES; its connection (SUP_K_LEASECONN) and its holder's pidfd
 * (SUP_K_PIDFD) are in the supervisor's store under the record's slot, so the holder
 * never sees its lease fd close when the daemon dies.
 */
#define LEASE_LAYOUT 2
struct lease_rec {
	uint32_t staged_slot;		/* st->rslot - 1 of the leased file */
	int32_t pid;
	int32_t signo;
	uint32_t replied;		/* lease_replied(): "granted" went out */
	int64_t since_sec, since_nsec;
	char path[LEASE_PATH_MAX];
	uint32_t seq;			/* the LEASE request's, for a "granted" not sent yet */
	uint32_t reserved;
};

static struct {
	pthread_once_t once;
	struct restart_table *t;
} kept = { .once = PTHREAD_ONCE_INIT };

static void kept_open(void)
{
	kept.t = restart_table_open(RESTART_T_LEASES, sizeof(struct lease_rec), LEASE_LAYOUT,
				    SUP_MAX_ENTRIES / 2);
	if (!kept.t)
		log_err("restart: lease table: %s (leases will not survive a restart)",
			strerror(errno));
}

static struct restart_table *kept_table(void)
{
	pthread_once(&kept.once, kept_open);
	return kept.t;
}

/* The lease goes: its record, connection and pidfd leave the store. */
static void unkeep(struct lease *l)
{
	uint32_t slot;

	if (!l->rslot || !kept.t)
		return;
	slot = l->rslot - 1;
	restart_table_free(kept.t, slot);
	restart_drop(SUP_TAG(SUP_K_LEASECONN, slot));
	restart_drop(SUP_TAG(SUP_K_PIDFD, slot));
	l->rslot = 0;
}

static uint64_t ino_nr(const struct staged *st)
{
	return st->ino ? (uint64_t)st->ino->src_ino : 0;
}

static void send_signal(const struct lease *l, int sig)
{
	/* Never kill(pid): the pid may be another process's by now. */
	int r = pidfd_send_signal(l->pidfd, sig, NULL, 0);

	if (r < 0 && errno != ESRCH)	/* ESRCH: it just died, which releases the lease */
		log_warn("lease ino=%" PRIu64 " pid=%d: signal %d: %s", ino_nr(l->st), (int)l->pid,
			 sig, strerror(errno));
}

static bool holder_dead(const struct lease *l)
{
	struct pollfd p = { .fd = l->pidfd, .events = POLLIN };

	/* A pidfd polls readable once its process has exited. */
	return l->pidfd >= 0 && poll(&p, 1, 0) == 1;
}

/* The lease no longer protects pages: uncount it and wake breakers; lt.lock held. */
static void drop_locked(struct lease *l)
{
	if (!l->live)
		return;
	l->live = false;
	l->st->nleases--;
	lt.stats.held--;
	pthread_cond_broadcast(&lt.cond);
}

static void unlink_locked(struct lease *l)
{
	DL_DELETE(lt.head, l);
}

/* After unlink_locked(), without lt.lock: staging_put() may free the staging. */
static void free_lease(struct lease *l)
{
	unkeep(l);
	if (l->pidfd >= 0)
		close(l->pidfd);
	staging_put(l->st);
	free(l);
}

static bool matches(const struct lease *l, const struct staged *st)
{
	return l->live && (!st || l->st == st);
}

/* Drop the live leases of @st (NULL: of all files) whose holder exited; lt.lock held. */
static void reap_dead_locked(const struct staged *st)
{
	for (struct lease *l = lt.head; l; l = l->next) {
		if (!matches(l, st) || !holder_dead(l))
			continue;
		log_notice("lease ino=%" PRIu64 " pid=%d: holder exited, lease released",
			   ino_nr(l->st), (int)l->pid);
		lt.stats.deaths++;
		drop_locked(l);
	}
}

/*
 * Notify the live holders of @st (NULL: all) not told yet: notify() then the signal, each
 * once per break. lt.lock held; it is dropped while calling out, the lease pinned by
 * ->notifying so that lease_release() cannot free it (or the caller's @arg) meanwhile.
 */
static void notify_holders_locked(const struct staged *st)
{
	struct lease **v, *l;
	size_t n = 0, cap = 0;

	for (l = lt.head; l; l = l->next)
		cap += matches(l, st) && !l->notified && !l->notifying;
	if (!cap)
		return;
	v = calloc(cap, sizeof(*v));
	if (!v) {
		log_err("lease break: out of memory, %zu holder(s) not notified", cap);
		return;
	}
	for (l = lt.head; l && n < cap; l = l->next) {
		if (!matches(l, st) || l->notified || l->notifying)
			continue;
		l->notified = true;
		l->notifying = true;
		l->notifier = pthread_self();
		v[n++] = l;
	}
	pthread_mutex_unlock(&lt.lock);
	for (size_t i = 0; i < n; i++) {
		/* The message first, so a signal handler finds the lease fd readable. */
		if (v[i]->notify)
			v[i]->notify(v[i]->arg);
		if (v[i]->signo)
			send_signal(v[i], v[i]->signo);
	}
	pthread_mutex_lock(&lt.lock);
	for (size_t i = 0; i < n; i++) {
		v[i]->notifying = false;
		if (v[i]->notifier_frees)
			unlink_locked(v[i]);
		else
			v[i] = NULL;	/* a lease_release() elsewhere may free it now */
	}
	pthread_cond_broadcast(&lt.cond);
	pthread_mutex_unlock(&lt.lock);
	for (size_t i = 0; i < n; i++)
		if (v[i])
			free_lease(v[i]);
	free(v);
	pthread_mutex_lock(&lt.lock);
}

/* Wait on lt.cond until @deadline_ns (monotonic) or DEATH_POLL_MS; lt.lock held. */
static void wait_slice_locked(uint64_t deadline_ns)
{
	uint64_t t = MIN(deadline_ns, now_ns() + DEATH_POLL_MS * 1000000ull);
	struct timespec ts = { .tv_sec = t / 1000000000ull, .tv_nsec = t % 1000000000ull };

	pthread_cond_clockwait(&lt.cond, &lt.lock, CLOCK_MONOTONIC, &ts);
}

static uint64_t deadline_after(unsigned seconds)
{
	return now_ns() + (uint64_t)seconds * 1000000000ull;
}

/* Waits for every live lease of @st (NULL: all) to go; false on timeout. lt.lock held. */
static bool wait_released_locked(const struct staged *st, uint64_t deadline)
{
	for (;;) {
		reap_dead_locked(st);
		if (st ? !st->nleases : !lt.stats.held)
			return true;
		if (now_ns() >= deadline)
			return false;
		wait_slice_locked(deadline);
	}
}

/* Revoke the live leases of @st (NULL: all): SIGBUS, dropped. lt.lock held. */
static void revoke_locked(const struct staged *st, const char *why)
{
	for (struct lease *l = lt.head; l; l = l->next) {
		if (!matches(l, st))
			continue;
		log_warn("lease ino=%" PRIu64 " pid=%d: not released within %us for %s: revoked "
			 "(SIGBUS)", ino_nr(l->st), (int)l->pid, cfg->lease_break_time, why);
		send_signal(l, SIGBUS);
		lt.stats.revokes++;
		drop_locked(l);
	}
}

/* One breaker of @st is done; the last one re-arms notification. lt.lock held. */
static void end_break_locked(struct staged *st)
{
	if (--st->lease_breakers)
		return;
	for (struct lease *l = lt.head; l; l = l->next)
		if (l->st == st)
			l->notified = false;
}

/* lease_add() with the holder's @pidfd (taken), granted at @since (NULL: now). */
static struct lease *lease_new(struct staged *st, pid_t pid, int pidfd, int signo,
			       const char *path, const struct timespec *since,
			       void (*notify)(void *arg), void *arg)
{
	struct lease *l = calloc(1, sizeof(*l));
	int err = 0;

	if (!l) {
		close(pidfd);
		errno = ENOMEM;
		return NULL;
	}
	l->pidfd = pidfd;
	l->st = st;
	l->pid = pid;
	l->signo = signo;
	snprintf(l->path, sizeof(l->path), "%s", path ? path : "");
	l->notify = notify;
	l->arg = arg;
	if (since)
		l->since = *since;
	else
		clock_gettime(CLOCK_REALTIME, &l->since);
	staging_get(st);

	pthread_mutex_lock(&lt.lock);
	if (lt.shutdown)
		err = ESHUTDOWN;
	else if (st->lease_breakers)
		err = EAGAIN;	/* as F_SETLEASE during a break: the holder retries after it */
	if (!err) {
		l->live = true;
		st->nleases++;
		DL_PREPEND(lt.head, l);
		lt.stats.granted++;
		lt.stats.held++;
		staging_note_change(st);	/* its holder may write: scanned again */
	}
	pthread_mutex_unlock(&lt.lock);
	if (err) {
		free_lease(l);
		errno = err;
		return NULL;
	}
	return l;
}

struct lease *lease_add(struct staged *st, pid_t pid, int signo, const char *path,
			void (*notify)(void *arg), void *arg)
{
	struct lease *l;
	int pidfd, err;

	if (!st || pid <= 0 || signo < 0 || signo > SIGRTMAX) {
		errno = EINVAL;
		return NULL;
	}
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		/*
		 * ESRCH: the holder is already gone. Anything else (EMFILE, EINVAL for a
		 * thread id): no lease, because without a pidfd its death would go unseen and
		 * its signal would go to whatever process has that pid by then.
		 */
		err = errno;
		if (err != ESRCH)
			log_notice("lease for pid=%d refused: pidfd_open: %s", (int)pid,
				   strerror(err));
		errno = err;
		return NULL;
	}
	l = lease_new(st, pid, pidfd, signo, path, NULL, notify, arg);
	if (l)
		log_info("lease ino=%" PRIu64 " granted to pid=%d signo=%d", ino_nr(st),
			 (int)pid, signo);
	return l;
}

int lease_keep(struct lease *l, int connfd, uint32_t seq)
{
	struct restart_table *t = kept_table();
	struct lease_rec *r;
	int64_t slot;
	int e;

	if (!t)
		return -ENOMEM;
	if (!l->st->rslot)
		return 0;	/* its staging is not kept either (no restart table) */
	slot = restart_table_alloc(t);
	if (slot < 0)
		return (int)slot;
	r = restart_table_rec(t, slot);
	r->staged_slot = l->st->rslot - 1;
	r->pid = l->pid;
	r->signo = l->signo;
	r->since_sec = l->since.tv_sec;
	r->since_nsec = l->since.tv_nsec;
	memcpy(r->path, l->path, sizeof(r->path));
	r->seq = seq;
	r->replied = 0;
	l->rslot = slot + 1;
	e = restart_put(SUP_TAG(SUP_K_LEASECONN, slot), connfd);
	if (!e)
		e = restart_put(SUP_TAG(SUP_K_PIDFD, slot), l->pidfd);
	if (e) {
		log_err("lease ino=%" PRIu64 " pid=%d: cannot keep it for a restart: %s",
			ino_nr(l->st), (int)l->pid, strerror(-e));
		unkeep(l);
		return e;
	}
	restart_table_publish(t, slot);
	return 0;
}

/* Forget kept lease @k's record and store entries. */
static void kept_forget(const struct lease_kept *k)
{
	restart_table_free(kept.t, k->slot);
	restart_drop(SUP_TAG(SUP_K_LEASECONN, k->slot));
	restart_drop(SUP_TAG(SUP_K_PIDFD, k->slot));
}

int lease_kept_next(struct lease_kept *k)
{
	struct restart_table *t = kept_table();
	uint32_t hwm = t && restart_table_adopted(t) ? restart_table_hwm(t) : 0;
	static uint32_t next;	/* resume runs once, in one thread (ctl_init()) */

	for (; next < hwm; next++) {
		uint32_t slot = next;
		struct lease_rec *r = restart_table_rec(t, slot);
		int conn, pidfd;

		if (!restart_table_valid(t, slot))
			continue;
		conn = restart_take(SUP_TAG(SUP_K_LEASECONN, slot));
		pidfd = restart_take(SUP_TAG(SUP_K_PIDFD, slot));
		k->st = NULL;
		if (conn < 0 || pidfd < 0) {
			log_err("restart: lease of pid=%d (record %" PRIu32 "): its connection or "
				"pidfd is not in the store: not resumed", (int)r->pid, slot);
			if (conn >= 0)
				close(conn);
			if (pidfd >= 0)
				close(pidfd);
			k->slot = slot;
			kept_forget(k);
			continue;
		}
		k->staged_slot = r->staged_slot;
		k->slot = slot;
		k->connfd = conn;
		k->pidfd = pidfd;
		k->pid = r->pid;
		k->signo = r->signo;
		k->since = (struct timespec){ r->since_sec, r->since_nsec };
		memcpy(k->path, r->path, sizeof(k->path));
		k->path[sizeof(k->path) - 1] = 0;
		k->seq = r->seq;
		k->replied = __atomic_load_n(&r->replied, __ATOMIC_ACQUIRE);
		next++;
		return 0;
	}
	return -ENOENT;
}

void lease_replied(struct lease *l)
{
	struct restart_table *t = kept_table();

	if (l->rslot && t)
		__atomic_store_n(&((struct lease_rec *)restart_table_rec(t, l->rslot - 1))->replied,
				 1, __ATOMIC_RELEASE);
}

void lease_kept_drop(struct lease_kept *k)
{
	close(k->pidfd);
	kept_forget(k);
}

struct lease *lease_adopt(struct lease_kept *k, void (*notify)(void *arg), void *arg)
{
	struct lease *l = lease_new(k->st, k->pid, k->pidfd, k->signo, k->path, &k->since,
				    notify, arg);

	if (!l) {
		kept_forget(k);
		return NULL;
	}
	l->rslot = k->slot + 1;
	log_info("lease ino=%" PRIu64 " of pid=%d resumed", ino_nr(l->st), (int)l->pid);
	return l;
}

void lease_release(struct lease *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&lt.lock);
	if (l->live)
		log_info("lease ino=%" PRIu64 " pid=%d released%s", ino_nr(l->st), (int)l->pid,
			 l->notified ? " on break" : "");
	drop_locked(l);
	if (l->notifying && pthread_equal(l->notifier, pthread_self())) {
		l->notifier_frees = true;	/* called from notify(), up this stack */
		pthread_mutex_unlock(&lt.lock);
		return;
	}
	/* A breaker calling notify() for it elsewhere: the caller's @arg must outlive that. */
	while (l->notifying)
		pthread_cond_wait(&lt.cond, &lt.lock);
	unlink_locked(l);
	pthread_mutex_unlock(&lt.lock);
	free_lease(l);
}

int lease_break_start(struct staged *st, const char *why)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)cfg->lease_break_time * 1000000000ull;
	unsigned n;
	int r = 0;

	pthread_mutex_lock(&lt.lock);
	st->lease_breakers++;	/* no new lease until lease_break_done() */
	reap_dead_locked(st);
	n = st->nleases;
	if (!n)
		goto out;
	lt.stats.breaks++;
	pthread_mutex_unlock(&lt.lock);
	log_notice("lease break ino=%" PRIu64 " for %s: %u holder(s), waiting up to %us",
		   ino_nr(st), why, n, cfg->lease_break_time);
	pthread_mutex_lock(&lt.lock);
	notify_holders_locked(st);
	if (wait_released_locked(st, deadline)) {
		log_notice("lease break ino=%" PRIu64 " for %s: released after %.3f s", ino_nr(st),
			   why, (now_ns() - t0) / 1e9);
		goto out;
	}
	if (cfg->lease_expire == LEASE_EXPIRE_REVOKE) {
		revoke_locked(st, why);
		goto out;
	}
	for (struct lease *l = lt.head; l; l = l->next)
		if (matches(l, st))
			log_warn("lease ino=%" PRIu64 " pid=%d: not released within %us: %s denied "
				 "(EBUSY)", ino_nr(st), (int)l->pid, cfg->lease_break_time, why);
	lt.stats.denies++;
	end_break_locked(st);
	r = -EBUSY;
out:
	pthread_mutex_unlock(&lt.lock);
	return r;
}

void lease_break_done(struct staged *st)
{
	pthread_mutex_lock(&lt.lock);
	end_break_locked(st);
	pthread_mutex_unlock(&lt.lock);
}

int lease_break(struct staged *st, const char *why)
{
	int r = lease_break_start(st, why);

	if (!r)
		lease_break_done(st);
	return r;
}

unsigned lease_count(struct staged *st)
{
	unsigned n;

	pthread_mutex_lock(&lt.lock);
	reap_dead_locked(st);
	n = st->nleases;
	pthread_mutex_unlock(&lt.lock);
	return n;
}

void lease_shutdown(void)
{
	uint64_t held;

	pthread_mutex_lock(&lt.lock);
	lt.shutdown = true;
	reap_dead_locked(NULL);
	held = lt.stats.held;
	if (!held)
		goto out;
	lt.stats.breaks++;
	log_notice("shutdown: breaking %" PRIu64 " lease(s)", held);
	notify_holders_locked(NULL);
	if (wait_released_locked(NULL, deadline_after(MIN(cfg->lease_break_time,
							  LEASE_SHUTDOWN_WAIT))))
		goto out;
	if (cfg->lease_expire == LEASE_EXPIRE_REVOKE) {
		revoke_locked(NULL, "shutdown");
		goto out;
	}
	for (struct lease *l = lt.head; l; l = l->next)
		if (matches(l, NULL))
			log_warn("shutdown: pid=%d still holds a lease on ino=%" PRIu64 ": what it "
				 "writes after the final commit is not saved", (int)l->pid,
				 ino_nr(l->st));
out:
	pthread_mutex_unlock(&lt.lock);
}

size_t lease_list(struct staged *st, struct lease_info *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&lt.lock);
	reap_dead_locked(st);
	for (struct lease *l = lt.head; l; l = l->next) {
		if (!matches(l, st))
			continue;
		if (n < max) {
			out[n] = (struct lease_info){ .ino = ino_nr(l->st), .pid = l->pid,
						      .signo = l->signo, .since = l->since,
						      .breaking = l->notified };
			memcpy(out[n].path, l->path, sizeof(out[n].path));
		}
		n++;
	}
	pthread_mutex_unlock(&lt.lock);
	return n;
}

void lease_stats(struct lease_stats *out)
{
	pthread_mutex_lock(&lt.lock);
	*out = lt.stats;
	pthread_mutex_unlock(&lt.lock);
}
