// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_ops.c - the lowlevel FUSE op table: a thin adapter that validates, calls one module
 * and replies exactly once. Non-data operations are forwarded to the backing directory
 * through per-inode O_PATH fds and *at() calls; data goes to staging via passthrough.
 */
#include "rdmafsd.h"
#include "commit.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/fsuid.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rdmafs.h"

bool fuse_ops_passthrough;
int fuse_ops_devfd = -1;

#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif

static const double attr_timeout = 1.0, entry_timeout = 1.0;

/* One per open file; fi->fh points here. */
struct handle {
	/*
	 * Backing file opened with the client's access mode, owned, or -1: a staged open has
	 * none (its I/O goes to staging) until flock needs one (then guarded by lock).
	 */
	int fd;
	struct staged *st;	/* staging this open uses (a reference), or NULL */
	struct inode *ino;	/* a reference */
	bool writable;
	bool passthrough;	/* the kernel does the I/O: uses ino->backing_id */
	uint32_t err_seen;	/* st->err_seq this description has seen (commit_fd) */
	struct handle *next, *prev;	/* handles.list */
};

/* Open handles, so that those the kernel never released (shutdown) can be freed. */
static struct {
	pthread_mutex_t lock;	/* protects list */
	struct handle *list;
} handles = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void handle_link(struct handle *h)
{
	pthread_mutex_lock(&handles.lock);
	h->prev = NULL;
	h->next = handles.list;
	if (h->next)
		h->next->prev = h;
	handles.list = h;
	pthread_mutex_unlock(&handles.lock);
}

/* Unlink and free @h, dropping its references. */
static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&handles.lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		handles.list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&handles.lock);
	if (h->st)
		staging_put(h->st);
	if (h->fd >= 0)
		close(h->fd);
	inode_unref(h->ino);
	free(h);
}

void fuse_ops_exit(void)
{
	while (handles.list)
		handle_free(handles.list);
}

/* One per open directory. */
struct dirh {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static struct inode *ino_of(fuse_ino_t i)
{
	return inode_get(i);
}

static struct handle *fh_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* Staging of @ino with a reference, or NULL. */
static struct staged *staged_get(struct inode *ino)
{
	struct staged *st;

	pthread_mutex_lock(&ino->lock);
	st = ino->st;
	if (st)
		staging_get(st);
	pthread_mutex_unlock(&ino->lock);
	return st;
}

/* A staged file's size and times are those of its staging memory. */
static void fix_staged_attr(struct inode *ino, struct stat *attr)
{
	struct staged *st = staged_get(ino);
	struct stat ms;

	if (!st)
		return;
	if (fstat(st->memfd, &ms) == 0) {
		uint64_t size = ms.st_size;

		staging_size(st, &size);	/* hugetlb: the logical size */
		/* Grown by a passthrough write: allocate it before the caller maps it. */
		if (size > __atomic_load_n(&st->alloc_size, __ATOMIC_RELAXED))
			staging_watch_growth(st);
		attr->st_size = size;
		attr->st_blocks = (size + 511) / 512;
		if (ms.st_mtim.tv_sec > attr->st_mtim.tv_sec ||
		    (ms.st_mtim.tv_sec == attr->st_mtim.tv_sec &&
		     ms.st_mtim.tv_nsec > attr->st_mtim.tv_nsec)) {
			attr->st_mtim = ms.st_mtim;
			attr->st_ctim = ms.st_ctim;
		}
	}
	staging_put(st);
}

/*
 * The inode's O_PATH fd for one call (see inode_fd()), or -errno; give it back with
 * inode_fd_put(). The fd of an inode is not kept open: it is cached and may be reopened.
 */
static int ifd(struct inode *ino)
{
	return inode_fd(ino);
}

static int stat_inode(struct inode *ino, struct stat *attr)
{
	int fd = ifd(ino), r;

	if (fd < 0)
		return fd;
	r = fstatat(fd, "", attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	inode_fd_put(ino);
	if (r)
		return r;
	if (S_ISREG(attr->st_mode))
		fix_staged_attr(ino, attr);
	return 0;
}

/*
 * Objects of another filesystem below the source (a mount point, a btrfs subvolume) are
 * not served, as in libfuse's passthrough_hp: the source's inodes are told apart by inode
 * number (that is all a client's fd shows, e.g. to the control socket), which only holds
 * within one filesystem. Logged once.
 */
static int refuse_other_fs(const char *name)
{
	static bool logged;

	if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
		log_notice("lookup \"%s\": another filesystem below the source (mount point or "
			   "subvolume) is not served (ENOTSUP)", name);
	return -ENOTSUP;
}

/*
 * O_PATH fd of @name in @parent, or -errno. A mount point is refused without crossing
 * into it (RESOLVE_NO_XDEV): whatever is mounted there, even a user's hung FUSE server,
 * is never touched.
 */
static int open_below(struct inode *parent, const char *name)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS };
	int pfd = ifd(parent), fd;

	if (pfd < 0)
		return pfd;
	fd = syscall(SYS_openat2, pfd, name, &how, sizeof(how));
	if (fd < 0 && errno == EMFILE) {
		inode_fd_reclaim();
		fd = syscall(SYS_openat2, pfd, name, &how, sizeof(how));
	}
	if (fd < 0)
		fd = errno == EXDEV ? refuse_other_fs(name) : -errno;
	inode_fd_put(parent);
	return fd;
}

