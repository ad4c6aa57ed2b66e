/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.h - daemon-wide counters for monitoring (rdmafsctl metrics, top, flush progress):
 * relaxed atomics bumped by one call where the event happens, read by ctl.c. Totals are
 * since start-up and never go down (per-file stats vanish with their staging).
 */
#ifndef RDMAFS_METRICS_H
#define RDMAFS_METRICS_H

#include <stdint.h>

#define METRICS_BUCKETS 12		/* commit latency buckets, the last is +Inf */
#define METRICS_ERRNO_MAX 134		/* failures by errno below this, the rest as "other" */
#define METRICS_WATCH 16		/* flushes with progress at the same time */

struct metrics {
	uint64_t files_staged, files_dropped;
	uint64_t evictions, evicted_bytes;
	uint64_t committed_bytes, written_bytes, scanned_bytes;
	uint64_t commits, commit_ns;
	uint64_t failures;
	uint64_t bucket[METRICS_BUCKETS];
	uint64_t errors[METRICS_ERRNO_MAX];	/* [0]: errnos >= METRICS_ERRNO_MAX */
};

extern struct metrics metrics;
/* Upper bounds of the latency buckets in ns (the last is UINT64_MAX). */
extern const uint64_t metrics_bucket_le_ns[METRICS_BUCKETS];

static inline void metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t metrics_read(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* A commit of @bytes that took @ns succeeded. */
void metrics_commit(uint64_t bytes, uint64_t ns);
/* Staging of @bytes was dropped to make room or on request (rdmafsctl evict). */
void metrics_evicted(uint64_t bytes);
/* A commit failed with -errno @err. */
void metrics_commit_failed(int err);
/* A commit write of @st (a struct staged) finished: @bytes reached the backing file. */
void metrics_wrote(const void *st, uint64_t bytes);
/* Count the writes of @st from now on; returns a slot for metrics_watched() or -EBUSY. */
int metrics_watch(const void *st);
uint64_t metrics_watched(int slot);
void metrics_unwatch(int slot);

#endif
