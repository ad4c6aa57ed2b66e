/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl_socket.h - the control socket's name in RDMAFS_RUNDIR (ctl_socket.c). */
#ifndef RDMAFS_CTL_SOCKET_H
#define RDMAFS_CTL_SOCKET_H

#include <sys/types.h>

/*
 * Bind and listen on the socket of the mount @mountpoint on FUSE device @dev. Returns the
 * listening descriptor (non-blocking, owned by the caller) or -errno: the run directory is
 * not trusted, or a live daemon holds the name (-EADDRINUSE).
 */
int ctl_socket_listen(const char *mountpoint, dev_t dev);
/* The socket's path (for logs), once ctl_socket_listen() was called. */
const char *ctl_socket_path(void);
/* Remove the socket's name if it is still ours; idempotent. */
void ctl_socket_remove(void);

#endif
