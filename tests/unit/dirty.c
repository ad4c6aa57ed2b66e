// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/dirty.c - the chunk map against a naive model (a copy of what the backing file
 * holds) under random writes, resizes and commits whose snapshot races further writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/dirty.c"

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

#define MAXSZ (1 << 20)

/* The model: staging bytes, and what the backing file holds after the last commit. */
struct model {
	struct dirty_map *dm;
	unsigned char *buf, *backing;
	uint64_t size, bsize;
	uint64_t *bits;
};

static void model_init(struct model *m, uint32_t cs)
{
	m->dm = dirty_create(cs);
	assert_non_null(m->dm);
	m->buf = calloc(1, MAXSZ);
	m->backing = calloc(1, MAXSZ);
	m->bits = calloc(MAXSZ / 4096 / 64 + 2, sizeof(uint64_t));
	m->size = m->bsize = 0;
}

static void model_free(struct model *m)
{
	dirty_destroy(m->dm);
	free(m->buf);
	free(m->backing);
	free(m->bits);
}

static bool bit(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] & (1ull << (i % 64));
}

/* The scan commit.c makes, over a whole buffer: changed chunks' bits in @bits. */
static uint64_t scan_chunks(const struct dirty_map *dm, const void *base, uint64_t size,
			   uint64_t *bits)
{
	uint64_t cs = dirty_chunk_size(dm), n = (size + cs - 1) / cs, changed = 0;

	memset(bits, 0, (n + 63) / 64 * sizeof(*bits));
	for (uint64_t i = 0; i < n; i++) {
		if (dirty_chunk_changed(dm, i, dirty_chunk_fp(dm, base, 0, size, i))) {
			bits[i / 64] |= 1ull << (i % 64);
			changed++;
		}
	}
	return changed;
}

/* Chunk @i of staging differs from what the backing file has there (size included). */
static bool differs(struct model *m, uint64_t i)
{
	uint64_t cs = dirty_chunk_size(m->dm), off = i * cs;
	uint64_t len = MIN(cs, m->size - off), blen = off < m->bsize ? MIN(cs, m->bsize - off) : 0;

	return len != blen || memcmp(m->buf + off, m->backing + off, len);
}

/*
 * Scan and check against the model. The safety half is strict: a chunk that differs from
 * the backing file is always reported. Returns the number of dirty chunks.
 */
static uint64_t scan_check(struct model *m, bool exact)
{
	uint64_t n = (m->size + dirty_chunk_size(m->dm) - 1) / dirty_chunk_size(m->dm);

	assert_int_equal(dirty_resize(m->dm, m->size), 0);
	uint64_t changed = scan_chunks(m->dm, m->buf, m->size, m->bits), count = 0;

	for (uint64_t i = 0; i < n; i++) {
		count += bit(m->bits, i);
		if (differs(m, i) && !bit(m->bits, i))
			fail_msg("chunk %" PRIu64 " differs from backing but scan says clean", i);
		if (exact && !differs(m, i) && bit(m->bits, i))
			fail_msg("chunk %" PRIu64 " equals backing but scan says dirty", i);
	}
	assert_int_equal(changed, count);
	/* No bit beyond the last chunk. */
	for (uint64_t i = n; i < (n + 63) / 64 * 64; i++)
		assert_false(bit(m->bits, i));
	return changed;
}

static void random_write(struct model *m)
{
	uint64_t off = rnd_below(m->size), len = MIN(1 + rnd_below(3 * 4096), m->size - off);

	if (!m->size)
		return;
	if (rnd() & 1) {
		memset(m->buf + off, (int)rnd(), len);
	} else {
		for (uint64_t k = 0; k < len; k++)
			m->buf[off + k] = rnd();
	}
}

static void resize(struct model *m, uint64_t size)
{
	if (size > m->size)
		memset(m->buf + m->size, 0, size - m->size);
	m->size = size;
}

/*
 * What the flusher does: scan, copy each dirty chunk (the snapshot), hash the copy, write
 * the copy; only then set the committed fingerprints. With @race, the "device" keeps
 * writing into chunks right after they were copied.
 */
static void commit(struct model *m, bool race)
{
	uint64_t cs = dirty_chunk_size(m->dm), size = m->size, n = (size + cs - 1) / cs;
	static unsigned char copy[MAXSZ];
	uint64_t *fp = calloc(n + 1, sizeof(*fp));

	assert_int_equal(dirty_resize(m->dm, size), 0);
	scan_chunks(m->dm, m->buf, size, m->bits);
	for (uint64_t i = 0; i < n; i++) {
		if (!bit(m->bits, i))
			continue;
		uint64_t off = i * cs, len = MIN(cs, size - off);

		memcpy(copy + off, m->buf + off, len);
		fp[i] = dirty_chunk_fp(m->dm, copy, 0, size, i);
		if (race && rnd_below(3) == 0) {	/* written after the copy */
			uint64_t o = off + rnd_below(len);

			m->buf[o] ^= 1 + rnd_below(255);
		}
		memcpy(m->backing + off, copy + off, len);
	}
	m->bsize = size;
	/* "fdatasync succeeded": the copies become the committed content. */
	for (uint64_t i = 0; i < n; i++)
		if (bit(m->bits, i))
			dirty_set(m->dm, i, fp[i]);
	free(fp);
}

