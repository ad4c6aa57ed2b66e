/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl.h - the control socket (ctl.c).
 */
#ifndef RDMAFS_CTL_H
#define RDMAFS_CTL_H

int ctl_init(const char *mountpoint, const char *source);
/* Stop taking and running requests (threads joined); connections and leases stay. */
void ctl_stop(void);
void ctl_exit(void);

#endif
