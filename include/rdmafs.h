/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rdmafs.h - client API of rdmafs (librdmafs, pkg-config "rdmafs"): make a mounted file
 * durable, read its staging state, take leases on pinned memory, map staging directly.
 *
 * Every function returns 0 (or a count, or an fd) on success and a negative errno on
 * failure, like liburing; errno is not meant to be read. The library talks to the daemon
 * of the file's mount over its control socket; see rdmafs_flush(3) and the other pages.
 */
#ifndef RDMAFS_H
#define RDMAFS_H

#include <linux/ioctl.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ioctl on a file of an rdmafs mount: commit it; returns when every byte that was in its
 * staging memory when the call began is on stable storage in the backing file.
 */
#define RDMAFS_IOC_FLUSH _IO('R', 0x01)

/* struct rdmafs_stat.flags */
#define RDMAFS_STAT_STAGED 0x1u		/* the file has staging memory */
#define RDMAFS_STAT_SEALED 0x2u		/* nobody can write it any more */
#define RDMAFS_STAT_PASSTHROUGH 0x4u	/* the kernel passes the mount's I/O through */
#define RDMAFS_STAT_CHANGED_KNOWN 0x8u	/* changed_bytes was measured */

/* Staging state of one file, or the sums over a mount's staged files. */
struct rdmafs_stat {
	uint64_t size;			/* staged size (file) or staged file bytes (mount) */
	uint64_t staged_bytes;		/* staging memory held */
	uint64_t changed_bytes;		/* in staging, not yet committed */
	uint64_t committed_bytes;	/* committed since staged (lifetime counters ...) */
	uint64_t commit_ns;		/* ... and the time those commits took */
	uint64_t commits, failures;
	uint64_t scanned_bytes;
	struct timespec last_commit;	/* CLOCK_REALTIME; 0 = never */
	time_t last_error_time;
	int last_error;			/* negative errno of the last failed commit, or 0 */
	int pending_error;		/* what the next flush returns unless it succeeds */
	unsigned opens, opens_w, leases;
	unsigned files;			/* staged files counted */
	unsigned staging_mode;		/* 0 shmem, 1 thp, 2 hugetlb */
	unsigned flags;			/* RDMAFS_STAT_* */
	unsigned flush_interval;	/* seconds, 0 = no periodic commit */
	uint64_t page_size, chunk_size;
	uint64_t budget;		/* staging_budget of the mount */
	uint64_t ino;			/* file: backing inode number */
	/* mount: leases granted, breaks, breaks denied, leases revoked, holders that died */
	uint64_t lease_granted, lease_breaks, lease_denies, lease_revokes, lease_deaths;
	uint64_t reserved[3];
};

/* Outcome of a mount-wide flush or evict. */
struct rdmafs_report {
	uint64_t files_done, files_total;
	uint64_t bytes;			/* committed (flush) or freed (evict) */
	uint32_t files_failed;
	int first_error;
	uint64_t reserved[4];
};

typedef void (*rdmafs_progress_fn)(const struct rdmafs_report *progress, void *arg);

struct rdmafs_lease_info {
	uint64_t ino;			/* backing inode number */
	int pid;			/* holder */
	int signo;
	int breaking;			/* 1 while the lease is being broken */
	char path[208];			/* mount-relative path, may be cut */
};

/* Commit the file open as @fd (for writing, unless the caller is root or the mount's
 * owner) with the durability contract of fsync(2). */
int rdmafs_flush(int fd);
/* Commit every staged file of the mount that holds @path (root or the mount owner). */
int rdmafs_flush_all(const char *path);
/* Same, with a report and progress calls (@fn may be NULL) while it runs. */
int rdmafs_flush_all_report(const char *path, struct rdmafs_report *report,
			    rdmafs_progress_fn fn, void *arg);
/* Staging state of the file open as @fd (any open mode). */
int rdmafs_stat(int fd, struct rdmafs_stat *st);
/* Sums over the mount that holds @path. */
int rdmafs_mount_stat(const char *path, struct rdmafs_stat *st);
/*
 * Map the staging memory of the file open as @fd: PROT_READ needs a readable open,
 * PROT_WRITE an O_RDWR open. MAP_SHARED; *len is a multiple of the staging page size.
 * The mapping may be pinned (ibv_reg_mr); take a lease (rdmafs_lease) when you do.
 */
int rdmafs_map(int fd, int prot, void **addr, size_t *len);
int rdmafs_unmap(void *addr, size_t len);
/*
 * Lease on the staging of the file open as @fd; returns the lease fd. It becomes readable
 * when the lease is being broken (and @signo, if not 0, is sent); unpin, then close it.
 * Closing it, or the holder's death, releases the lease. @fd must be open for writing,
 * unless the caller owns the file (-EBADF); a user holds at most 64 leases (-ENOLCK).
 */
int rdmafs_lease(int fd, int signo);
/* Leases of the file open as @fd, or of the mount of @path when @fd < 0 (root or the
 * mount owner). *out is malloc()ed, free() it; returns the number of leases. */
int rdmafs_lease_list(const char *path, int fd, struct rdmafs_lease_info **out);
/* Break every lease on the file open as @fd (root or the mount owner). */
int rdmafs_lease_break(int fd);
/* Commit and drop staging of files nobody opens, maps, pins or leases (root or owner). */
int rdmafs_evict(const char *path, struct rdmafs_report *report);

#ifdef __cplusplus
}
#endif
#endif
