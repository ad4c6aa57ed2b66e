// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_ops.c - the lowlevel FUSE op table: a thin adapter that validates, calls one module
 * and replies exactly once. Non-data operations are forwarded to the backing directory
 * through per-inode O_PATH fds and *at() calls; data goes to staging via passthrough.
 * This file: the table, init/destroy, lookup, forget, getattr, setattr. The other ops:
 * fuse_dir.c (names, directories), fuse_file.c (open files, data), fuse_xattr.c (xattrs,
 * ioctl, statfs); helpers shared by them: fuse_common.c (fuse_int.h).
 */
#include "fuse_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/*
 * libfuse splices a request only when its pipe can hold the largest one: max_write plus a
 * 4 KiB header. With the kernel's default 256 pages per request that is 1 MiB + 4 KiB, one
 * page over the default /proc/sys/fs/pipe-max-size (1 MiB), so F_SETPIPE_SZ fails and
 * every request is read(2) into daemon memory, the copy a dying daemon can fail with EIO
 * (doc/restart.md, F11). Cap max_write so a request fits the largest pipe we may make.
 */
static void fit_splice_pipe(struct fuse_conn_info *conn)
{
	const unsigned int hdr = 4096;	/* libfuse's FUSE_BUFFER_HEADER_SIZE */
	unsigned long pipe_max = 0;
	unsigned int cap;
	FILE *f;

	f = fopen("/proc/sys/fs/pipe-max-size", "re");
	if (!f)
		return;
	if (fscanf(f, "%lu", &pipe_max) != 1)
		pipe_max = 0;
	fclose(f);
	if (pipe_max <= 2 * hdr)
		return;
	cap = (unsigned int)((pipe_max > UINT_MAX ? UINT_MAX : pipe_max) - hdr) & ~(hdr - 1);
	if (conn->max_write > cap) {
		conn->max_write = cap;
		log_debug("FUSE max_write %u: requests fit a %lu-byte pipe (spliced, not read)",
			  cap, pipe_max);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	staging_detach_hook = backing_drop;
	/* Truncation on open comes as a separate setattr: one path, where leases break. */
	fuse_unset_feature_flag(conn, FUSE_CAP_ATOMIC_O_TRUNC);
	fuse_set_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	/* Measurement only (doc/restart.md, F11): requests read(2), not spliced. */
	if (getenv("RDMAFS_NO_SPLICE_READ"))
		fuse_unset_feature_flag(conn, FUSE_CAP_SPLICE_READ);
	else
		fit_splice_pipe(conn);
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

static void *handle_resume(uint64_t fh, struct fh_rec *rec)
{
	/* Made for an OPEN or CREATE whose reply never went out: the kernel does not know
	 * it, and the resent request makes another one. Not made again: freed. */
	if (journal_orphan_fh(fh)) {
		log_info("restart: handle %#" PRIx64 " of an open never answered: freed", fh);
		return NULL;
	}
	if (rec->kind == FH_FILE)
		return file_resume(fh, rec);
	if (rec->kind == FH_DIR)
		return dir_resume(fh, rec);
	return NULL;
}

int fuse_ops_init(void)
{
	unsigned int n;
	int r = journal_init();

	if (!r)
		r = fh_table_init();
	if (r)
		return r;
	n = fh_resume(handle_resume);
	flock_resume_sweep();
	if (n)
		log_info("restart: %u open files and directories resumed", n);
	inode_for_each(backing_resume, NULL);
	return 0;
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

/* A node id the table does not know (freed before a restart): nothing to forget. */
static void forget_one(fuse_ino_t i, uint64_t nlookup)
{
	struct inode *ino = ino_of(i);

	if (ino)
		inode_forget(ino, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t i, uint64_t nlookup)
{
	forget_one(i, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t k = 0; k < count; k++)
		forget_one(forgets[k].ino, forgets[k].nlookup);
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