static void run_model(uint32_t cs, unsigned rounds)
{
	struct model m;

	model_init(&m, cs);
	resize(&m, 5 * cs + 123);
	for (unsigned r = 0; r < rounds; r++) {
		unsigned op = rnd_below(10);

		if (op < 6) {
			for (unsigned k = rnd_below(8); k; k--)
				random_write(&m);
		} else if (op == 6) {
			resize(&m, rnd_below(MAXSZ / 2));
		} else if (op == 7) {
			commit(&m, false);
			/* A commit nothing raced leaves nothing dirty. */
			assert_int_equal(scan_check(&m, true), 0);
			assert_memory_equal(m.buf, m.backing, m.size);
			continue;
		} else {
			commit(&m, true);
		}
		scan_check(&m, false);
	}
	/* After the writers stop, flushing until clean leaves backing == staging. */
	for (int k = 0; k < 3 && scan_check(&m, false); k++)
		commit(&m, false);
	assert_int_equal(scan_check(&m, true), 0);
	assert_int_equal(m.bsize, m.size);
	assert_memory_equal(m.buf, m.backing, m.size);
	model_free(&m);
}

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

static void test_model_4k(void **state)
{
	run_model(4096, 3000);
}

static void test_model_64k(void **state)
{
	run_model(64 << 10, 2000);
}

/* The race the brief names: copy, the buffer changes, fingerprint set from the copy. */
static void test_race_after_copy(void **state)
{
	struct model m;
	uint32_t cs = 4096;
	static unsigned char copy[4096];

	model_init(&m, cs);
	resize(&m, 4 * cs);
	memset(m.buf, 'a', m.size);
	commit(&m, false);
	assert_int_equal(scan_check(&m, true), 0);

	m.buf[cs + 5] = 'b';				/* a write: chunk 1 dirty */
	assert_int_equal(scan_check(&m, true), 1);
	memcpy(copy, m.buf + cs, cs);			/* snapshot */
	m.buf[cs + 7] = 'c';				/* the device writes again */
	uint64_t fp = dirty_hash(copy, cs);		/* fingerprint of the copy */

	memcpy(m.backing + cs, copy, cs);
	dirty_set(m.dm, 1, fp);				/* committed */
	assert_int_equal(scan_check(&m, true), 1);	/* found dirty again */
	assert_true(bit(m.bits, 1));
	commit(&m, false);
	assert_int_equal(scan_check(&m, true), 0);
	assert_memory_equal(m.buf, m.backing, m.size);
	model_free(&m);
}

/* A write that restores the committed bytes is clean again: detection is by content. */
static void test_content_not_writes(void **state)
{
	struct model m;

	model_init(&m, 4096);
	resize(&m, 3 * 4096);
	commit(&m, false);
	m.buf[100] = 1;
	assert_int_equal(scan_check(&m, true), 1);
	m.buf[100] = 0;
	assert_int_equal(scan_check(&m, true), 0);
	model_free(&m);
}

static void test_resize_and_partial_chunks(void **state)
{
	struct dirty_map *dm = dirty_create(4096);
	static unsigned char buf[5 * 4096];
	uint64_t bits[2];

	assert_int_equal(dirty_resize(dm, 0), 0);
	assert_int_equal(dirty_nchunks(dm), 0);
	assert_int_equal(scan_chunks(dm, buf, 0, bits), 0);
	assert_int_equal(dirty_resize(dm, 1), 0);
	assert_int_equal(dirty_nchunks(dm), 1);
	assert_int_equal(dirty_resize(dm, 4096), 0);
	assert_int_equal(dirty_nchunks(dm), 1);
	assert_int_equal(dirty_resize(dm, 4097), 0);
	assert_int_equal(dirty_nchunks(dm), 2);
	/* New chunks have no committed content: dirty even when all zeros. */
	assert_int_equal(scan_chunks(dm, buf, 4097, bits), 2);
	dirty_set(dm, 0, dirty_chunk_fp(dm, buf, 0, 4097, 0));
	dirty_set(dm, 1, dirty_chunk_fp(dm, buf, 0, 4097, 1));
	assert_int_equal(scan_chunks(dm, buf, 4097, bits), 0);
	/* The partial last chunk's fingerprint covers its length: growing makes it dirty. */
	assert_int_equal(dirty_resize(dm, 4100), 0);
	assert_int_equal(scan_chunks(dm, buf, 4100, bits), 1);
	assert_int_equal(bits[0], 2);
	/* Shrink, then grow back: the regrown chunks forget their old content. */
	dirty_set(dm, 1, dirty_chunk_fp(dm, buf, 0, 4100, 1));
	assert_int_equal(dirty_resize(dm, 4096), 0);
	assert_int_equal(dirty_resize(dm, 4100), 0);
	assert_int_equal(scan_chunks(dm, buf, 4100, bits), 1);
	/* dirty_set and dirty_invalidate ignore chunks past the end. */
	dirty_set(dm, 7, 42);
	dirty_invalidate(dm, 0, 100);
	assert_int_equal(scan_chunks(dm, buf, 4100, bits), 2);
	assert_int_equal(dirty_hash("", 0) != DIRTY_FP_NONE, 1);
	dirty_destroy(dm);
	dirty_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_xxh3),
		cmocka_unit_test(test_model_4k),
		cmocka_unit_test(test_model_64k),
		cmocka_unit_test(test_race_after_copy),
		cmocka_unit_test(test_content_not_writes),
		cmocka_unit_test(test_resize_and_partial_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
