/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_ops.h - the FUSE low-level operations (fuse_ops.c).
 */
#ifndef RDMAFS_FUSE_OPS_H
#define RDMAFS_FUSE_OPS_H

#include <stdbool.h>

struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops rdmafs_ops;
extern bool fuse_ops_passthrough;	/* the kernel accepted passthrough */
extern int fuse_ops_devfd;		/* /dev/fuse of the session (backing id close), or -1 */
/*
 * Before serving: the handle table (restart.h); resumed, the handles of the generation
 * before, and the backing ids no open uses any more closed. After staging_init() (a
 * resumed staging claims its files first) and with fuse_ops_devfd set. 0 or -errno.
 */
int fuse_ops_init(void);
/* Free the handles of files still open when the session ended. */
void fuse_ops_exit(void);

#endif
