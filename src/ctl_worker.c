// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_worker.c - owns the control socket's worker pool: the job queue, its threads, and
 * running a job (the handler of its op, the reply, closing the client's descriptors).
 */
#include "rdmafsd.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_closer.h"
#include "ctl_conn.h"
#include "ctl_flush.h"
#include "ctl_lease.h"
#include "ctl_stat.h"
#include "ctl_worker.h"

#define CTL_WORKERS 4
#define CTL_QUEUE_MAX 256

static struct {
	pthread_mutex_t lock;		/* protects the queue and stop */
	pthread_cond_t cond;		/* a job was queued, or stop */
	struct ctl_job *qhead, *qtail;
	unsigned qlen;
	bool stop;
	unsigned nworkers;
	pthread_t workers[CTL_WORKERS];
} wp = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* The job is done or dropped: its descriptors closed, its connection put. */
static void job_free(struct ctl_job *j)
{
	ctl_close_client_fds(j->fds, j->nfds, ctl_conn_cred(j->c)->uid);
	ctl_conn_put(j->c);
	free(j);
}

static void run_job(const struct ctl_job *j)
{
	struct ctl_conn *c = j->c;
	union {
		struct rdmafs_reply rep;
		char buf[RDMAFS_MSG_MAX];
	} *m = calloc(1, sizeof(*m));
	void *payload = m ? m->buf + sizeof(struct rdmafs_reply) : NULL;
	uint32_t count = 0, next = 0;
	int r, sr, sendfd = -1;
	size_t len;

	if (!m || j->err) {
		sr = ctl_conn_send_error(c, j->req.op, j->req.seq, j->err ? j->err : -ENOMEM);
		goto out;
	}
	switch (j->req.op) {
	case RDMAFS_OP_FLUSH:
		r = ctl_do_flush(c, j, payload);
		count = 1;
		break;
	case RDMAFS_OP_STAT:
		r = ctl_do_stat(c, j, payload);
		count = !r;
		break;
	case RDMAFS_OP_MAP:
		r = ctl_do_map(c, j, payload, &sendfd);
		count = !r;
		break;
	case RDMAFS_OP_EVICT:
		r = ctl_do_evict(c, j, payload);
		count = 1;
		break;
	case RDMAFS_OP_LEASE:
		r = ctl_do_lease(c, j);
		break;
	case RDMAFS_OP_LEASE_LIST:
		r = ctl_do_lease_list(c, j, payload, &count, &next);
		break;
	case RDMAFS_OP_LEASE_BREAK:
		r = ctl_do_lease_break(c, j);
		break;
	case RDMAFS_OP_METRICS:
		r = ctl_do_metrics(c, j, payload);
		count = !r;
		break;
	case RDMAFS_OP_FILES:
		r = ctl_do_files(c, j, payload, &count, &next);
		break;
	default:
		r = -EOPNOTSUPP;	/* the decoder lets no other op through */
		break;
	}
	if (r && j->req.op != RDMAFS_OP_FLUSH && j->req.op != RDMAFS_OP_EVICT)
		count = 0;
	len = rdmafs_proto_encode_reply(&m->rep, j->req.op, j->req.seq, r, count,
					(size_t)rdmafs_proto_rec_size(j->req.op));
	m->rep.next = next;
	sr = ctl_conn_send(c, m, len, sendfd, false);
	if (!sr && !r && j->req.op == RDMAFS_OP_LEASE)
		ctl_conn_lease_replied(c);
	if (sr)
		log_info("ctl: client pid %d: reply not sent (%s), dropping it",
			 (int)ctl_conn_cred(c)->pid, strerror(-sr));
out:
	if (sendfd >= 0)
		close(sendfd);
	free(m);
	ctl_conn_job_done(c, sr != 0);
}

static void *worker(void *arg)
{
	for (;;) {
		struct ctl_job *j;

		pthread_mutex_lock(&wp.lock);
		while (!wp.stop && !wp.qhead)
			pthread_cond_wait(&wp.cond, &wp.lock);
		j = wp.qhead;
		if (wp.stop || !j) {
			pthread_mutex_unlock(&wp.lock);
			break;
		}
		wp.qhead = j->next;
		if (!wp.qhead)
			wp.qtail = NULL;
		wp.qlen--;
		pthread_mutex_unlock(&wp.lock);
		run_job(j);
		job_free(j);
	}
	return arg;
}

int ctl_workers_start(void)
{
	int r;

	for (; wp.nworkers < CTL_WORKERS; wp.nworkers++) {
		r = -pthread_create(&wp.workers[wp.nworkers], NULL, worker, NULL);
		if (r)
			return r;
	}
	return 0;
}

bool ctl_workers_full(void)
{
	bool full;

	pthread_mutex_lock(&wp.lock);
	full = wp.qlen >= CTL_QUEUE_MAX;
	pthread_mutex_unlock(&wp.lock);
	return full;
}

void ctl_workers_queue(struct ctl_job *j)
{
	pthread_mutex_lock(&wp.lock);
	if (wp.qtail)
		wp.qtail->next = j;
	else
		wp.qhead = j;
	wp.qtail = j;
	wp.qlen++;
	pthread_cond_signal(&wp.cond);
	pthread_mutex_unlock(&wp.lock);
}

void ctl_workers_stop(void)
{
	pthread_mutex_lock(&wp.lock);
	wp.stop = true;
	pthread_cond_broadcast(&wp.cond);
	pthread_mutex_unlock(&wp.lock);
	for (unsigned i = 0; i < wp.nworkers; i++)
		pthread_join(wp.workers[i], NULL);
	wp.nworkers = 0;
}

void ctl_workers_exit(void)
{
	while (wp.qhead) {
		struct ctl_job *j = wp.qhead;

		wp.qhead = j->next;
		job_free(j);
	}
	wp.qtail = NULL;
	wp.qlen = 0;
}
