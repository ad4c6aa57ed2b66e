/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * flusher.h - when write-back happens (flusher.c): the periodic thread, triggers,
 * back-off, the final commit at shutdown and the rescue folder.
 */
#ifndef RDMAFS_FLUSHER_H
#define RDMAFS_FLUSHER_H

struct staged;

int flusher_init(void);
/* Stop the periodic thread and commit everything (retries, then rescue_dir). */
int flusher_shutdown(void);
/* Ask the periodic thread to run a pass now (memory pressure, ctl). */
void flusher_kick(void);
/* More files staged than resident_max: commit and evict the least recently used soon. */
void flusher_kick_trim(void);
/* flush_on_close=async: commit @st soon in the flusher thread (this file only). */
void flusher_commit_async(struct staged *st);
/* Write all staged files to a rescue folder; returns files written or -errno. */
int flusher_rescue(const char *dir);

#endif
