// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_common.c - helpers shared by the FUSE op files (fuse_int.h): a staged file's
 * attributes, lookup below a directory, clearing privileges, noting rdmafs's own changes.
 */
#include "fuse_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>


/* Staging of @ino with a reference, or NULL. */
struct staged *staged_get(struct inode *ino)
{
	struct staged *st;

	if (!ino)
		return NULL;	/* unknown node id: inode_fd() answers ESTALE */
	pthread_mutex_lock(&ino->lock);
	st = ino->st;
	if (st)
		staging_get(st);
	pthread_mutex_unlock(&ino->lock);
	return st;
}

/* A staged file's size and times are those of its staging memory. */
void fix_staged_attr(struct inode *ino, struct stat *attr)
{
	struct staged *st = staged_get(ino);
	struct stat ms;

	if (!st)
		return;
	if (fstat(st->memfd, &ms) == 0) {
		uint64_t size = ms.st_size;

		if (st->mode == STAGING_HUGETLB)
			staging_size(st, &size);	/* the logical size, not whole pages */
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

int stat_inode(struct inode *ino, struct stat *attr)
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
int lookup_fd(int fd, const char *name, struct fuse_entry_param *e)
{
	return lookup_fd_stat(fd, name, NULL, e);
}

/* lookup_fd() of an object whose attributes the caller has just read (@sb, or NULL). */
int lookup_fd_stat(int fd, const char *name, const struct stat *sb,
		   struct fuse_entry_param *e)
{
	struct inode *ino;
	struct stat st;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = attr_timeout;
	e->entry_timeout = entry_timeout;
	if (sb) {
		st = *sb;
	} else if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
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
	e->generation = inode_generation(ino);	/* a reused slot is another inode */
	e->attr = st;
	return 0;
}

int do_lookup(struct inode *parent, const char *name, struct fuse_entry_param *e)
{
	int fd = open_below(parent, name);

	if (fd < 0)
		return fd;
	return lookup_fd(fd, name, e);
}

/*
 * What the kernel does on write or truncate by an unprivileged writer, done by us because
 * we asked for FUSE_CAP_HANDLE_KILLPRIV_V2: clear set-uid, set-gid (when group-executable)
 * and file capabilities. Writes through passthrough never reach us, so this runs when a
 * regular file is opened for writing by a caller other than root, before any write.
 */
void kill_privs(struct inode *ino)
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
static void note_own_change_sb(struct inode *ino, const struct stat *sb)
{
	pthread_mutex_lock(&ino->lock);
	if (ino->st) {
		pthread_mutex_lock(&ino->st->lock);
		if (sb)
			staging_note_backing_stat(ino->st, sb);
		else
			staging_note_backing(ino->st);
		pthread_mutex_unlock(&ino->st->lock);
	}
	pthread_mutex_unlock(&ino->lock);
}

void note_own_change(struct inode *ino)
{
	note_own_change_sb(ino, NULL);
}

/* note_own_change() of the file @name in @dirfd, if rdmafs knows it. */
void note_own_change_at(int dirfd, const char *name)
{
	struct inode *ino;
	struct stat sb;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
		return;
	ino = inode_find(sb.st_dev, sb.st_ino);
	if (!ino)
		return;
	note_own_change_sb(ino, &sb);	/* the stat just taken: no second one */
	inode_unref(ino);
}
