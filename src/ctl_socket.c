// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_socket.c - owns the control socket's name: RDMAFS_RUNDIR/<escaped mountpoint>@<dev>.sock
 * in a run directory only we can write, a dead daemon's socket taken over, a live one never,
 * and at exit the name removed only if it is still ours.
 */
#include "rdmafsd.h"
#include "restart.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_socket.h"
#include "rdmafs/proto.h"

static struct {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t ino;			/* of our socket once bound, else 0 */
} sock;

/*
 * RDMAFS_RUNDIR as we need it: a directory of ours that no one else can write (clients
 * send their files to whatever listens in it). Created 0755 if missing; never trusted as
 * found (a symlink, another owner, group or world write is refused).
 */
static int rundir_check(void)
{
	struct stat sb;
	int r;

	if (mkdir(RDMAFS_RUNDIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(RDMAFS_RUNDIR, &sb) < 0)
		return -errno;
	r = rdmafs_proto_rundir_trusted(&sb, geteuid());
	if (r)
		log_err("ctl: %s (mode %04o, uid %u) is not a directory of uid %u that only it "
			"can write: no control socket", RDMAFS_RUNDIR, (unsigned)(sb.st_mode & 07777),
			(unsigned)sb.st_uid, (unsigned)geteuid());
	return r;
}

/*
 * A socket already at our path: one whose daemon died is removed; a live one (it accepts
 * a connection) is never taken over. 0 if the name is free now, or -errno.
 */
static int sock_path_free(const char *path, const struct sockaddr_un *sa)
{
	struct stat sb;
	int fd, r;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? errno : 0;
	close(fd);
	if (r != ECONNREFUSED && r != ENOENT)
		return -EADDRINUSE;	/* accepted, or a full backlog: alive */
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int ctl_socket_listen(const char *mountpoint, dev_t dev)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, r;

	r = rdmafs_proto_sock_path(RDMAFS_RUNDIR, mountpoint, major(dev), minor(dev),
				   sock.path, sizeof(sock.path));
	if (r)
		return r;
	/* An earlier generation's listener (restart): connects made meanwhile wait in it. */
	fd = restart_take(SUP_TAG(SUP_K_CTLLISTEN, 0));
	if (fd >= 0) {
		if (stat(sock.path, &sb) == 0 && S_ISSOCK(sb.st_mode))
			sock.ino = sb.st_ino;
		return fd;
	}
	r = rundir_check();
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, sock.path, strlen(sock.path) + 1);
	r = sock_path_free(sock.path, &sa);
	if (r) {
		close(fd);
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sock.path, 0666) < 0 ||	/* peers are checked per request */
	    listen(fd, 64) < 0 || stat(sock.path, &sb) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	sock.ino = sb.st_ino;
	r = restart_put(SUP_TAG(SUP_K_CTLLISTEN, 0), fd);
	if (r)
		log_warn("ctl: listener not kept for a restart: %s (rdmafsctl fails during one)",
			 strerror(-r));
	return fd;
}

const char *ctl_socket_path(void)
{
	return sock.path;
}

void ctl_socket_remove(void)
{
	struct stat sb;

	/* Only our own socket: a newer daemon may have taken the name. */
	if (sock.ino && stat(sock.path, &sb) == 0 && sb.st_ino == sock.ino)
		unlink(sock.path);
	sock.ino = 0;
}
