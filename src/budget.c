// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * budget.c - owns the release and eviction policy of staged files: LRU eviction when
 * staging_budget is short or more files are staged than descriptors allow, and the
 * release of an idle clean file. Staging calls it through struct staging_policy.
 */
#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>

static void (*budget_kick)(void);	/* set once by budget_init(): trim in the flusher */

static uint64_t lru_gens;	/* evict_lru() calls so far: each call's mark */

/* What evict_lru() passes over: files already tried, @self, and the busy ones. */
struct lru_filter {
	uint64_t gen;
	struct inode *self;
	uint64_t need;
	bool commit;
};

/*
 * Under the staging list's lock: unlocked peeks, checked again under ino->lock. A file
 * this call, or a newer one running beside it, has tried already is passed over: each
 * call tries a file at most once.
 */
static bool lru_eligible(struct staged *st, void *arg)
{
	struct lru_filter *f = arg;

	if (st->lru_gen >= f->gen)
		return false;
	if (st->ino == f->self || st->nleases || st->pending_error ||
	    __atomic_load_n(&st->ino->nopen, __ATOMIC_RELAXED))
		return false;
	/* Trimming the file count without commits: known clean ones only. */
	if (!f->need && !f->commit && !staging_known_clean(st))
		return false;
	st->lru_gen = f->gen;
	return true;
}

/*
 * @victim (ino->lock held) is clean with no open, no lease and no writer: it may go.
 * Clean first (known, or by a scan): a dirty file is not sealed (a sealed memfd can never
 * be written again, a reopen would copy it); then the seal proves no mapping or pin is
 * left, and a pin that wrote since the last commit is found by the scan after it.
 * commit_lock of @victim held.
 */
static bool evictable_locked(struct staged *victim)
{
	struct inode *ino = victim->ino;

	return ino->st == victim && !ino->nopen && !lease_count(victim) &&
	       !victim->pending_error &&
	       (victim->sealed || staging_known_clean(victim) ||
		!commit_is_dirty_locked(victim)) &&
	       staging_try_seal(victim) && !commit_is_dirty_locked(victim);
}

/*
 * Free staging of other files than @self, least recently used first, until @need bytes
 * are free; returns the bytes freed. Only clean files with no open, no lease and no
 * writer (sealed, or sealable now) go: never a dirty, open or leased one. Inode locks of
 * the victims are only tried (the caller may hold @self's), so a busy file is skipped.
 * Without @wait the caller holds its own commit_lock (a growing truncate, fallocate or
 * daemon-served write): a victim's commit_lock is only tried too, else two growing
 * files, each the other's victim, would wait for each other for ever.
 */
#define LRU_BATCH 64	/* victims taken per walk of the staging list */

/* A victim over resident_max with changes: committed before the walk below tries it. */
static void precommit(struct staged *st, void *arg)
{
	struct inode *ino = st->ino;

	(void)arg;
	if (pthread_mutex_trylock(&ino->lock))
		return;		/* busy: the walk skips it too */
	if (ino->st == st && !ino->nopen && !staging_known_clean(st))
		commit_file(st);
	pthread_mutex_unlock(&ino->lock);
}

