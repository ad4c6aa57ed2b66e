// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_client.c - drives every librdmafs call for the ctl_* integration tests and prints
 * results in a form the scripts check: "ok ..." or "err NAME" (the errno name), exit 0/1.
 *
 *   ctl-client flush FILE [MODE]         MODE: r, w, rw (open mode, default w)
 *   ctl-client flush-all PATH
 *   ctl-client stat FILE [MODE]           prints size staged changed opens leases
 *   ctl-client mount-stat PATH
 *   ctl-client map FILE MODE PROT [BYTE]  PROT r or rw; rw writes BYTE over the whole map
 *   ctl-client lease FILE [SIGNO [MODE]]  holds the lease; prints "break" when broken
 *   ctl-client lease-list PATH|FILE
 *   ctl-client lease-break FILE
 *   ctl-client evict PATH
 *   ctl-client ioctl-flush FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdmafs.h"

static int result(int r)
{
	if (r < 0) {
		printf("err %s\n", strerrorname_np(-r) ? strerrorname_np(-r) : "?");
		return 1;
	}
	return 0;
}

static int open_mode(const char *file, const char *mode)
{
	int flags = !mode || !strcmp(mode, "w") ? O_WRONLY : !strcmp(mode, "rw") ? O_RDWR : O_RDONLY;
	int fd = open(file, flags | O_CLOEXEC);

	if (fd < 0) {
		printf("err open %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *arg = argc > 2 ? argv[2] : ".";
	const char *m = argc > 3 ? argv[3] : NULL;
	struct rdmafs_stat st;
	struct rdmafs_report rep;
	int fd, r;

	if (!strcmp(cmd, "flush")) {
		fd = open_mode(arg, m);
		r = rdmafs_flush(fd);
		if (!r)
			printf("ok\n");
		return result(r);
	}
	if (!strcmp(cmd, "ioctl-flush")) {
		fd = open_mode(arg, "w");
		r = ioctl(fd, RDMAFS_IOC_FLUSH) < 0 ? -errno : 0;
		if (!r)
			printf("ok\n");
		return result(r);
	}
	if (!strcmp(cmd, "flush-all")) {
		r = rdmafs_flush_all(arg);
		if (!r)
			printf("ok\n");
		return result(r);
	}
	if (!strcmp(cmd, "stat") || !strcmp(cmd, "mount-stat")) {
		if (!strcmp(cmd, "stat")) {
			fd = open_mode(arg, m ? m : "r");
			r = rdmafs_stat(fd, &st);
		} else {
			r = rdmafs_mount_stat(arg, &st);
		}
		if (!r)
			printf("ok size=%" PRIu64 " staged=%" PRIu64 " changed=%" PRIu64
			       " opens=%u leases=%u files=%u flags=%#x\n", st.size, st.staged_bytes,
			       st.changed_bytes, st.opens, st.leases, st.files, st.flags);
		return result(r);
	}
	if (!strcmp(cmd, "map")) {
		const char *prot = argc > 4 ? argv[4] : "r";
		int p = !strcmp(prot, "rw") ? PROT_READ | PROT_WRITE : PROT_READ;
		void *addr;
		size_t len;
		struct stat sb;

		fd = open_mode(arg, m ? m : "r");
		r = rdmafs_map(fd, p, &addr, &len);
		if (r)
			return result(r);
		fstat(fd, &sb);
		if (p & PROT_WRITE && argc > 5)
			memset(addr, atoi(argv[5]), sb.st_size);
		printf("ok len=%zu first=%d\n", len, ((unsigned char *)addr)[0]);
		return result(rdmafs_unmap(addr, len));
	}
	if (!strcmp(cmd, "lease")) {
		struct pollfd pfd;
		char buf[64];

		fd = open_mode(arg, argc > 4 ? argv[4] : "r");
		r = rdmafs_lease(fd, argc > 3 ? atoi(argv[3]) : 0);
		if (r < 0)
			return result(r);
		close(fd);
		printf("held\n");
		fflush(stdout);
		pfd = (struct pollfd){ .fd = r, .events = POLLIN };
		poll(&pfd, 1, 30000);
		printf("%s\n", read(r, buf, sizeof(buf)) > 0 ? "break" : "eof");
		fflush(stdout);
		close(r);
		return 0;
	}
	if (!strcmp(cmd, "lease-list")) {
		struct rdmafs_lease_info *v;
		struct stat sb;

		fd = stat(arg, &sb) == 0 && !S_ISDIR(sb.st_mode) ? open_mode(arg, "r") : -1;
		r = rdmafs_lease_list(arg, fd, &v);
		if (r < 0)
			return result(r);
		printf("ok %d\n", r);
		for (int i = 0; i < r; i++)
			printf("lease pid=%d path=%s\n", v[i].pid, v[i].path);
		free(v);
		return 0;
	}
	if (!strcmp(cmd, "lease-break")) {
		fd = open_mode(arg, "r");
		r = rdmafs_lease_break(fd);
		if (!r)
			printf("ok\n");
		return result(r);
	}
	if (!strcmp(cmd, "evict")) {
		r = rdmafs_evict(arg, &rep);
		if (!r)
			printf("ok evicted=%" PRIu64 " of %" PRIu64 "\n", rep.files_done,
			       rep.files_total);
		return result(r);
	}
	fprintf(stderr, "usage: see the comment at the top of ctl_client.c\n");
	return 2;
}
