// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_dir.c - FUSE ops on names and directories: readlink, mknod, mkdir, symlink, link,
 * unlink, rmdir, rename, opendir/readdir; and acting as the caller (fsuid, fsgid, groups)
 * to create objects that are theirs from birth, also for CREATE (fuse_file.c).
 */
#include "fuse_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/fuse.h>


/* One per open directory; fi->fh is its slot in the handle table (fuse_fh.c). */
struct dirh {
	DIR *dp;		/* NULL: resumed, opened again at its first use */
	off_t offset;
	struct dirent *entry;
	uint64_t fh;
};

void *dir_resume(uint64_t fh, struct fh_rec *rec)
{
	struct dirh *d;

	if (!inode_get(rec->nodeid))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fh = fh;
	d->offset = -1;	/* the first readdir seeks to the kernel's offset */
	return d;
}

/* The directory handle of @fi, open; NULL (errno) when stale or not reopened. A resumed
 * one is opened by handle again: the offsets of ext4, xfs and btrfs stay valid. */
static struct dirh *dirh_of(fuse_ino_t i, struct fuse_file_info *fi)
{
	struct dirh *d = fh_get(fi->fh, FH_DIR);
	struct inode *ino = ino_of(i);
	int fd;

	if (!d || !ino) {
		errno = EBADF;
		return NULL;
	}
	if (d->dp)
		return d;
	/* The kernel sends one readdir of a file at a time (f_pos lock). */
	fd = inode_open(ino, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		close(fd);
		return NULL;
	}
	return d;
}
void op_readlink(fuse_req_t req, fuse_ino_t i)
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

static int make_as_caller(fuse_req_t req, struct inode *parent, const char *name,
			  enum mk_kind kind, mode_t mode, dev_t rdev, const char *link);

/* @redo: resent, begun by a dead daemon (journal_begin()): EEXIST is its own work. */
static void reply_new_entry(fuse_req_t req, struct inode *parent, const char *name, int r,
			    bool redo)
{
	struct fuse_entry_param e;

	if (redo && r == -EEXIST)
		r = 0;
	if (!r)
		r = do_lookup(parent, name, &e);
	if (r)
		jreply_err(req, -r);
	else
		jreply_entry(req, &e);
}

void op_mknod(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode, dev_t rdev)
{
	struct inode *parent = ino_of(p);
	enum journal_start j = journal_begin(req, FUSE_MKNOD);
	int r;

	if (j == JOURNAL_REPLAYED)
		return;
	r = make_as_caller(req, parent, name, MK_NOD, mode, rdev, NULL);
	reply_new_entry(req, parent, name, r, j == JOURNAL_REDO);
}

void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode)
{
	struct inode *parent = ino_of(p);
	enum journal_start j = journal_begin(req, FUSE_MKDIR);
	int r;

	if (j == JOURNAL_REPLAYED)
		return;
	r = make_as_caller(req, parent, name, MK_DIR, mode, 0, NULL);
	reply_new_entry(req, parent, name, r, j == JOURNAL_REDO);
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t p, const char *name)
{
	struct inode *parent = ino_of(p);
	enum journal_start j = journal_begin(req, FUSE_SYMLINK);
	int r;

	if (j == JOURNAL_REPLAYED)
		return;
	r = make_as_caller(req, parent, name, MK_SYMLINK, 0, 0, link);
	reply_new_entry(req, parent, name, r, j == JOURNAL_REDO);
}

void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t newparent, const char *newname)
{
	struct inode *ino = ino_of(i), *np = ino_of(newparent);
	struct fuse_entry_param e;
	char path[64];
	enum journal_start j = journal_begin(req, FUSE_LINK);
	int fd, nfd, r = 0;

	if (j == JOURNAL_REPLAYED)
		return;
	fd = ifd(ino);
	nfd = fd < 0 ? fd : ifd(np);
	if (fd < 0 || nfd < 0)
		r = fd < 0 ? fd : nfd;
	else if (linkat(AT_FDCWD, proc_fd_path(path, fd), nfd, newname, AT_SYMLINK_FOLLOW) < 0)
		r = -errno;
	if (nfd >= 0)
		inode_fd_put(np);
	if (fd >= 0)
		inode_fd_put(ino);
	if (j == JOURNAL_REDO && r == -EEXIST)
		r = 0;	/* linked by the dead daemon (a name made meanwhile: the lookup tells) */
	if (!r)
		note_own_change(ino);
	if (!r)
		r = do_lookup(ino_of(newparent), newname, &e);
	if (r)
		jreply_err(req, -r);
	else
		jreply_entry(req, &e);
}

