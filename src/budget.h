/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * budget.h - release and eviction policy (budget.c): which staged files may go, and when
 * (staging_budget, the descriptor bound resident_max, rdmafsctl evict). Above commit and
 * lease (it asks "is it clean?", "is it leased?"), below the flusher.
 */
#ifndef RDMAFS_BUDGET_H
#define RDMAFS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

struct inode;
struct staged;

/*
 * Give staging its policy (eviction when the budget is short, trimming before a file is
 * staged, the lease checks); before any file is staged. @kick, if not NULL, is called when
 * more files are staged than resident_max allows and too few are clean (the flusher then
 * commits and evicts the least recently used idle ones).
 */
void budget_init(void (*kick)(void));
/*
 * Evict idle staging (LRU) while more files than resident_max are staged (not @self);
 * at most @limit of them; @commit: commit dirty idle ones first. Returns how many are
 * still too many.
 */
size_t budget_trim(struct inode *self, bool commit, size_t limit);
/*
 * Drop @st from its inode if nothing needs it: no opens, sealed, clean, no lease.
 * Returns true if dropped. Takes ino->lock, then commit_lock.
 */
bool budget_release_if_idle(struct staged *st);

#endif
