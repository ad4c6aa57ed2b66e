// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lease.c - owns leases of pin holders on staged files: the lease table and the
 * break/wait/expire policy. An operation that would free staged pages breaks them first.
 *
 * Placeholder until the lease module lands: leases are counted and notified, a break
 * notifies every holder and then denies (-EBUSY) while any lease remains.
 */
#include "rdmafsd.h"

#include <signal.h>
#include <stdlib.h>

struct lease {
	struct staged *st;
	pid_t pid;
	int signo;
	void (*notify)(void *arg);
	void *arg;
	bool notified;
	struct lease *next;
};

static struct {
	pthread_mutex_t lock;		/* protects the list and every lease's fields */
	struct lease *head;
} lt = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct lease *lease_add(struct staged *st, pid_t pid, int signo, void (*notify)(void *arg),
			void *arg)
{
	struct lease *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	*l = (struct lease){ .st = st, .pid = pid, .signo = signo, .notify = notify, .arg = arg };
	pthread_mutex_lock(&lt.lock);
	l->next = lt.head;
	lt.head = l;
	pthread_mutex_lock(&st->lock);
	st->nleases++;
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_unlock(&lt.lock);
	return l;
}

void lease_release(struct lease *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&lt.lock);
	for (struct lease **pp = &lt.head; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	pthread_mutex_lock(&l->st->lock);
	l->st->nleases--;
	pthread_mutex_unlock(&l->st->lock);
	pthread_mutex_unlock(&lt.lock);
	free(l);
}

unsigned lease_count(struct staged *st)
{
	unsigned n;

	pthread_mutex_lock(&st->lock);
	n = st->nleases;
	pthread_mutex_unlock(&st->lock);
	return n;
}

int lease_break(struct staged *st, const char *why)
{
	struct { void (*fn)(void *); void *arg; } todo[64];
	unsigned n = 0;

	pthread_mutex_lock(&lt.lock);
	for (struct lease *l = lt.head; l; l = l->next) {
		if (l->st != st || l->notified)
			continue;
		l->notified = true;
		if (l->signo)
			kill(l->pid, l->signo);
		if (l->notify && n < ARRAY_SIZE(todo))
			todo[n++] = (typeof(todo[0])){ l->notify, l->arg };
	}
	pthread_mutex_unlock(&lt.lock);
	for (unsigned i = 0; i < n; i++)
		todo[i].fn(todo[i].arg);
	if (!lease_count(st))
		return 0;
	log_notice("lease break ino=%lu for %s: lease held, denying (no break wait yet)",
		   (unsigned long)st->ino->src_ino, why);
	return -EBUSY;
}