/*
 * True if an object on device @dev with mode @mode belongs to the source's filesystem.
 * overlayfs reports the device of the layer a non-directory lives in (directories have
 * the overlay's): those are the source's too; a mount point is refused by open_below().
 */
static bool on_source_fs(dev_t dev, mode_t mode)
{
	static int overlay = -1;	/* source is an overlayfs; computed once */
	struct statfs sfs;

	if (dev == inode_root()->src_dev)
		return true;
	if (overlay < 0)
		overlay = fstatfs(inode_root()->fd, &sfs) == 0 &&
			  sfs.f_type == 0x794c7630;	/* OVERLAYFS_SUPER_MAGIC */
	return overlay && !S_ISDIR(mode);
}

/* Entry of the object of O_PATH fd @fd (owned) named @name; adds a lookup. */
static int lookup_fd(int fd, const char *name, struct fuse_entry_param *e)
{
	struct inode *ino;
	struct stat st;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = attr_timeout;
	e->entry_timeout = entry_timeout;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (!on_source_fs(st.st_dev, st.st_mode)) {
		close(fd);
		return refuse_other_fs(name);
	}
	ino = inode_lookup_add(fd, &st);	/* owns fd now */
	if (!ino)
		return -errno;
	if (S_ISREG(st.st_mode))
		fix_staged_attr(ino, &st);
	e->ino = inode_fuse_ino(ino);
	e->attr = st;
	return 0;
}

static int do_lookup(struct inode *parent, const char *name, struct fuse_entry_param *e)
{
	int fd = open_below(parent, name);

	if (fd < 0)
		return fd;
	return lookup_fd(fd, name, e);
}

static void backing_drop(struct inode *ino);

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	staging_detach_hook = backing_drop;
	/* Truncation on open comes as a separate setattr: one path, where leases break. */
	fuse_unset_feature_flag(conn, FUSE_CAP_ATOMIC_O_TRUNC);
	fuse_set_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	/*
	 * We clear set-id bits and capabilities ourselves (kill_privs()). Without this the
	 * kernel asks for security.capability before every write (a GETXATTR round trip
	 * per write(2), even through passthrough: 4 KiB random writes ran at 8 MB/s).
	 */
	fuse_set_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV_V2);
	/* Staging memfds and backing files are on stacking depth 0 filesystems. */
	if (cfg->passthrough != TRI_OFF && fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH))
		conn->max_backing_stack_depth = 1;
	/* fuse_get_feature_flag() tells what the kernel offers, not what we asked for. */
	fuse_ops_passthrough = cfg->passthrough != TRI_OFF &&
			       (conn->want_ext & FUSE_CAP_PASSTHROUGH);
	if (fuse_ops_passthrough)
		log_info("FUSE passthrough enabled: mapped files live in shared memory and can be pinned");
	else
		log_warn("FUSE passthrough %s: the daemon serves read and write itself; "
			 "mapped files cannot be pinned (ibv_reg_mr will fail)",
			 cfg->passthrough == TRI_OFF ? "disabled by config" :
			 "not supported by this kernel");
}

