/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_lease.h - the control requests of pin holders (ctl_lease.c): map the staging, take,
 * list and break leases.
 */
#ifndef RDMAFS_CTL_LEASE_H
#define RDMAFS_CTL_LEASE_H

#include <stdint.h>

#include "rdmafs/proto.h"

struct ctl_conn;
struct ctl_job;

/* MAP: the staging memfd with the client's access; *@fd_out owned by the caller. */
int ctl_do_map(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_map *wm,
	       int *fd_out);
/* LEASE: the connection becomes the lease (released when it closes). */
int ctl_do_lease(struct ctl_conn *c, const struct ctl_job *j);
/* One page of holders from j->req.arg: *@count records, *@next the next page or 0. */
int ctl_do_lease_list(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_lease *out,
		      uint32_t *count, uint32_t *next);
int ctl_do_lease_break(struct ctl_conn *c, const struct ctl_job *j);
/* A resumed generation: the leases the dead one kept become connections and leases again
 * (after ctl_conns_init(), before the epoll thread starts). */
void ctl_lease_resume(void);

#endif
