// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_xattr.c - FUSE ops beside the data: extended attributes, the flush ioctl, statfs.
 */
#include "fuse_int.h"
#include "commit.h"

#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "rdmafs.h"

void op_statfs(fuse_req_t req, fuse_ino_t i)
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

void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *name, const char *value,
		 size_t size, int flags)
{
	struct setx_arg x = { name, value, size, flags };
	enum journal_start j = JOURNAL_NEW;
	int e;

	/* Only XATTR_CREATE fails when done twice (a replace or plain set does not). */
	if (flags & XATTR_CREATE)
		j = journal_begin(req, FUSE_SETXATTR);
	if (j == JOURNAL_REPLAYED)
		return;
	e = with_path(ino_of(i), set_one, &x) < 0 ? errno : 0;
	if (j == JOURNAL_REDO && e == EEXIST)
		e = 0;	/* set by the dead daemon */
	if (flags & XATTR_CREATE)
		jreply_err(req, e);
	else
		fuse_reply_err(req, e);
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

void op_getxattr(fuse_req_t req, fuse_ino_t i, const char *name, size_t size)
{
	struct xattr_arg x = { ino_of(i), name };

	reply_xattr(req, size, get_one, &x);
}

void op_listxattr(fuse_req_t req, fuse_ino_t i, size_t size)
{
	struct xattr_arg x = { ino_of(i), NULL };

	reply_xattr(req, size, get_list, &x);
}

void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *name)
{
	enum journal_start j = journal_begin(req, FUSE_REMOVEXATTR);
	int e;

	if (j == JOURNAL_REPLAYED)
		return;
	e = with_path(ino_of(i), remove_one, (void *)name) < 0 ? errno : 0;
	if (j == JOURNAL_REDO && e == ENODATA)
		e = 0;	/* removed by the dead daemon */
	jreply_err(req, e);
}

void op_ioctl(fuse_req_t req, fuse_ino_t i, unsigned int cmd, void *arg,
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
	} else if (fi) {
		r = fsync_unstaged(fi);	/* e.g. staging_paths mode none */
	}
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}
