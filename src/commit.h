/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * commit.h - the commit pass (commit.c): staging -> backing file, by changed chunks,
 * io_uring writes and fdatasync. Below the flusher (which decides when) and the budget
 * (which commits before it evicts); above staging.
 */
#ifndef RDMAFS_COMMIT_H
#define RDMAFS_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct staged;

/*
 * Commit every byte of @st that was in staging when the call began; 0 or -errno.
 * Takes st->commit_lock. Waits for I/O: only for fsync, flush requests, close with
 * flush_on_close, eviction over resident_max.
 */
int commit_file(struct staged *st);
/*
 * fsync/flush through one open file description, whose *@seen is the err_seq it sampled
 * at open (commit_err_sample()) or at its last fsync: commits like commit_file(), and
 * if that succeeds but a commit failed since (a periodic pass, another fd's fsync), returns
 * that failure once to this description (the kernel's errseq_t rule).
 */
int commit_fd(struct staged *st, uint32_t *seen);
uint32_t commit_err_sample(struct staged *st);
/*
 * Run @fn(@v[i], @arg) for each of the @n files, up to COMMIT_PARALLEL at a time (this
 * thread and the helpers commit_init() started, shared by all calls): commits of
 * different files side by side, so that the backing filesystem's journal takes their
 * fdatasyncs in one commit. Returns when all are done. Before commit_init() and after
 * commit_exit() this thread runs them all.
 */
#define COMMIT_PARALLEL 4
void commit_each(struct staged **v, size_t n, void (*fn)(struct staged *st, void *arg),
		 void *arg);
/* True if @st has changes not yet committed (scans it; takes commit_lock). */
bool commit_is_dirty(struct staged *st);
/* The same with st->commit_lock held by the caller. */
bool commit_is_dirty_locked(struct staged *st);
/* Bytes of @st not yet committed (scans it, like commit_is_dirty); -errno on failure. */
int64_t commit_dirty_bytes(struct staged *st);
/*
 * Probe in-place scanning and take SIGBUS for it (a holder may shrink staging under the
 * scan); at start-up, after anything else that sets a SIGBUS handler (the first scan
 * probes otherwise).
 */
void commit_init(void);
/* Free the pool of rings and bounce buffers (after the last commit). */
void commit_exit(void);

#endif
