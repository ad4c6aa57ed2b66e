// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ring.c - owns the io_uring pipeline helper that the fill and the commit share: a ring,
 * bounce slots in one anonymous mapping, free lists of indices.
 */
#include "rdmafsd.h"
#include "ring.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int ring_free_init(struct ring_free *f, unsigned cap)
{
	f->v = calloc(cap ? cap : 1, sizeof(*f->v));
	f->cap = cap;
	f->n = 0;
	if (!f->v)
		return -ENOMEM;
	ring_free_reset(f);
	return 0;
}

void ring_free_reset(struct ring_free *f)
{
	for (f->n = 0; f->n < f->cap; f->n++)
		f->v[f->n] = f->n;
}

void ring_free_exit(struct ring_free *f)
{
	free(f->v);
	f->v = NULL;
	f->n = f->cap = 0;
}

/*
 * Anonymous memory for @len bytes of bounce slots (a multiple of 2 MiB where the slots
 * are io_size), on 2 MiB boundaries and advised huge, populated now. The first CPU load
 * or store of each 4 KiB page of a new mapping traps here (shadow paging), even after
 * MAP_POPULATE: hashing the first 16 MiB of fresh 4 KiB slots ran at 0.1 GB/s, of 2 MiB
 * pages at 15-21 GB/s, and pwrite(2) from them into staging at 0.7 vs 1.4-2.0 GB/s
 * (2026-12-01). Where THP is off (transparent_hugepage=never) the slots are 4 KiB pages.
 */
static void *bounce_map(size_t len)
{
	const size_t huge = 2 << 20;
	char *p = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0), *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)ALIGN_UP((uintptr_t)p, huge);
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, huge - (a - p));
	madvise(a, len, MADV_HUGEPAGE);		/* advice: EINVAL without THP is fine */
	if (madvise(a, len, MADV_POPULATE_WRITE) < 0)
		memset(a, 0, len);		/* before Linux 5.14 */
	return a;
}

int ring_init(struct ring *r, unsigned entries, unsigned nslots, size_t slot_len)
{
	int e;

	r->bounce = NULL;
	r->nslots = nslots;
	r->slot_len = slot_len;
	e = ring_free_init(&r->slots, nslots);
	if (e)
		goto err_free;
	if (slot_len) {
		r->bounce = bounce_map((size_t)nslots * slot_len);
		if (!r->bounce) {
			e = -errno;
			goto err_free;
		}
	}
	e = io_uring_queue_init(entries, &r->ring, 0);
	if (e < 0)
		goto err_unmap;
	return 0;

err_unmap:
	if (r->bounce)
		munmap(r->bounce, (size_t)nslots * slot_len);
	r->bounce = NULL;
err_free:
	ring_free_exit(&r->slots);
	return e;
}

void ring_exit(struct ring *r)
{
	io_uring_queue_exit(&r->ring);
	if (r->bounce)
		munmap(r->bounce, (size_t)r->nslots * r->slot_len);
	r->bounce = NULL;
	ring_free_exit(&r->slots);
}

int ring_wait(struct ring *r, struct io_uring_cqe **cqe, bool eintr)
{
	for (;;) {
		int e = io_uring_submit_and_wait(&r->ring, 1);

		if (e < 0 && (e != -EINTR || !eintr))
			return e;
		if (io_uring_peek_cqe(&r->ring, cqe) == 0)
			return 0;
	}
}

void ring_drain(struct ring *r, unsigned inflight)
{
	while (inflight) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(&r->ring, &cqe))
			break;
		io_uring_cqe_seen(&r->ring, cqe);
		inflight--;
	}
}