static void op_destroy(void *userdata)
{
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(ino_of(parent), name, &e);

	if (r == -ENOENT) {
		/* A negative entry the kernel may cache. */
		e.ino = 0;
		e.entry_timeout = entry_timeout;
		fuse_reply_entry(req, &e);
	} else if (r) {
		fuse_reply_err(req, -r);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t i, uint64_t nlookup)
{
	inode_forget(ino_of(i), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t k = 0; k < count; k++)
		inode_forget(ino_of(forgets[k].ino), forgets[k].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct stat attr;
	int r = stat_inode(ino_of(i), &attr);

	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &attr, attr_timeout);
}

/*
 * What the kernel does on write or truncate by an unprivileged writer, done by us because
 * we asked for FUSE_CAP_HANDLE_KILLPRIV_V2: clear set-uid, set-gid (when group-executable)
 * and file capabilities. Writes through passthrough never reach us, so this runs when a
 * regular file is opened for writing by a caller other than root, before any write.
 */
static void kill_privs(struct inode *ino)
{
	char path[64];
	struct stat sb;
	mode_t kill;
	int fd = ifd(ino);

	if (fd < 0)
		return;
	if (fstatat(fd, "", &sb, AT_EMPTY_PATH) < 0 || !S_ISREG(sb.st_mode))
		goto out;
	kill = S_ISUID | ((sb.st_mode & S_IXGRP) ? S_ISGID : 0);
	proc_fd_path(path, fd);
	if ((sb.st_mode & kill) && chmod(path, sb.st_mode & ~kill & 07777) < 0)
		log_warn("kill set-id bits ino=%" PRIu64 ": %s", (uint64_t)ino->src_ino,
			 strerror(errno));
	if (removexattr(path, "security.capability") < 0 && errno != ENODATA &&
	    errno != ENOTSUP)
		log_warn("remove capabilities ino=%" PRIu64 ": %s", (uint64_t)ino->src_ino,
			 strerror(errno));
out:
	inode_fd_put(ino);
}

/*
 * A change made through the mount (rename, link, chmod, chown, utimes) moved the backing
 * file's ctime (or mtime) of staged @ino: record the backing file's new times and size,
 * so that its next open does not take rdmafs's own change for one made behind its back
 * (which staged a clean resident copy again, or refused a writer and a truncate with
 * EBUSY while the release of a previous open was still on its way).
 */
static void note_own_change(struct inode *ino)
{
	pthread_mutex_lock(&ino->lock);
	if (ino->st) {
		pthread_mutex_lock(&ino->st->lock);
		staging_note_backing(ino->st);
		pthread_mutex_unlock(&ino->st->lock);
	}
	pthread_mutex_unlock(&ino->lock);
}

/* note_own_change() of the file @name in @dirfd, if rdmafs knows it. */
static void note_own_change_at(int dirfd, const char *name)
{
	struct inode *ino;
	struct stat sb;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
		return;
	ino = inode_find(sb.st_dev, sb.st_ino);
	if (!ino)
		return;
	note_own_change(ino);
	inode_unref(ino);
}

static void op_setattr(fuse_req_t req, fuse_ino_t i, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct inode *ino = ino_of(i);
	char path[64];
	struct stat out;
	int r = 0, fd = ifd(ino);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	proc_fd_path(path, fd);
	if ((valid & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
	    !(valid & FUSE_SET_ATTR_MODE))
		kill_privs(ino);
	if (valid & FUSE_SET_ATTR_MODE) {
		if (chmod(path, attr->st_mode) < 0)
			goto err;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto err;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		struct staged *st = staged_get(ino);

		if (st) {
			pthread_mutex_lock(&ino->lock);
			r = ino->st == st ? staging_lock_writer(st) : 0;
			if (r == -ESTALE)
				r = -EBUSY;	/* stale resident copy: reopen for writing */
			pthread_mutex_unlock(&ino->lock);
			if (!r)
				r = staging_truncate(st, attr->st_size);
			staging_put(st);
			if (r)
				goto reply_r;
		} else if (truncate(path, attr->st_size) < 0) {
			goto err;
		}
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (utimensat(AT_FDCWD, path, tv, 0) < 0)
			goto err;
		/* getattr shows the newer of the staging and backing mtimes: set both, or an
		 * explicit older time (touch -d, cp -p, tar) is hidden while staged. */
		struct staged *st = staged_get(ino);

		if (st) {
			futimens(st->memfd, tv);
			staging_put(st);
		}
	}
	if (valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
		     FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))
		note_own_change(ino);
	r = stat_inode(ino, &out);
	if (r)
		goto reply_r;
	inode_fd_put(ino);
	fuse_reply_attr(req, &out, attr_timeout);
	return;
err:
	r = -errno;
reply_r:
	inode_fd_put(ino);
	fuse_reply_err(req, -r);
}

static void op_readlink(fuse_req_t req, fuse_ino_t i)
{
	char buf[PATH_MAX + 1];
	int fd = ifd(ino_of(i));
	ssize_t n = fd < 0 ? (errno = -fd, -1) : readlinkat(fd, "", buf, sizeof(buf));

	if (fd >= 0)
		inode_fd_put(ino_of(i));
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (n == sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = 0;
		fuse_reply_readlink(req, buf);
	}
}

enum mk_kind { MK_NOD, MK_DIR, MK_SYMLINK };
static int make_as_caller(fuse_req_t req, struct inode *parent, const char *name,
			  enum mk_kind kind, mode_t mode, dev_t rdev, const char *link);

static void reply_new_entry(fuse_req_t req, struct inode *parent, const char *name, int r)
{
	struct fuse_entry_param e;

	if (!r)
		r = do_lookup(parent, name, &e);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode, dev_t rdev)
{
	struct inode *parent = ino_of(p);
	int r;

	r = make_as_caller(req, parent, name, MK_NOD, mode, rdev, NULL);
	reply_new_entry(req, parent, name, r);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode)
{
	struct inode *parent = ino_of(p);
	int r;

	r = make_as_caller(req, parent, name, MK_DIR, mode, 0, NULL);
	reply_new_entry(req, parent, name, r);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t p, const char *name)
{
	struct inode *parent = ino_of(p);
	int r;

	r = make_as_caller(req, parent, name, MK_SYMLINK, 0, 0, link);
	reply_new_entry(req, parent, name, r);
}

static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t newparent, const char *newname)
{
	struct inode *ino = ino_of(i), *np = ino_of(newparent);
	struct fuse_entry_param e;
	char path[64];
	int fd = ifd(ino), nfd = fd < 0 ? fd : ifd(np), r = 0;

	if (fd < 0 || nfd < 0)
		r = fd < 0 ? fd : nfd;
	else if (linkat(AT_FDCWD, proc_fd_path(path, fd), nfd, newname, AT_SYMLINK_FOLLOW) < 0)
		r = -errno;
	if (nfd >= 0)
		inode_fd_put(np);
	if (fd >= 0)
		inode_fd_put(ino);
	if (!r)
		note_own_change(ino);
	if (!r)
		r = do_lookup(ino_of(newparent), newname, &e);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

/*
 * @name in @pfd is about to lose its last link: if it is open or staged, keep its fd,
 * since a deleted file cannot be reopened by handle (its opens still stat it, its staging
 * still commits to it).
 */
static void keep_if_open(int pfd, const char *name)
{
	struct inode *ino;
	struct stat sb;
	bool used;

	if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || sb.st_nlink > 1 ||
	    S_ISDIR(sb.st_mode))
		return;
	ino = inode_find(sb.st_dev, sb.st_ino);
	if (!ino)
		return;
	pthread_mutex_lock(&ino->lock);
	used = ino->nopen || ino->st;
	pthread_mutex_unlock(&ino->lock);
	if (used && inode_keep_fd(ino))
		log_warn("unlink ino=%" PRIu64 " while open: its fd could not be kept; its opens "
			 "may see ESTALE", (uint64_t)ino->src_ino);
	inode_unref(ino);
}