/* @ino's staging if nothing but a name reaches it: no open, lease or writable map fd
 * (ino->lock held); else NULL. */
static struct staged *unused_staging_locked(struct inode *ino)
{
	struct staged *st = ino->st;
	bool unused;

	if (!st || ino->nopen || lease_count(st))
		return NULL;
	pthread_mutex_lock(&st->lock);
	unused = !st->may_change;
	pthread_mutex_unlock(&st->lock);
	return unused ? st : NULL;
}

/* Keep @ino's fd for good: it loses its last name while open or staged. */
static void keep_fd_of_deleted(struct inode *ino)
{
	if (inode_keep_fd(ino))
		log_warn("unlink ino=%" PRIu64 " while open: its fd could not be kept; its opens "
			 "may see ESTALE", (uint64_t)ino->src_ino);
}

/*
 * @name in @pfd is about to lose its last link: if it is open, keep its fd, since a
 * deleted file cannot be reopened by handle (its opens still stat it, its staging still
 * commits to it). A staged file nothing uses is dropped after the unlink
 * (drop_if_gone()): *@tmp holds its fd until then (inode_fd(), a use, not kept for ever),
 * which spares the keep and its store round trips (restart) per deleted file.
 */
static struct inode *keep_if_open(int pfd, const char *name, bool *tmp)
{
	struct inode *ino;
	struct stat sb;
	bool unused, keep;

	*tmp = false;
	if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || sb.st_nlink > 1 ||
	    S_ISDIR(sb.st_mode))
		return NULL;
	ino = inode_find(sb.st_dev, sb.st_ino);
	if (!ino)
		return NULL;
	pthread_mutex_lock(&ino->lock);
	unused = unused_staging_locked(ino) != NULL;
	keep = ino->nopen || ino->st;
	pthread_mutex_unlock(&ino->lock);
	if (unused && (*tmp = inode_fd(ino) >= 0))
		return ino;
	if (keep)
		keep_fd_of_deleted(ino);
	return ino;	/* a reference: for drop_if_gone(), then inode_unref() */
}

/*
 * @ino (a reference, dropped here; @tmp: and a use of its fd) lost a name if @unlinked.
 * If that was its last one and nothing can reach its staging any more
 * (unused_staging_locked()), the staging is dropped without a commit: no one can read the
 * file again, and the backing filesystem frees an unlinked file's blocks at its last close
 * anyway. Saves the periodic pass a write and an fdatasync per deleted file (benchtool
 * stress deletes most files it makes). The link count is read after the unlink: a link
 * made meanwhile keeps the staging. A mapping that outlived its close keeps the memfd
 * itself; it sees the same pages. A file opened between keep_if_open() and the unlink
 * keeps its fd now.
 */
static void drop_if_gone(struct inode *ino, bool tmp, bool unlinked)
{
	struct staged *st;
	struct stat sb;
	bool idle;
	int fd;

	if (!ino)
		return;
	if (!unlinked)
		goto out;
	/* keep_if_open() found one link: the last (a link made since keeps it reachable,
	 * so its reopens do not fail and this flag is not looked at). */
	__atomic_store_n(&ino->gone, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&ino->lock);
	st = unused_staging_locked(ino);
	idle = st != NULL;
	if (idle) {
		fd = inode_fd(ino);
		idle = fd >= 0 && fstat(fd, &sb) == 0 && sb.st_nlink == 0;
		if (fd >= 0)
			inode_fd_put(ino);
	}
	if (idle) {
		log_debug("dropped ino=%" PRIu64 " (unlinked, unused): not committed",
			  (uint64_t)ino->src_ino);
		staging_drop(st);
	} else if (tmp && (ino->nopen || ino->st)) {
		keep_fd_of_deleted(ino);
	}
	pthread_mutex_unlock(&ino->lock);
out:
	if (tmp)
		inode_fd_put(ino);
	inode_unref(ino);
}

