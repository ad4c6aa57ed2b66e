// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty.c - owns the chunk map of a staged file: the XXH3 fingerprint of what each chunk
 * held when it was last committed. A chunk is dirty when its staging bytes hash otherwise.
 */
#include "rdmafsd.h"

#include <stdlib.h>
/* Inlined: the chunk hash is the scan's inner loop (header-only use of libxxhash). */
#define XXH_INLINE_ALL
#include <xxhash.h>

struct dirty_map *dirty_create(uint32_t chunk_size)
{
	struct dirty_map *dm = calloc(1, sizeof(*dm));

	if (dm)
		dm->chunk_size = chunk_size;
	return dm;
}

void dirty_destroy(struct dirty_map *dm)
{
	if (!dm)
		return;
	free(dm->fp);
	free(dm);
}

int dirty_resize(struct dirty_map *dm, uint64_t size)
{
	uint64_t n = (size + dm->chunk_size - 1) / dm->chunk_size;

	if (n > dm->cap) {
		uint64_t cap = MAX(n, dm->cap * 2);
		uint64_t *fp = realloc(dm->fp, cap * sizeof(*fp));

		if (!fp)
			return -ENOMEM;
		dm->fp = fp;
		dm->cap = cap;
	}
	for (uint64_t i = dm->nchunks; i < n; i++)
		dm->fp[i] = DIRTY_FP_NONE;
	dm->nchunks = n;
	return 0;
}

#if defined(__x86_64__)
uint64_t dirty_xxh3_avx2(const void *p, size_t len);

static uint64_t xxh3_default(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/* Chosen once at load time; every variant computes the same XXH3 value. */
static uint64_t (*xxh3)(const void *, size_t) = xxh3_default;

__attribute__((constructor)) static void dirty_pick_hash(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		xxh3 = dirty_xxh3_avx2;
}
#else
#define xxh3 XXH3_64bits
#endif

uint64_t dirty_hash(const void *p, size_t len)
{
	uint64_t h = xxh3(p, len);

	/* DIRTY_FP_NONE means "nothing committed": no real content may hash to it. */
	return h == DIRTY_FP_NONE ? 1 : h;
}

void dirty_set(struct dirty_map *dm, uint64_t i, uint64_t fp)
{
	if (i < dm->nchunks)
		dm->fp[i] = fp;
}

void dirty_invalidate(struct dirty_map *dm, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last && i < dm->nchunks; i++)
		dm->fp[i] = DIRTY_FP_NONE;
}
