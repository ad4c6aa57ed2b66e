/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_closer.h - closing the descriptors control clients send us, without ever waiting for
 * them (ctl_closer.c).
 */
#ifndef RDMAFS_CTL_CLOSER_H
#define RDMAFS_CTL_CLOSER_H

#include <sys/types.h>

/* Close @n descriptors @uid's client sent us; returns at once (a closer child closes). */
void ctl_close_client_fds(const int *fds, unsigned n, uid_t uid);
/* Closes of @uid's descriptors waiting longer than a close should (a FUSE server stuck). */
unsigned ctl_closers_stuck(uid_t uid);
/* Reap the closers that are done (the control thread's timer). */
void ctl_closers_reap(void);
/* At exit: wait up to a second for closers, then leave the stuck ones behind. */
void ctl_closers_exit(void);

#endif
