// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/dirty.c - the chunk map as the flusher uses it: dirty_hash (every SIMD variant
 * gives the library's XXH3, never DIRTY_FP_NONE), dirty_resize, dirty_set and
 * dirty_invalidate. Change detection by content, snapshots raced by further writes and
 * partial chunks are tested through the real commit in tests/unit/commit.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/dirty.c"

/* Every hash variant (AVX2 where the CPU has it) gives the library's XXH3 value. */
static void test_hash_is_xxh3(void **state)
{
	static unsigned char buf[256 << 10];
	uint64_t seed = 42;

	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = seed >> 56;
	}
	for (size_t len = 0; len < sizeof(buf); len = len < 512 ? len + 1 : len * 2 + 7) {
		uint64_t want = XXH3_64bits(buf + 3, len);

		assert_int_equal(dirty_hash(buf + 3, len), want == DIRTY_FP_NONE ? 1 : want);
#if defined(__x86_64__)
		if (__builtin_cpu_supports("avx2"))
			assert_int_equal(dirty_xxh3_avx2(buf + 3, len), XXH3_64bits(buf + 3, len));
#endif
	}
}

/* Resize covers whole chunks; new or regrown chunks have no committed content. */
static void test_resize_set_invalidate(void **state)
{
	struct dirty_map *dm = dirty_create(4096);

	assert_non_null(dm);
	assert_int_equal(dirty_resize(dm, 0), 0);
	assert_int_equal(dm->nchunks, 0);
	assert_int_equal(dirty_resize(dm, 1), 0);
	assert_int_equal(dm->nchunks, 1);
	assert_int_equal(dirty_resize(dm, 4096), 0);
	assert_int_equal(dm->nchunks, 1);
	assert_int_equal(dirty_resize(dm, 4097), 0);
	assert_int_equal(dm->nchunks, 2);
	assert_int_equal(dm->fp[0], DIRTY_FP_NONE);
	assert_int_equal(dm->fp[1], DIRTY_FP_NONE);
	dirty_set(dm, 0, 11);
	dirty_set(dm, 1, 12);
	assert_int_equal(dm->fp[0], 11);
	assert_int_equal(dm->fp[1], 12);
	/* Shrink, then grow back: the regrown chunk forgets its old fingerprint. */
	assert_int_equal(dirty_resize(dm, 4096), 0);
	assert_int_equal(dm->nchunks, 1);
	assert_int_equal(dirty_resize(dm, 3 * 4096), 0);
	assert_int_equal(dm->fp[0], 11);
	assert_int_equal(dm->fp[1], DIRTY_FP_NONE);
	assert_int_equal(dm->fp[2], DIRTY_FP_NONE);
	/* Growing past the capacity keeps what was set. */
	dirty_set(dm, 2, 13);
	assert_int_equal(dirty_resize(dm, 1000 * 4096), 0);
	assert_int_equal(dm->fp[0], 11);
	assert_int_equal(dm->fp[2], 13);
	assert_int_equal(dm->fp[999], DIRTY_FP_NONE);
	/* dirty_set and dirty_invalidate ignore chunks past the end. */
	dirty_set(dm, 1000, 42);
	dirty_invalidate(dm, 2, 5000);
	assert_int_equal(dm->fp[0], 11);
	assert_int_equal(dm->fp[2], DIRTY_FP_NONE);
	dirty_invalidate(dm, 0, 0);
	assert_int_equal(dm->fp[0], DIRTY_FP_NONE);
	assert_int_equal(dirty_hash("", 0) != DIRTY_FP_NONE, 1);
	dirty_destroy(dm);
	dirty_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_xxh3),
		cmocka_unit_test(test_resize_set_invalidate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
