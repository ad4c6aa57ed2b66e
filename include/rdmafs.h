/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rdmafs.h - client API of rdmafs (librdmafs, pkg-config "rdmafs"): make a mounted file
 * durable, read its staging state, take leases on pinned memory, map staging directly.
 */
#ifndef RDMAFS_H
#define RDMAFS_H

#include <linux/ioctl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ioctl on a file of an rdmafs mount: commit it; returns when every byte that was in its
 * staging memory when the call began is on stable storage in the backing file.
 */
#define RDMAFS_IOC_FLUSH _IO('R', 0x01)

#ifdef __cplusplus
}
#endif
#endif
