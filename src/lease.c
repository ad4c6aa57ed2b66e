// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lease.c - owns leases of pin holders on staged files: the lease table and the
 * break/wait/expire policy. An operation that would free staged pages breaks them first.
 */
#include "rdmafsd.h"

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

struct lease *lease_add(struct staged *st, pid_t pid, int signo, const char *path,
			void (*notify)(void *arg), void *arg)
{
	struct lease *l;
	int err = 0;

	if (!st || pid <= 0 || signo < 0 || signo > SIGRTMAX) {
		errno = EINVAL;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->pidfd = pidfd_open(pid, 0);
	if (l->pidfd < 0) {
		/*
		 * ESRCH: the holder is already gone. Anything else (EMFILE, EINVAL for a
		 * thread id): no lease, because without a pidfd its death would go unseen and
		 * its signal would go to whatever process has that pid by then.
		 */
		err = errno;
		if (err != ESRCH)
			log_notice("lease for pid=%d refused: pidfd_open: %s", (int)pid,
				   strerror(err));
		free(l);
		errno = err;
		return NULL;
	}
	l->st = st;
	l->pid = pid;
	l->signo = signo;
	snprintf(l->path, sizeof(l->path), "%s", path ? path : "");
	l->notify = notify;
	l->arg = arg;
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
	log_info("lease ino=%" PRIu64 " granted to pid=%d signo=%d", ino_nr(st), (int)pid, signo);
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