static uint64_t evict_lru(uint64_t need, struct inode *self, size_t nfiles, bool commit,
			  bool wait)
{
	struct lru_filter f = {
		.gen = __atomic_add_fetch(&lru_gens, 1, __ATOMIC_RELAXED),
		.self = self, .need = need, .commit = commit,
	};
	struct staged *batch[LRU_BATCH];
	uint64_t freed = 0;
	size_t evicted = 0, n = 0, i = 0;

	while (freed < need || evicted < nfiles) {
		struct staged *victim;
		struct inode *ino;

		if (i == n) {
			size_t want = need ? 8 : nfiles - evicted;

			n = staging_lru_pick(lru_eligible, &f, batch, MIN(want, LRU_BATCH));
			i = 0;
			if (!n)
				break;
			/* Side by side: their fdatasyncs share journal commits (commit_each). */
			if (commit && n > 1)
				commit_each(batch, n, precommit, NULL);
		}
		victim = batch[i++];
		ino = victim->ino;
		if (pthread_mutex_trylock(&ino->lock)) {
			staging_put(victim);
			continue;
		}
		if (commit && ino->st == victim && !ino->nopen && !staging_known_clean(victim))
			commit_file(victim);	/* over resident_max: make it clean */
		if (need && !wait ? pthread_mutex_trylock(&victim->commit_lock) == 0 :
				    pthread_mutex_lock(&victim->commit_lock) == 0) {
			bool go = evictable_locked(victim);

			pthread_mutex_unlock(&victim->commit_lock);
			if (go) {
				uint64_t bytes = victim->charged;

				log_info("evicted ino=%" PRIu64 " (%s, %" PRIu64 " bytes, idle "
					 "%.1f s): staging_budget reached", (uint64_t)ino->src_ino,
					 conf_staging_name(victim->mode), bytes,
					 (now_ns() - victim->last_use) / 1e9);
				staging_drop(victim);
				metrics_evicted(bytes);
				freed += bytes;
				evicted++;
			}
		}
		pthread_mutex_unlock(&ino->lock);
		staging_put(victim);
	}
	while (i < n)
		staging_put(batch[i++]);
	return freed;
}

/* Files over resident_max (and one for the file about to be staged). */
static size_t over_resident(void)
{
	size_t count, max;

	staging_count(&count, &max);
	return count >= max ? count - max + 1 : 0;
}

/*
 * A trim goes this far below resident_max (low-water mark), so that the creates after it
 * find room and do not trim at all: the walk and the locks are paid once per batch.
 */
#define TRIM_SLACK(max) ((max) / 32)

size_t budget_trim(struct inode *self, bool commit, size_t limit)
{
	size_t count, max;

	staging_count(&count, &max);
	if (count >= max)
		evict_lru(0, self, MIN(count - max + 1 + TRIM_SLACK(max), limit), commit, true);
	return over_resident();
}

/* File count at which make_room() last found too few clean files to evict; 0 if none. */
static size_t short_at;

/*
 * Before @ino is staged. Idle clean files go first (down to the low-water mark); if too
 * few are clean the flusher is asked to commit and evict the least recently used ones,
 * and the creates after do not look again until TRIM_SLACK more files are staged. Past
 * half as many again, idle dirty ones are committed here and go too (each costs an
 * fdatasync), so descriptors stay bounded.
 */
static void make_room(struct inode *ino)
{
	size_t count, max, at;

	staging_count(&count, &max);
	at = __atomic_load_n(&short_at, __ATOMIC_RELAXED);
	if (count < max) {
		if (at)
			__atomic_store_n(&short_at, 0, __ATOMIC_RELAXED);
		return;
	}
	if (!at || count >= at + MAX(TRIM_SLACK(max), 1)) {
		if (!budget_trim(ino, false, SIZE_MAX)) {
			__atomic_store_n(&short_at, 0, __ATOMIC_RELAXED);
			return;
		}
		__atomic_store_n(&short_at, count, __ATOMIC_RELAXED);
		if (budget_kick)
			budget_kick();
	}
	staging_count(&count, &max);
	if (count >= max + max / 2)	/* a few per open: the flusher commits the rest */
		budget_trim(ino, true, 2);
}

static uint64_t evict_bytes(uint64_t need, struct inode *self, bool wait)
{
	return evict_lru(need, self, 0, false, wait);
}

bool budget_release_if_idle(struct staged *st)
{
	struct inode *ino = st->ino;
	bool dropped = false;

	pthread_mutex_lock(&ino->lock);
	if (ino->st == st && !ino->nopen && !lease_count(st) && st->sealed && !st->pending_error &&
	    !commit_is_dirty(st)) {
		log_debug("dropped ino=%" PRIu64 " (idle and clean)", (uint64_t)ino->src_ino);
		staging_drop(st);
		dropped = true;
	}
	pthread_mutex_unlock(&ino->lock);
	return dropped;
}

void budget_init(void (*kick)(void))
{
	static const struct staging_policy p = {
		.evict = evict_bytes,
		.make_room = make_room,
		.leases = lease_count,
		.break_start = lease_break_start,
		.break_done = lease_break_done,
	};

	budget_kick = kick;
	staging_set_policy(&p);
}