static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *name)
{
	int fd = ifd(ino_of(p)), e;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	keep_if_open(fd, name);
	e = unlinkat(fd, name, 0) < 0 ? errno : 0;
	inode_fd_put(ino_of(p));
	fuse_reply_err(req, e);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t p, const char *name)
{
	int fd = ifd(ino_of(p)), e;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	e = unlinkat(fd, name, AT_REMOVEDIR) < 0 ? errno : 0;
	inode_fd_put(ino_of(p));
	fuse_reply_err(req, e);
}

static void op_rename(fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np,
		      const char *newname, unsigned int flags)
{
	int fd = ifd(ino_of(p)), nfd = fd < 0 ? fd : ifd(ino_of(np)), e;

	if (fd < 0 || nfd < 0) {
		if (fd >= 0)
			inode_fd_put(ino_of(p));
		fuse_reply_err(req, -(fd < 0 ? fd : nfd));
		return;
	}
	if (!(flags & RENAME_EXCHANGE))
		keep_if_open(nfd, newname);	/* replaced */
	e = renameat2(fd, name, nfd, newname, flags) < 0 ? errno : 0;
	if (!e)
		note_own_change_at(nfd, newname);
	if (!e && (flags & RENAME_EXCHANGE))
		note_own_change_at(fd, name);
	inode_fd_put(ino_of(np));
	inode_fd_put(ino_of(p));
	fuse_reply_err(req, e);
}

static void op_opendir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct dirh *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = inode_open(ino_of(i), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		errno = -fd;
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, e);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t i, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	struct inode *dir = ino_of(i);
	char *buf = calloc(1, size), *p = buf;
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct fuse_entry_param e;
		size_t len;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;	/* 0 at the end */
				break;
			}
		}
		off_t next = d->entry->d_off;
		const char *name = d->entry->d_name;
		bool dots = !strcmp(name, ".") || !strcmp(name, "..");
		bool noino = dots;	/* an entry without an inode (no lookup to undo) */

		if (plus) {
			if (dots) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = d->entry->d_type << 12;
			} else {
				err = -do_lookup(dir, name, &e);
				if (err == ENOTSUP) {
					/* listed, not served: no attributes, no inode */
					memset(&e, 0, sizeof(e));
					e.attr.st_ino = d->entry->d_ino;
					e.attr.st_mode = d->entry->d_type << 12;
					noino = true;
					err = 0;
				}
				if (err)
					break;
			}
			len = fuse_add_direntry_plus(req, p, rem, name, &e, next);
			if (len > rem) {
				if (!noino)
					inode_forget(ino_of(e.ino), 1);
				break;
			}
		} else {
			struct stat st = { .st_ino = d->entry->d_ino,
					   .st_mode = d->entry->d_type << 12 };

			len = fuse_add_direntry(req, p, rem, name, &st, next);
			if (len > rem)
				break;
		}
		p += len;
		rem -= len;
		d->entry = NULL;
		d->offset = next;
	}
	/* An error after some entries is reported by the next call. */
	if (err && p == buf)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, i, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, i, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);
	int r = datasync ? fdatasync(fd) : fsync(fd);

	fuse_reply_err(req, r < 0 ? errno : 0);
}

/* Register @fd as the inode's passthrough backing file; ino->lock held. */
static int backing_open(fuse_req_t req, struct inode *ino, int fd, enum bk_kind kind)
{
	int id;

	if (ino->bk_kind == kind)
		return 0;
	id = fuse_passthrough_open(req, fd);
	if (id <= 0) {
		int e = errno ? errno : EIO;

		if (kind == BK_BACKING) {	/* e.g. a backing file on a stacked FS */
			log_info("passthrough ino=%" PRIu64 " to the backing file: %s; the daemon "
				 "serves it", (uint64_t)ino->src_ino, strerror(e));
		} else {
			log_err("passthrough ino=%" PRIu64 ": %s; serving this mount without "
				"passthrough (mapped files cannot be pinned)",
				(uint64_t)ino->src_ino, strerror(e));
			fuse_ops_passthrough = false;
		}
		return -e;
	}
	ino->backing_id = id;
	ino->bk_kind = kind;
	return 0;
}

/*
 * Staging left the inode or got a new memfd (staging_detach_hook; ino->lock held): close
 * the passthrough backing id of the old memfd, which a resident staging keeps registered
 * between opens (the kernel holds the memfd through it). No open uses it then. Called
 * from threads that have no request: the ioctl goes to the session's /dev/fuse.
 */
