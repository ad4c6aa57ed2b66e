/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_worker.h - the control socket's worker pool (ctl_worker.c): requests wait here for a
 * thread, because commits, scans and lease breaks wait for I/O or for other processes.
 */
#ifndef RDMAFS_CTL_WORKER_H
#define RDMAFS_CTL_WORKER_H

#include <stdbool.h>
#include <string.h>

#include "rdmafs/proto.h"

struct ctl_conn;

/*
 * A request for a worker, or a rejected one whose descriptors a worker closes: closing a
 * client's file may wait for its FUSE server (FUSE_FLUSH, a commit with flush_on_close),
 * so the epoll thread never does it.
 */
struct ctl_job {
	struct ctl_conn *c;		/* a reference */
	struct rdmafs_proto_req req;
	int err;			/* decode error to answer, 0 for a request to run */
	int fd;				/* the client's file (fds[0]), or -1 */
	int fds[4];			/* every descriptor that came with it; owned */
	unsigned nfds;
	struct ctl_job *next;
};

/* Start the workers; 0 or -errno (ctl_workers_stop() joins those that started). */
int ctl_workers_start(void);
/* Is the queue full (the request is answered EAGAIN instead)? */
bool ctl_workers_full(void);
/* Queue @j (owned by the pool from here: it replies, closes the fds, puts the connection). */
void ctl_workers_queue(struct ctl_job *j);
/* Stop taking jobs; running ones finish, the threads are joined. */
void ctl_workers_stop(void);
/* After ctl_workers_stop(): drop the jobs nobody ran (fds closed, connections put). */
void ctl_workers_exit(void);

/* Copy a string that may not fit a reply record; the wire says paths may be cut. */
static inline void ctl_copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

#endif