void op_unlink(fuse_req_t req, fuse_ino_t p, const char *name)
{
	enum journal_start j = journal_begin(req, FUSE_UNLINK);
	struct inode *ino;
	bool tmp;
	int fd, e;

	if (j == JOURNAL_REPLAYED)
		return;
	fd = ifd(ino_of(p));
	if (fd < 0) {
		jreply_err(req, -fd);
		return;
	}
	ino = keep_if_open(fd, name, &tmp);
	e = unlinkat(fd, name, 0) < 0 ? errno : 0;
	inode_fd_put(ino_of(p));
	if (j == JOURNAL_REDO && e == ENOENT)
		e = 0;	/* unlinked by the dead daemon */
	jreply_err(req, e);
	drop_if_gone(ino, tmp, !e);
}

void op_rmdir(fuse_req_t req, fuse_ino_t p, const char *name)
{
	enum journal_start j = journal_begin(req, FUSE_RMDIR);
	int fd, e;

	if (j == JOURNAL_REPLAYED)
		return;
	fd = ifd(ino_of(p));
	if (fd < 0) {
		jreply_err(req, -fd);
		return;
	}
	e = unlinkat(fd, name, AT_REMOVEDIR) < 0 ? errno : 0;
	inode_fd_put(ino_of(p));
	if (j == JOURNAL_REDO && e == ENOENT)
		e = 0;	/* removed by the dead daemon */
	jreply_err(req, e);
}

