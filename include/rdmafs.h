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
	unsigned staging_mode;		/* 0 shmem, 1 thp, 2 hugetlb, 3 none */
	unsigned flags;			/* RDMAFS_STAT_* */
	unsigned flush_interval;	/* seconds, 0 = no periodic commit */
	uint64_t page_size, chunk_size;
	uint64_t budget;		/* staging_budget of the mount */
	uint64_t ino;			/* file: backing inode number */
	/* mount: leases granted, breaks, breaks denied, leases revoked, holders that died */
	uint64_t lease_granted, lease_breaks, lease_denies, lease_revokes, lease_deaths;
	uint64_t lost_pages;		/* staged pages the kernel dropped: not committed, EIO */
	uint64_t syncs;			/* fdatasyncs of the backing file(s) by commits */
	uint64_t budget_refusals;	/* writes refused with ENOSPC: staging_budget reached */
	/* mount: daemon generation serving now, deaths survived, the last blackout (µs) */
	uint32_t generation, restarts;
	uint64_t last_blackout_us;
	int supervisor_pid;		/* mount: keeps its descriptors; 0: none (restart = off) */
	int restartable;		/* mount: 1 when a daemon death would be survived */
	int prev_exit;			/* mount: how the generation before ended: exit status,
					 * 256 + signal, or -1 (none) */
	char version[48];		/* mount: the serving daemon's version */
};

/* Outcome of a mount-wide flush or evict. */
struct rdmafs_report {
	uint64_t files_done, files_total;
	uint64_t bytes;			/* committed (flush) or freed (evict) */
	uint32_t files_failed;
	int first_error;
	uint64_t bytes_total;		/* rdmafs_flush_progress: bytes to commit, else 0 */
	uint64_t reserved[3];
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

/* ---- added in RDMAFS_0.2: monitoring ---- */

#define RDMAFS_NO_SCAN 0x1u		/* do not hash staging: dirty_bytes unknown */
#define RDMAFS_DIRTY_NOT_KNOWN UINT64_MAX
#define RDMAFS_M_DIRTY_PARTIAL 0x1u	/* metrics: files in a commit were not scanned */
#define RDMAFS_M_COMMITTING 0x2u	/* file: a commit of it is running */
#define RDMAFS_M_SEALED 0x4u		/* file: nobody can write it any more */
#define RDMAFS_M_BUCKETS 16
#define RDMAFS_M_ERRNOS 16

/* Counters of a mount for monitoring; *_total count since the daemon started. */
struct rdmafs_metrics {
	uint64_t staged_bytes, budget_bytes;
	uint64_t dirty_bytes;		/* RDMAFS_DIRTY_NOT_KNOWN without a scan */
	uint64_t files, files_committing, files_failing;
	uint64_t opens, opens_w, leases;
	uint64_t files_staged_total, files_dropped_total;
	uint64_t evictions_total, evicted_bytes_total;
	uint64_t committed_bytes_total, written_bytes_total, scanned_bytes_total;
	uint64_t commits_total;		/* = sum of bucket_count */
	uint64_t commit_ns_total;
	uint64_t failures_total;
	uint64_t lease_granted, lease_breaks, lease_denies, lease_revokes, lease_deaths;
	unsigned flags;			/* RDMAFS_M_* */
	unsigned nbuckets;		/* commit latency histogram, per bucket (not cumulative) */
	uint64_t bucket_le_ns[RDMAFS_M_BUCKETS];	/* upper bound; UINT64_MAX = +Inf */
	uint64_t bucket_count[RDMAFS_M_BUCKETS];
	unsigned nerrnos;
	struct {
		int error;		/* negative errno; 0 = all other errnos */
		uint64_t count;
	} failures[RDMAFS_M_ERRNOS];	/* failed commits by errno */
	uint64_t reserved[8];
};

/* One staged file of a mount. */
struct rdmafs_file_info {
	uint64_t ino;			/* backing inode number */
	uint64_t size, staged_bytes;
	uint64_t dirty_bytes;		/* RDMAFS_DIRTY_NOT_KNOWN: not scanned or committing */
	uint64_t committed_bytes;	/* since staged */
	uint64_t commits, failures, commit_ns;
	unsigned opens, opens_w, leases;
	unsigned flags;			/* RDMAFS_M_* */
	int pending_error;
	unsigned staging_mode;
	uint64_t reserved[4];
	char path[208];			/* mount-relative, may be cut; "" if unknown */
};

/* Counters of the mount that holds @path; @flags: RDMAFS_NO_SCAN or 0. */
int rdmafs_metrics(const char *path, unsigned flags, struct rdmafs_metrics *m);
/* Staged files of the mount of @path (root or the mount owner); *out is malloc()ed. */
int rdmafs_files(const char *path, unsigned flags, struct rdmafs_file_info **out);
/*
 * rdmafs_flush() of @fd (@fd >= 0) or rdmafs_flush_all_report() of @path's mount, which
 * first counts the bytes to commit (a scan) and calls @fn about five times a second
 * with progress->bytes written of progress->bytes_total.
 */
int rdmafs_flush_progress(int fd, const char *path, struct rdmafs_report *report,
			  rdmafs_progress_fn fn, void *arg);

/* ---- added in RDMAFS_0.3 ---- */

/* rdmafs_stat() and rdmafs_mount_stat() with @flags: RDMAFS_NO_SCAN (changed_bytes not
 * counted: RDMAFS_STAT_CHANGED_KNOWN unset, no staging hashed) or 0. */
int rdmafs_stat_flags(int fd, struct rdmafs_stat *st, unsigned flags);
int rdmafs_mount_stat_flags(const char *path, struct rdmafs_stat *st, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
