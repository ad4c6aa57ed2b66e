// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * map_fd.c - a hostile map holder for the map_holder test: asks the daemon for a writable
 * map of FILE over the control socket SOCK (as rdmafs_map does) but keeps the staging fd
 * it receives, then does ACTIONs with it, printing "ok" or "err NAME" for each:
 *
 *   map-fd SOCK FILE ACTION...   ACTION: shrink=N grow=N seal=seal|write|future|grow|shrink
 *                                        hold (wait for stdin to close)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rdmafs/proto.h"

static int fail(const char *what, int e)
{
	printf("err %s %s\n", what, strerrorname_np(e) ? strerrorname_np(e) : "?");
	return 1;
}

/* The staging fd of a writable MAP of @fd, or -errno. */
static int get_map_fd(const char *sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8))) = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char buf[RDMAFS_MSG_MAX];
	struct rdmafs_req req;
	struct rdmafs_reply rep;
	struct iovec iov = { .iov_base = &req };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int s, got = -1;
	ssize_t n;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	iov.iov_len = rdmafs_proto_encode_req(&req, RDMAFS_OP_MAP, 1, 0,
					      RDMAFS_MAP_READ | RDMAFS_MAP_WRITE);
	rdmafs_proto_attach_fd(&msg, cbuf, sizeof(cbuf), fd);
	if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
		return -errno;
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
	if (n < (ssize_t)sizeof(rep))
		return n < 0 ? -errno : -EBADMSG;
	memcpy(&rep, buf, sizeof(rep));
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	close(s);
	if (rep.error)
		return rep.error;
	return got >= 0 ? got : -EBADMSG;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int seal; } seals[] = {
		{ "seal", F_SEAL_SEAL }, { "write", F_SEAL_WRITE },
		{ "future", F_SEAL_FUTURE_WRITE }, { "grow", F_SEAL_GROW },
		{ "shrink", F_SEAL_SHRINK },
	};
	int fd, mfd, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: map-fd SOCK FILE ACTION...\n");
		return 2;
	}
	fd = open(argv[2], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("open", errno);
	mfd = get_map_fd(argv[1], fd);
	if (mfd < 0)
		return fail("map", -mfd);
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		int r = -EINVAL;

		if (!strncmp(a, "shrink=", 7) || !strncmp(a, "grow=", 5)) {
			r = ftruncate(mfd, strtoull(strchr(a, '=') + 1, NULL, 0)) < 0 ? -errno : 0;
		} else if (!strncmp(a, "seal=", 5)) {
			for (size_t k = 0; k < sizeof(seals) / sizeof(seals[0]); k++)
				if (!strcmp(a + 5, seals[k].name))
					r = fcntl(mfd, F_ADD_SEALS, seals[k].seal) < 0 ? -errno : 0;
		} else if (!strcmp(a, "hold")) {
			char c;

			printf("holding\n");
			fflush(stdout);
			while (read(0, &c, 1) > 0)
				;
			r = 0;
		}
		if (r) {
			rc |= fail(a, -r);
		} else {
			printf("ok %s\n", a);
		}
		fflush(stdout);
	}
	close(mfd);
	close(fd);
	return rc;
}