static void backing_drop(struct inode *ino)
{
	int id = ino->backing_id;

	if (ino->bk_kind != BK_STAGING || ino->bk_opens)
		return;
	if (fuse_ops_devfd >= 0 && ioctl(fuse_ops_devfd, FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0)
		log_warn("passthrough close ino=%" PRIu64 " id=%d: %s", (uint64_t)ino->src_ino, id,
			 strerror(errno));
	ino->backing_id = 0;
	ino->bk_kind = BK_NONE;
}

/*
 * Resident staging of a file nobody uses, whose backing file changed behind rdmafs since
 * the fill or the last commit (size, mtime or ctime): staged again from the backing file,
 * if the staging is known clean (else the staged version wins: it is committed over the
 * backing file, as any change made through the mount). ino->lock held.
 */
static void revalidate(struct inode *ino)
{
	struct staged *st = ino->st;
	struct stat sb;
	int fd, r;

	if (!st || ino->nopen || st->pending_error)
		return;
	fd = inode_fd(ino);	/* cached or reopened by handle: a staged open has no fd */
	if (fd < 0)
		return;
	r = fstat(fd, &sb);
	inode_fd_put(ino);
	if (r < 0 || !staging_backing_changed(st, &sb))
		return;
	pthread_mutex_lock(&st->lock);
	bool mapped = st->may_change;
	pthread_mutex_unlock(&st->lock);
	if (mapped || !staging_known_clean(st) || lease_count(st)) {
		log_notice("open ino=%" PRIu64 ": backing file changed behind rdmafs while staged "
			   "with changes not yet committed: the staged version is kept",
			   (uint64_t)ino->src_ino);
		pthread_mutex_lock(&st->lock);
		staging_note_backing(st);	/* said once */
		pthread_mutex_unlock(&st->lock);
		return;
	}
	log_info("open ino=%" PRIu64 ": backing file changed behind rdmafs: staged again",
		 (uint64_t)ino->src_ino);
	staging_drop(st);
}

/*
 * Open @ino for @fi: writable opens and every open of a staged file use its staging;
 * read-only opens of an unstaged file use the backing file. With passthrough the kernel
 * then does all I/O; without it the daemon serves read and write.
 */
static int open_common(fuse_req_t req, struct inode *ino, struct fuse_file_info *fi)
{
	bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct handle *h = calloc(1, sizeof(*h));
	struct staged *st;
	int r = 0;

	if (!h)
		return -ENOMEM;
	h->writable = writable;
	h->fd = -1;
	if (writable && fuse_req_ctx(req)->uid != 0)
		kill_privs(ino);
	pthread_mutex_lock(&ino->lock);
	revalidate(ino);
	st = ino->st;
	if (st && writable) {
		/* A resident file this node does not stage for writing: lock it again. */
		r = staging_lock_writer(st);
		if (r == -ESTALE && !ino->nopen && !lease_count(st)) {
			staging_drop(st);	/* clean and unlocked: staged again below */
			st = NULL;
			r = 0;
		} else if (r == -ESTALE) {
			log_notice("open ino=%" PRIu64 " for writing: backing file changed by "
				   "another stager while open read-only here: refused (EBUSY) "
				   "until those opens close", (uint64_t)ino->src_ino);
			r = -EBUSY;
		}
		if (r)
			goto err_unlock;
	}
	if (st && st->sealed) {
		r = staging_unseal(st);
		if (r)
			goto err_unlock;
	}
	if (!st && writable && ino->type == S_IFREG) {
		if (ino->bk_kind == BK_BACKING) {
			log_info("open ino=%" PRIu64 " for writing while read-only opens use the "
				 "backing file: not staged (its mappings cannot be pinned)",
				 (uint64_t)ino->src_ino);
		} else {
			r = staging_create(ino, &st);
			if (r == -ENOSPC) {
				log_notice("open ino=%" PRIu64 ": staging_budget reached, not staged",
					   (uint64_t)ino->src_ino);
				r = 0;
			} else if (r) {
				goto err_unlock;
			} else {
				ino->st = st;
			}
		}
	}
	if (!st) {
		/* An unstaged open: I/O through the backing file. Staged opens need no fd of
		 * their own, so that files held open do not cost a descriptor each. */
		h->fd = inode_open(ino, fi->flags & O_ACCMODE);
		if (h->fd < 0) {
			r = h->fd;
			goto err_unlock;
		}
	}
	if (st && staging_no_passthrough(st)) {
		/* hugetlb staging: passthrough refuses it (ELOOP). The daemon serves read
		 * and write; direct I/O keeps the kernel's page cache out. */
		fi->direct_io = 1;
	} else if (fuse_ops_passthrough) {
		if (st)
			r = backing_open(req, ino, st->memfd, BK_STAGING);
		else
			r = backing_open(req, ino, h->fd, BK_BACKING);
		if (!r && ino->bk_kind == (st ? BK_STAGING : BK_BACKING)) {
			fi->backing_id = ino->backing_id;
			ino->bk_opens++;
			h->passthrough = true;
			if (st && writable && staging_serves_writes(st)) {
				/*
				 * mmap still maps the staging memfd (the kernel checks
				 * passthrough first), but FOPEN_DIRECT_IO overrides it for
				 * read, write and splice: writes come to us, and growth
				 * past staging_budget gets ENOSPC (op_write_buf()). The
				 * kernel takes the inode lock exclusively for a write past
				 * EOF, shared for the others.
				 */
				fi->direct_io = 1;
				fi->parallel_direct_writes = 1;
			}
		} else {
			/* Served by the daemon; direct I/O keeps the kernel's page cache out
			 * of an inode that other opens pass through. */
			fi->direct_io = 1;
		}
		r = 0;
	}
	if (st) {
		staging_get(st);
		h->st = st;
		staging_touch(st);
		h->err_seen = commit_err_sample(st);
		if (writable)
			staging_note_change(st);	/* maybe dirty until a commit after it */
	}
	inode_open_add(ino, writable);
	pthread_mutex_unlock(&ino->lock);
	inode_ref(ino);
	h->ino = ino;
	handle_link(h);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	return 0;

err_unlock:
	pthread_mutex_unlock(&ino->lock);
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	return r;
}

static void op_open(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	int r = open_common(req, ino_of(i), fi);

	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
}

/* The daemon thread's own supplementary groups, while it acts as a caller. */
struct saved_cred {
	gid_t groups[64];
	int ngroups;
};

/*
 * Act as the caller of @req in this thread only: fsuid, fsgid and supplementary groups
 * (raw syscalls: glibc's setgroups() would change every thread). A non-zero fsuid drops
 * the file capabilities (CAP_DAC_OVERRIDE, ...), so the backing filesystem checks the
 * caller's access. Groups that cannot be read are left out: fewer rights, never more.
 * Undo with cred_leave(); 0 or -errno.
 */
static int cred_enter(fuse_req_t req, struct saved_cred *sv)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[256];
	int n = fuse_req_getgroups(req, ARRAY_SIZE(groups), groups);

	if (n < 0 || n > (int)ARRAY_SIZE(groups))
		n = 0;
	sv->ngroups = getgroups(ARRAY_SIZE(sv->groups), sv->groups);
	if (sv->ngroups < 0)
		return -errno;
	if (syscall(SYS_setgroups, n, groups) < 0)
		return -errno;
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	if ((uid_t)setfsuid(-1) == ctx->uid && (gid_t)setfsgid(-1) == ctx->gid)
		return 0;
	log_err("act as uid %u gid %u: not taken", (unsigned)ctx->uid, (unsigned)ctx->gid);
	setfsuid(geteuid());
	setfsgid(getegid());
	syscall(SYS_setgroups, sv->ngroups, sv->groups);
	return -EPERM;
}

