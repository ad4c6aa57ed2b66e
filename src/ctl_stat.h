/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl_stat.h - the control requests that report (ctl_stat.c): stat, metrics, files. */
#ifndef RDMAFS_CTL_STAT_H
#define RDMAFS_CTL_STAT_H

#include <stdint.h>

#include "rdmafs/proto.h"

struct ctl_conn;
struct ctl_job;

int ctl_do_stat(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_stat *w);
int ctl_do_metrics(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_metrics *w);
/* One page of the staged files from j->req.arg: *@count records, *@next the next page or 0. */
int ctl_do_files(struct ctl_conn *c, const struct ctl_job *j, struct rdmafs_wire_file *out,
		 uint32_t *count, uint32_t *next);

#endif
