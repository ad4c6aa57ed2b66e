/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ring.h - the io_uring pipeline that the fill (staging) and the commit share (ring.c):
 * one ring, bounce slots in one page-aligned mapping, and free lists of slot (or request)
 * indices. Callers own what a slot holds and when it is free again.
 */
#ifndef RDMAFS_RING_H
#define RDMAFS_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>

/* A stack of free indices among 0..cap-1. */
struct ring_free {
	unsigned *v;
	unsigned n, cap;
};

/* All of 0..@cap-1 free; 0 or -ENOMEM. ring_free_exit() frees it (also after a failure). */
int ring_free_init(struct ring_free *f, unsigned cap);
void ring_free_reset(struct ring_free *f);	/* all free again */
void ring_free_exit(struct ring_free *f);

static inline bool ring_free_empty(const struct ring_free *f)
{
	return !f->n;
}

static inline unsigned ring_free_get(struct ring_free *f)
{
	return f->v[--f->n];
}

static inline void ring_free_put(struct ring_free *f, unsigned i)
{
	f->v[f->n++] = i;
}

struct ring {
	struct io_uring ring;
	char *bounce;			/* nslots slots of slot_len bytes, or NULL */
	size_t slot_len;
	unsigned nslots;
	struct ring_free slots;		/* free bounce slots */
};

/*
 * A ring of @entries and @nslots bounce slots of @slot_len bytes (none if @slot_len is 0),
 * all free. 0 or -errno; on failure nothing is left to free.
 */
int ring_init(struct ring *r, unsigned entries, unsigned nslots, size_t slot_len);
void ring_exit(struct ring *r);

static inline char *ring_slot(const struct ring *r, unsigned s)
{
	return r->bounce + (size_t)s * r->slot_len;
}

/*
 * Submit what is queued and wait for one completion: 0 with *@cqe (the caller marks it
 * seen), or -errno of the ring. @eintr: retry an interrupted wait instead of failing.
 */
int ring_wait(struct ring *r, struct io_uring_cqe **cqe, bool eintr);
/* Wait for and discard @inflight completions (after an error; best effort). */
void ring_drain(struct ring *r, unsigned inflight);

#endif
