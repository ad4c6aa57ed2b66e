/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_auth.h - who a control client is and what the descriptor it sent proves (ctl_auth.c):
 * the checks every request that names a file rests on.
 */
#ifndef RDMAFS_CTL_AUTH_H
#define RDMAFS_CTL_AUTH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct staged;

/* A client's file descriptor resolved to our objects (ctl_target_resolve()). */
struct ctl_target {
	int acc;			/* O_RDONLY, O_WRONLY or O_RDWR of the client's open */
	uint64_t size;			/* as the kernel caches it */
	ino_t ino;
	dev_t bdev;			/* backing device, 0 if the path is unknown */
	int bfd;			/* O_PATH on the backing file, or -1; owned */
	struct staged *st;		/* staging of the file with a reference, or NULL */
	char rel[PATH_MAX];		/* mount-relative path, "" if unknown */
	uid_t uid;			/* owner of the backing file, if bfd >= 0 */
};

/*
 * The mount whose files clients may name: @mountpoint (absolute, no trailing '/') on the
 * FUSE device @dev; its owner is our real uid. Before any request.
 */
void ctl_auth_init(const char *mountpoint, dev_t dev);
/* Root or the mount's owner: may act on the whole mount and see other users' files. */
bool ctl_peer_is_admin(const struct ucred *cred);
/* May @cred act on the life of @t's file (lease, scan under its locks)? Write access or owner. */
bool ctl_peer_may_write(const struct ucred *cred, const struct ctl_target *t);
/*
 * Check that @fd is a regular file open on this mount (not O_PATH) and find its backing
 * file and staging. 0, or -errno (-EXDEV another mount, -EISDIR, -EINVAL, -EBADF for
 * O_PATH, -ESTALE). On 0, release with ctl_target_done().
 */
int ctl_target_resolve(int fd, struct ctl_target *t);
/* Close and put what ctl_target_resolve() took; idempotent. */
void ctl_target_done(struct ctl_target *t);

#endif