static void cred_leave(const struct saved_cred *sv)
{
	setfsuid(geteuid());
	setfsgid(getegid());
	if (syscall(SYS_setgroups, sv->ngroups, sv->groups) < 0)
		log_err("restore the daemon's groups: %s", strerror(errno));
}

/*
 * MKNOD, MKDIR, SYMLINK as the caller: the object is theirs from birth (group and set-gid
 * bit from a set-gid parent by the kernel's rules), with no chown by name afterwards that
 * a rename into @name meanwhile could redirect. The parent's fd is taken first: reopening
 * it by handle needs the daemon's own privileges. 0 or -errno.
 */
static int make_as_caller(fuse_req_t req, struct inode *parent, const char *name,
			  enum mk_kind kind, mode_t mode, dev_t rdev, const char *link)
{
	struct saved_cred sv;
	int fd = ifd(parent), r;

	if (fd < 0)
		return fd;
	r = cred_enter(req, &sv);
	if (!r) {
		switch (kind) {
		case MK_NOD:
			r = mknodat(fd, name, mode, rdev);
			break;
		case MK_DIR:
			r = mkdirat(fd, name, mode);
			break;
		case MK_SYMLINK:
			r = symlinkat(link, fd, name);
			break;
		}
		r = r < 0 ? -errno : 0;
		cred_leave(&sv);
	}
	inode_fd_put(parent);
	return r;
}

/*
 * Create @name in @parent for CREATE, as the caller: a new file belongs to them (and the
 * set-gid rule of the parent applies), and a file that exists already is opened only if
 * they may open it so (the kernel sends CREATE on a stale negative dentry and then skips
 * its own check of the existing file). O_TRUNC asks for write access, as the kernel does.
 * Returns an O_PATH fd of the very object created or checked (a lookup by name could
 * find another one renamed there meanwhile), or -errno; *created tells which, and @sb is
 * what was created. A create that fails after making the file removes it (undo_create()).
 */
static int create_as_caller(fuse_req_t req, struct inode *parent, int dirfd, const char *name,
			    mode_t mode, int flags, bool *created, struct stat *sb)
{
	int acc = flags & O_ACCMODE, fd, pfd, r;
	struct saved_cred sv;
	char proc[64];

	if ((flags & O_TRUNC) && acc == O_RDONLY)
		acc = O_RDWR;
	r = cred_enter(req, &sv);
	if (r)
		return r;
	*created = true;
	fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 && errno == EEXIST && !(flags & O_EXCL)) {
		*created = false;
		/* O_CREAT: the kernel's own rules for an existing file (protected_regular);
		 * O_NONBLOCK: a FIFO must not block us (non-regular files are refused below). */
		fd = openat(dirfd, name, acc | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW,
			    mode);
	}
	r = fd < 0 ? -errno : 0;
	cred_leave(&sv);
	if (r)
		return r;
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		return -EEXIST;	/* CREATE must answer a regular file */
	}
	proc_fd_path(proc, fd);
	pfd = open(proc, O_PATH | O_CLOEXEC);
	if (pfd < 0 && errno == EMFILE) {
		inode_fd_reclaim();
		pfd = open(proc, O_PATH | O_CLOEXEC);
	}
	r = pfd < 0 ? -errno : pfd;
	close(fd);
	return r;
}

/*
 * A CREATE that made @name and then failed: remove it, as the caller (who made it), if the
 * name still is the file made (@sb), so that a failed create leaves nothing behind.
 */
static void undo_create(fuse_req_t req, int dirfd, const char *name, const struct stat *sb)
{
	struct saved_cred sv;
	struct stat now;
	int r;

	if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != sb->st_dev ||
	    now.st_ino != sb->st_ino)
		return;	/* renamed or replaced meanwhile: not ours any more */
	r = cred_enter(req, &sv);
	if (r)
		return;
	r = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	cred_leave(&sv);
	if (r)
		log_warn("create \"%s\" failed, and removing it too: %s", name, strerror(-r));
}