void op_rename(fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np,
	       const char *newname, unsigned int flags)
{
	enum journal_start j = journal_begin(req, FUSE_RENAME2);
	struct inode *old = NULL;
	bool tmp = false;
	struct stat sb;
	int fd, nfd, e;

	if (j == JOURNAL_REPLAYED)
		return;
	fd = ifd(ino_of(p));
	nfd = fd < 0 ? fd : ifd(ino_of(np));
	if (fd < 0 || nfd < 0) {
		if (fd >= 0)
			inode_fd_put(ino_of(p));
		jreply_err(req, -(fd < 0 ? fd : nfd));
		return;
	}
	/* A new name replaces nothing: no need to look for an open file there first. Any
	 * failure (it exists, the filesystem has no RENAME_NOREPLACE) takes the full path. */
	if (!flags && renameat2(fd, name, nfd, newname, RENAME_NOREPLACE) == 0) {
		e = 0;
	} else {
		if (!(flags & RENAME_EXCHANGE))
			old = keep_if_open(nfd, newname, &tmp);	/* replaced */
		e = renameat2(fd, name, nfd, newname, flags) < 0 ? errno : 0;
	}
	/* Renamed by the dead daemon: the source is gone, the target is there. */
	if (j == JOURNAL_REDO && e == ENOENT && !(flags & RENAME_EXCHANGE) &&
	    fstatat(nfd, newname, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		e = 0;
	if (!e)
		note_own_change_at(nfd, newname);
	if (!e && (flags & RENAME_EXCHANGE))
		note_own_change_at(fd, name);
	inode_fd_put(ino_of(np));
	inode_fd_put(ino_of(p));
	jreply_err(req, e);
	drop_if_gone(old, tmp, !e);
}

void op_opendir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct dirh *d;
	int fd;

	if (journal_begin(req, FUSE_OPENDIR) == JOURNAL_REPLAYED)
		return;
	d = calloc(1, sizeof(*d));
	if (!d) {
		jreply_err(req, ENOMEM);
		return;
	}
	d->fh = fh_reserve();
	if (!d->fh) {
		free(d);
		jreply_err(req, ENFILE);
		return;
	}
	journal_note_fh(d->fh);
	fd = inode_open(ino_of(i), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		errno = -fd;
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		fh_release(d->fh);
		free(d);
		jreply_err(req, e);
		return;
	}
	fh_rec(d->fh)->nodeid = i;
	fh_rec(d->fh)->kind = FH_DIR;
	fh_publish(d->fh, d);
	fi->fh = d->fh;
	jreply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t i, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct dirh *d = dirh_of(i, fi);
	struct inode *dir = ino_of(i);
	char *buf = d ? calloc(1, size) : NULL, *p = buf;
	size_t rem = size;
	int err = 0;

	if (!d) {
		fuse_reply_err(req, errno);
		return;
	}
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

void op_readdir(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, i, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, i, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct dirh *d = fh_get(fi->fh, FH_DIR);

	if (d) {	/* else resent, released before a restart */
		fh_release(d->fh);
		if (d->dp)
			closedir(d->dp);
		free(d);
	}
	fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi)
{
	struct dirh *d = dirh_of(i, fi);
	int r;

	if (!d) {
		fuse_reply_err(req, errno);
		return;
	}
	r = datasync ? fdatasync(dirfd(d->dp)) : fsync(dirfd(d->dp));
	fuse_reply_err(req, r < 0 ? errno : 0);
}

/* What cred_enter() changed in this thread, for cred_leave(). */
struct saved_cred {
	bool switched;	/* false: the caller is the daemon's own identity (as_self()) */
};

/* The daemon's own identity, read once: its threads change only their fs ids and groups,
 * and always put them back (cred_leave()). */
static struct {
	pthread_once_t once;
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;	/* -errno if they could not be read */
	bool all_caps;	/* CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID */
} self = { .once = PTHREAD_ONCE_INIT };

static void self_init(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
	uint32_t need = 1u << CAP_DAC_OVERRIDE | 1u << CAP_DAC_READ_SEARCH |
			1u << CAP_FOWNER | 1u << CAP_FSETID;	/* all below 32 */

	self.uid = geteuid();
	self.gid = getegid();
	self.ngroups = getgroups(ARRAY_SIZE(self.groups), self.groups);
	if (self.ngroups < 0)
		self.ngroups = -errno;
	self.all_caps = syscall(SYS_capget, &hdr, data) == 0 &&
			(data[0].effective & need) == need;
}

/*
 * A caller with the daemon's own uid and gid, the daemon holding the capabilities that
 * override permission bits and the set-gid rules (root, usually): acting as the caller
 * changes nothing then. The fs ids would be set to what they are, and the supplementary
 * groups matter only where those capabilities do not apply (a new object's group is the
 * fsgid or the set-gid parent's; the set-gid bit of a new file is kept with CAP_FSETID;
 * access is granted by CAP_DAC_*). The kernel has checked the caller's own permissions
 * already (default_permissions). Saves reading the caller's groups from /proc and
 * seventeen system calls per create, mkdir, mknod or symlink.
 */
static bool as_self(const struct fuse_ctx *ctx)
{
	pthread_once(&self.once, self_init);
	return self.all_caps && ctx->uid == self.uid && ctx->gid == self.gid;
}

static void cred_leave(const struct saved_cred *sv);

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
	int n;

	sv->switched = false;
	if (as_self(ctx))
		return 0;
	if (self.ngroups < 0)
		return self.ngroups;
	n = fuse_req_getgroups(req, ARRAY_SIZE(groups), groups);
	if (n < 0 || n > (int)ARRAY_SIZE(groups))
		n = 0;
	if (syscall(SYS_setgroups, n, groups) < 0)
		return -errno;
	sv->switched = true;
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	if ((uid_t)setfsuid(-1) == ctx->uid && (gid_t)setfsgid(-1) == ctx->gid)
		return 0;
	log_err("act as uid %u gid %u: not taken", (unsigned)ctx->uid, (unsigned)ctx->gid);
	cred_leave(sv);
	return -EPERM;
}

static void cred_leave(const struct saved_cred *sv)
{
	if (!sv->switched)
		return;
	setfsuid(self.uid);
	setfsgid(self.gid);
	if (syscall(SYS_setgroups, self.ngroups, self.groups) < 0)
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
 * A new file's own descriptor (write-only) goes to *@wfd if not NULL, else it is closed.
 */
int create_as_caller(fuse_req_t req, struct inode *parent, int dirfd, const char *name,
		     mode_t mode, int flags, bool *created, struct stat *sb, int *wfd)
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
	if (fd < 0 && errno == EMFILE) {
		inode_fd_reclaim();	/* idle cached O_PATH fds are given back */
		fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
			    mode);
	}
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
	if (r >= 0 && *created && wfd)
		*wfd = fd;	/* writable, ours: the stager lock's fd (staging_create()) */
	else
		close(fd);
	return r;
}

/*
 * A CREATE that made @name and then failed: remove it, as the caller (who made it), if the
 * name still is the file made (@sb), so that a failed create leaves nothing behind.
 */
void undo_create(fuse_req_t req, int dirfd, const char *name, const struct stat *sb)
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

