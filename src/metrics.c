// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * metrics.c - owns the daemon-wide monitoring counters (metrics.h) and the per-file write
 * counts that flush progress reads while a commit runs.
 */
#include "metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

struct metrics metrics;

/* 1 ms .. 60 s: a small file's commit is a fdatasync (~ms), a GiB on a disk seconds. */
const uint64_t metrics_bucket_le_ns[METRICS_BUCKETS] = {
	1000000ull, 5000000ull, 10000000ull, 50000000ull, 100000000ull, 500000000ull,
	1000000000ull, 5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull, UINT64_MAX,
};

/* Watched files: st is claimed with a CAS, bytes counted while it is set. */
static struct {
	const void *st;
	uint64_t bytes;
} watch[METRICS_WATCH];
static unsigned nwatch;		/* slots in use; 0 keeps metrics_wrote() to one add */

void metrics_commit(uint64_t bytes, uint64_t ns)
{
	unsigned b = 0;

	while (b < METRICS_BUCKETS - 1 && ns > metrics_bucket_le_ns[b])
		b++;
	metrics_add(&metrics.committed_bytes, bytes);
	metrics_add(&metrics.commit_ns, ns);
	metrics_add(&metrics.bucket[b], 1);
	/* Last, so that a reader that sees it sees the bucket too (count == sum of buckets). */
	__atomic_add_fetch(&metrics.commits, 1, __ATOMIC_RELEASE);
}

void metrics_evicted(uint64_t bytes)
{
	metrics_add(&metrics.evicted_bytes, bytes);
	metrics_add(&metrics.evictions, 1);
}

void metrics_commit_failed(int err)
{
	int e = -err;

	metrics_add(&metrics.errors[e > 0 && e < METRICS_ERRNO_MAX ? e : 0], 1);
	metrics_add(&metrics.failures, 1);
}

void metrics_wrote(const void *st, uint64_t bytes)
{
	metrics_add(&metrics.written_bytes, bytes);
	if (!__atomic_load_n(&nwatch, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < METRICS_WATCH; i++)
		if (__atomic_load_n(&watch[i].st, __ATOMIC_ACQUIRE) == st)
			metrics_add(&watch[i].bytes, bytes);
}

int metrics_watch(const void *st)
{
	for (unsigned i = 0; i < METRICS_WATCH; i++) {
		const void *none = NULL;

		if (__atomic_load_n(&watch[i].st, __ATOMIC_RELAXED))
			continue;
		if (__atomic_compare_exchange_n(&watch[i].st, &none, st, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			/* A write counted before this belongs to a commit already under way. */
			__atomic_store_n(&watch[i].bytes, 0, __ATOMIC_RELAXED);
			__atomic_add_fetch(&nwatch, 1, __ATOMIC_RELEASE);
			return (int)i;
		}
	}
	return -EBUSY;
}

uint64_t metrics_watched(int slot)
{
	return metrics_read(&watch[slot].bytes);
}

void metrics_unwatch(int slot)
{
	__atomic_sub_fetch(&nwatch, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&watch[slot].st, NULL, __ATOMIC_RELEASE);
}
