// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_auth.c - owns the identity of the mount control clients talk about (mountpoint,
 * device, owner) and the authentication of their requests: peer credentials and what the
 * file descriptor a client sent proves (an open of ours, its access mode, its staging).
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ctl_auth.h"

static struct {
	/* Set once by ctl_auth_init() before the control threads start; read-only after. */
	char mountpoint[PATH_MAX];
	size_t mnt_len;
	dev_t mnt_dev;
	uid_t owner;
} mnt;

void ctl_auth_init(const char *mountpoint, dev_t dev)
{
	snprintf(mnt.mountpoint, sizeof(mnt.mountpoint), "%s", mountpoint);
	mnt.mnt_len = strlen(mnt.mountpoint);
	mnt.mnt_dev = dev;
	mnt.owner = getuid();
}

bool ctl_peer_is_admin(const struct ucred *cred)
{
	return cred->uid == 0 || cred->uid == mnt.owner;
}

bool ctl_peer_may_write(const struct ucred *cred, const struct ctl_target *t)
{
	return ctl_peer_is_admin(cred) || t->acc != O_RDONLY ||
	       (t->bfd >= 0 && t->uid == cred->uid);
}

void ctl_target_done(struct ctl_target *t)
{
	if (t->bfd >= 0)
		close(t->bfd);
	if (t->st)
		staging_put(t->st);
	t->bfd = -1;
	t->st = NULL;
}

/*
 * Check that @fd is a regular file open on this mount (not O_PATH) and find its backing
 * file and staging. The kernel's cached attributes are used (AT_STATX_DONT_SYNC) so a
 * file of another, hung FUSE server cannot block us; the path comes from the dentry.
 */
int ctl_target_resolve(int fd, struct ctl_target *t)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	char proc[64], path[PATH_MAX];
	struct statx stx;
	struct stat bst;
	struct staged **v;
	size_t n, matches = 0;
	ssize_t len;
	int fl;

	memset(t, 0, sizeof(*t));
	t->bfd = -1;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_SIZE,
		  &stx) < 0)
		return -errno;
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != mnt.mnt_dev)
		return -EXDEV;	/* not a file of this mount */
	if (!S_ISREG(stx.stx_mode))
		return S_ISDIR(stx.stx_mode) ? -EISDIR : -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fl & O_PATH)
		return -EBADF;	/* proves no access */
	t->acc = fl & O_ACCMODE;
	t->ino = stx.stx_ino;
	t->size = stx.stx_size;
	proc_fd_path(proc, fd);
	len = readlink(proc, path, sizeof(path) - 1);
	if (len > 0) {
		path[len] = 0;
		if ((size_t)len > mnt.mnt_len + 1 && !strncmp(path, mnt.mountpoint, mnt.mnt_len) &&
		    path[mnt.mnt_len] == '/' &&
		    !(len > 10 && !strcmp(path + len - 10, " (deleted)")))
			snprintf(t->rel, sizeof(t->rel), "%s", path + mnt.mnt_len + 1);
	}
	if (t->rel[0]) {
		/* Backing twin of the path; the inode number check catches a rename since. */
		t->bfd = syscall(SYS_openat2, inode_root()->fd, t->rel, &how, sizeof(how));
		if (t->bfd >= 0 && (fstat(t->bfd, &bst) < 0 || bst.st_ino != t->ino)) {
			close(t->bfd);
			t->bfd = -1;
		}
		if (t->bfd >= 0) {
			t->bdev = bst.st_dev;
			t->uid = bst.st_uid;
		}
	}
	/* The mount serves one filesystem (fuse_ops refuses others): its device is the
	 * source's whenever the path is unknown (unlinked, renamed). */
	if (!t->bdev)
		t->bdev = inode_root()->src_dev;
	v = staging_get_all(&n);
	for (size_t i = 0; v && i < n; i++) {
		struct inode *ino = v[i]->ino;

		if (ino->src_ino != t->ino || ino->src_dev != t->bdev)
			continue;
		if (!matches++) {
			t->st = v[i];
			staging_get(t->st);
		}
	}
	staging_put_all(v, n);
	if (matches > 1) {
		/* Cannot happen (one staging per inode); never guess between two. */
		ctl_target_done(t);
		return -ESTALE;
	}
	return 0;
}
