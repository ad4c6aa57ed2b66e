/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty.h - per-chunk committed fingerprints (dirty.c).
 */
#ifndef RDMAFS_DIRTY_H
#define RDMAFS_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRTY_FP_NONE 0		/* "no committed content": always differs */

struct dirty_map;

struct dirty_map *dirty_create(uint32_t chunk_size);
void dirty_destroy(struct dirty_map *dm);
/* Resize to cover @size bytes; new chunks have no committed content. */
int dirty_resize(struct dirty_map *dm, uint64_t size);
uint64_t dirty_hash(const void *p, size_t len);
/*
 * Fingerprint of chunk @k of a file of @size bytes, whose bytes from @off (a chunk
 * boundary at or before chunk @k) are in @buf.
 */
uint64_t dirty_chunk_fp(const struct dirty_map *dm, const void *buf, uint64_t off,
			uint64_t size, uint64_t k);
/* True if @fp is not the committed fingerprint of chunk @i (none past the end). */
bool dirty_chunk_changed(const struct dirty_map *dm, uint64_t i, uint64_t fp);
/* The committed fingerprint of chunk @i, DIRTY_FP_NONE if none. */
uint64_t dirty_get(const struct dirty_map *dm, uint64_t i);
uint32_t dirty_chunk_size(const struct dirty_map *dm);
/* Chunks with a committed fingerprint slot (covering the committed size). */
uint64_t dirty_nchunks(const struct dirty_map *dm);
/* Forget the chunks past @size bytes (a shrink). */
void dirty_shrink(struct dirty_map *dm, uint64_t size);
/* Record @fp as the committed fingerprint of chunk @i. */
void dirty_set(struct dirty_map *dm, uint64_t i, uint64_t fp);
/* Forget the committed content of chunks [first, last]. */
void dirty_invalidate(struct dirty_map *dm, uint64_t first, uint64_t last);
#endif
