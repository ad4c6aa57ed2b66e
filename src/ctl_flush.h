/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl_flush.h - the control requests that commit or drop staged files (ctl_flush.c). */
#ifndef RDMAFS_CTL_FLUSH_H
#define RDMAFS_CTL_FLUSH_H

#include "rdmafs/proto.h"

struct ctl_conn;
struct ctl_job;

/* FLUSH of one file or (RDMAFS_FLUSH_ALL) of the mount, with progress if asked for. */
int ctl_do_flush(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_count *wc);
/* EVICT: commit and drop every staged file nobody opens, maps, pins or leases. */
int ctl_do_evict(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_count *wc);

#endif