static void op_create(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct inode *parent = ino_of(p);
	struct fuse_entry_param e;
	int fd, dirfd, r = 0;
	bool created = false;
	struct stat sb;

	/* Before acting as the caller: a reopen by handle needs the daemon's capabilities. */
	dirfd = ifd(parent);
	if (dirfd < 0) {
		fuse_reply_err(req, -dirfd);
		return;
	}
	fd = create_as_caller(req, parent, dirfd, name, mode, fi->flags, &created, &sb);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = lookup_fd(fd, name, &e);	/* owns fd */
	if (!r && !created && (fi->flags & O_TRUNC)) {
		/* The kernel treats a created file as new and skips its own truncation: an
		 * existing file (stale negative dentry) must be truncated here. */
		struct inode *ino = ino_of(e.ino);
		struct staged *st = staged_get(ino);
		char path[64];

		if (st) {
			r = staging_truncate(st, 0);
			staging_put(st);
		} else {
			int tfd = ifd(ino);

			r = tfd < 0 ? tfd : truncate(proc_fd_path(path, tfd), 0) < 0 ? -errno : 0;
			if (tfd >= 0)
				inode_fd_put(ino);
		}
		if (!r)
			r = stat_inode(ino, &e.attr);
		if (r)
			inode_forget(ino, 1);
	}
	if (!r) {
		fi->flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
		r = open_common(req, ino_of(e.ino), fi);
		if (r)
			inode_forget(ino_of(e.ino), 1);
	}
out:
	if (r && created)
		undo_create(req, dirfd, name, &sb);
	inode_fd_put(parent);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_create(req, &e, fi);
}

static void op_flush(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);
	int r = 0;

	/* close() waits for durability with flush_on_close=yes (NFS-like close-to-open). */
	if (h->st && h->writable && cfg->flush_on_close == FLUSH_CLOSE_YES)
		r = commit_fd(h->st, &h->err_seen);
	fuse_reply_err(req, -r);
}

static void op_release(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct inode *ino = ino_of(i);
	struct handle *h = fh_of(fi);
	bool last;

	pthread_mutex_lock(&ino->lock);
	last = inode_open_drop(ino, h->writable);
	/* A staged file's backing id stays while it is staged (resident): a reopen reuses
	 * it; backing_drop() closes it when the staging goes or gets a new memfd. */
	if (h->passthrough && --ino->bk_opens == 0 &&
	    !(ino->bk_kind == BK_STAGING && h->st && ino->st == h->st)) {
		fuse_passthrough_close(req, ino->backing_id);
		ino->backing_id = 0;
		ino->bk_kind = BK_NONE;
	}
	pthread_mutex_unlock(&ino->lock);
	/* flush_on_close=async: the last writer's release (after munmap of its mappings)
	 * starts a commit of this file in the flusher thread; close does not wait. */
	if (h->st && last && cfg->flush_on_close == FLUSH_CLOSE_ASYNC)
		flusher_commit_async(h->st);
	/* flush_on_close=yes committed at flush, with this writer still open: a commit
	 * after the last writer proves the file clean and gives up the stager lock. */
	if (h->st && last && cfg->flush_on_close == FLUSH_CLOSE_YES)
		flusher_commit_async(h->st);
	handle_free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi)
{
	struct inode *ino = ino_of(i);
	struct staged *st = staged_get(ino);
	int r;

	if (st && fi && fh_of(fi)->st == st) {
		r = commit_fd(st, &fh_of(fi)->err_seen);
		staging_put(st);
	} else if (st) {
		r = commit_file(st);
		staging_put(st);
	} else if (fi && fh_of(fi)->st) {
		r = commit_fd(fh_of(fi)->st, &fh_of(fi)->err_seen);
	} else if (fi && fh_of(fi)->fd >= 0) {
		r = (datasync ? fdatasync(fh_of(fi)->fd) : fsync(fh_of(fi)->fd)) < 0 ? -errno : 0;
	} else {
		r = 0;
	}
	fuse_reply_err(req, -r);
}

/*
 * A buffer of at least @size bytes owned by the calling thread (freed when it exits), or
 * NULL. Reused because a new one per read costs a first-touch fault per page (up to 1 MiB
 * a request), which libfuse's own splice reply falls back to whenever a reply exceeds the
 * pipe: 1 MiB reads ran at 0.05 of passthrough with it.
 */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_init(void)
{
	if (pthread_key_create(&read_buf_key, free))
		log_err("read buffers: pthread_key_create failed");
}

static char *read_buf(size_t size)
{
	size_t *b;

	pthread_once(&read_buf_once, read_buf_key_init);
	b = pthread_getspecific(read_buf_key);
	if (b && *b >= size)
		return (char *)(b + 1);
	free(b);
	b = malloc(sizeof(*b) + size);
	if (b)
		*b = size;
	pthread_setspecific(read_buf_key, b);
	return b ? (char *)(b + 1) : NULL;
}

/*
 * Daemon-served I/O: when the kernel does not pass the file through, and writable opens
 * of shmem staging with budget_enforce=strict (open_common()).
 */
