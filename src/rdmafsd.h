/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rdmafsd.h - what every daemon module shares: small macros and the monotonic clock.
 * Each module has its own header (conf.h log.h inode.h staging.h dirty.h commit.h
 * budget.h flusher.h lease.h ctl.h fuse_ops.h metrics.h); include the ones you use.
 * The module order and who owns what: doc/architecture.md.
 */
#ifndef RDMAFSD_H
#define RDMAFSD_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))
#define ALIGN_DOWN(x, a) ((x) / (a) * (a))

/* version.c: "0.1.0", or "0.1.0 (git describe)" when built from a git checkout */
const char *rdmafs_version(void);

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* "/proc/self/fd/N" of @fd into @buf, for calls that take only a path (reopen, readlink). */
#define PROC_FD_PATH_MAX 32
static inline char *proc_fd_path(char buf[PROC_FD_PATH_MAX], int fd)
{
	snprintf(buf, PROC_FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

/*
 * Until every file includes the headers it uses: the module headers, so that "rdmafsd.h"
 * alone still declares everything.
 */
#include "conf.h"
#include "log.h"
#include "inode.h"
#include "staging.h"
#include "dirty.h"
#include "flusher.h"
#include "lease.h"
#include "ctl.h"
#include "fuse_ops.h"

#endif