static void op_read(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (h->st) {
		char *mem = read_buf(size ? size : 1);
		ssize_t n = mem ? staging_pread(h->st, mem, size, off) : -ENOMEM;

		if (n < 0)
			fuse_reply_err(req, -n);
		else
			fuse_reply_buf(req, mem, n);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t i, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	if (h->st && staging_no_passthrough(h->st)) {
		/* Into memory first (the request may sit in a pipe), then into staging. */
		size_t len = fuse_buf_size(in);
		struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);

		mem.buf[0].mem = malloc(len ? len : 1);
		n = mem.buf[0].mem ? fuse_buf_copy(&mem, in, 0) : -ENOMEM;
		if (n >= 0)
			n = staging_pwrite(h->st, mem.buf[0].mem, n, off);
		free(mem.buf[0].mem);
		if (n < 0)
			fuse_reply_err(req, -n);
		else
			fuse_reply_write(req, n);
		return;
	}

	if (h->st) {
		/* Growth is charged to staging_budget first; a short count where it ends. */
		n = staging_write_begin(h->st, off, out.buf[0].size);
		if (n < 0) {
			fuse_reply_err(req, -n);
			return;
		}
		out.buf[0].size = n;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = h->st ? h->st->memfd : h->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (h->st)
		staging_write_end(h->st, off, n);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

static void op_statfs(fuse_req_t req, fuse_ino_t i)
{
	struct statvfs sv;
	int fd = ifd(ino_of(i)), e;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	e = fstatvfs(fd, &sv) < 0 ? errno : 0;
	inode_fd_put(ino_of(i));
	if (e)
		fuse_reply_err(req, e);
	else
		fuse_reply_statfs(req, &sv);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t i, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct staged *st = staged_get(ino_of(i));
	int r;

	if (!st && fh_of(fi)->st) {
		st = fh_of(fi)->st;
		staging_get(st);
	}
	if (st) {
		r = staging_fallocate(st, mode, off, len);
		staging_put(st);
	} else {
		r = fallocate(fh_of(fi)->fd, mode, off, len) < 0 ? -errno : 0;
	}
	fuse_reply_err(req, -r);
}

static void op_flock(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, int op)
{
	struct handle *h = fh_of(fi);
	int fd = __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE);

	if (fd < 0) {
		/* A staged open has no backing fd: the lock needs one, owned by the handle
		 * (a lock belongs to one open file description) until release. */
		int nfd = inode_open(h->ino, O_RDONLY), exp = -1;

		if (nfd < 0) {
			fuse_reply_err(req, -nfd);
			return;
		}
		if (__atomic_compare_exchange_n(&h->fd, &exp, nfd, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			fd = nfd;
		} else {
			close(nfd);	/* another flock of this handle set it first */
			fd = exp;
		}
	}
	fuse_reply_err(req, flock(fd, op) < 0 ? errno : 0);
}

/* Run @fn on the "/proc/self/fd/N" path of @ino; its result, or -1 with errno. */
static ssize_t with_path(struct inode *ino, ssize_t (*fn)(const char *path, void *arg),
			 void *arg)
{
	char path[64];
	int fd = ifd(ino);
	ssize_t n;

	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	n = fn(proc_fd_path(path, fd), arg);
	if (n < 0) {
		int e = errno;

		inode_fd_put(ino);
		errno = e;
		return n;
	}
	inode_fd_put(ino);
	return n;
}

struct setx_arg {
	const char *name, *value;
	size_t size;
	int flags;
};

static ssize_t set_one(const char *path, void *a)
{
	struct setx_arg *x = a;

	return setxattr(path, x->name, x->value, x->size, x->flags);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *name, const char *value,
			size_t size, int flags)
{
	struct setx_arg x = { name, value, size, flags };

	fuse_reply_err(req, with_path(ino_of(i), set_one, &x) < 0 ? errno : 0);
}

static void reply_xattr(fuse_req_t req, size_t size, ssize_t (*get)(void *, char *, size_t),
			void *arg)
{
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = get(arg, buf, size);
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (!size)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

struct xattr_arg {
	struct inode *ino;
	const char *name;
	char *buf;
	size_t size;
};

static ssize_t get_one_path(const char *path, void *a)
{
	struct xattr_arg *x = a;

	return getxattr(path, x->name, x->buf, x->size);
}

static ssize_t get_list_path(const char *path, void *a)
{
	struct xattr_arg *x = a;

	return listxattr(path, x->buf, x->size);
}

static ssize_t get_one(void *a, char *buf, size_t size)
{
	struct xattr_arg *x = a;

	x->buf = buf;
	x->size = size;
	return with_path(x->ino, get_one_path, x);
}

static ssize_t get_list(void *a, char *buf, size_t size)
{
	struct xattr_arg *x = a;

	x->buf = buf;
	x->size = size;
	return with_path(x->ino, get_list_path, x);
}

static ssize_t remove_one(const char *path, void *a)
{
	return removexattr(path, a);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t i, const char *name, size_t size)
{
	struct xattr_arg x = { ino_of(i), name };

	reply_xattr(req, size, get_one, &x);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t i, size_t size)
{
	struct xattr_arg x = { ino_of(i), NULL };

	reply_xattr(req, size, get_list, &x);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *name)
{
	fuse_reply_err(req, with_path(ino_of(i), remove_one, (void *)name) < 0 ? errno : 0);
}

static void op_ioctl(fuse_req_t req, fuse_ino_t i, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	struct staged *st;
	int r = 0;

	if (cmd != RDMAFS_IOC_FLUSH) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	st = staged_get(ino_of(i));
	if (st) {
		r = commit_file(st);
		staging_put(st);
	}
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

const struct fuse_lowlevel_ops rdmafs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.open = op_open,
	.create = op_create,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.read = op_read,
	.write_buf = op_write_buf,
	.statfs = op_statfs,
	.fallocate = op_fallocate,
	.flock = op_flock,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.ioctl = op_ioctl,
};
