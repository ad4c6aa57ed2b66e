// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-testhelper - small system-call drivers for the integration tests, for what the
 * shell cannot do: renameat2 flags, fsync with its errno, mmap stores, flock conflicts,
 * a writer that keeps writing. Prints "ok" or the errno name; exit 0 or 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rdmafs.h"

static int result(int r, const char *what)
{
	if (r == 0) {
		printf("ok\n");
		return 0;
	}
	/* strerrorname_np needs glibc 2.32: print the number too, tests match the name. */
	printf("%s %s\n", errno == ENOSPC ? "ENOSPC" : errno == EEXIST ? "EEXIST" :
	       errno == EWOULDBLOCK ? "EWOULDBLOCK" : errno == EIO ? "EIO" :
	       errno == EINVAL ? "EINVAL" : errno == ENOENT ? "ENOENT" : "E?", strerror(errno));
	fprintf(stderr, "testhelper: %s: %s\n", what, strerror(errno));
	return 1;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void pattern(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;

	for (size_t i = 0; i < n; i++)
		p[i] = xorshift(&s);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: rdmafs-testhelper CMD ARGS\n"
		"  rename noreplace|exchange OLD NEW\n"
		"  fsync FILE                 open O_WRONLY, fsync, print ok or the errno\n"
		"  fsync-ro FILE              open O_RDONLY, fsync, print ok or the errno\n"
		"  ioctl-flush FILE           open O_RDONLY, ioctl RDMAFS_IOC_FLUSH\n"
		"  pwrite FILE OFF LEN SEED   pattern bytes with write(2) (no fsync)\n"
		"  mmapwrite FILE OFF LEN SEED  pattern bytes stored through MAP_SHARED (no msync)\n"
		"  hold-mmapwrite FILE OFF LEN SEED SECS  the same, keep the mapping SECS seconds\n"
		"  flock FILE                 LOCK_EX on one open, LOCK_EX|LOCK_NB on another\n"
		"  writer FILE SIZE SECS      keep storing random 4 KiB runs through a mapping\n"
		"  create-excl FILE           open O_CREAT|O_EXCL|O_RDWR, write and read back, print\n"
		"                             ok, close when a line (or EOF) comes on stdin\n"
		"  setxattr-create FILE NAME VALUE  setxattr with XATTR_CREATE\n");
	return 2;
}

static int map_store(const char *path, off_t off, size_t len, uint64_t seed, unsigned hold)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	struct stat sb;
	unsigned char *m;

	if (fd < 0 || fstat(fd, &sb) < 0)
		return result(-1, path);
	if (sb.st_size < off + (off_t)len && ftruncate(fd, off + len) < 0)
		return result(-1, "ftruncate");
	m = mmap(NULL, off + len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return result(-1, "mmap");
	pattern(m + off, len, seed);
	if (hold)
		sleep(hold);
	munmap(m, off + len);
	close(fd);
	return result(0, path);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1], *path = argv[2];

	if (!strcmp(cmd, "rename") && argc == 5) {
		unsigned flags = !strcmp(argv[2], "noreplace") ? RENAME_NOREPLACE :
				 !strcmp(argv[2], "exchange") ? RENAME_EXCHANGE : 0;

		if (!flags)
			return usage();
		return result(renameat2(AT_FDCWD, argv[3], AT_FDCWD, argv[4], flags), "renameat2");
	}
	if (!strcmp(cmd, "create-excl") && argc == 3) {
		static const char data[] = "journal";
		char back[sizeof(data)] = "", line[16];
		int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);

		if (fd < 0)
			return result(-1, path);
		if (write(fd, data, sizeof(data)) != sizeof(data) ||
		    pread(fd, back, sizeof(back), 0) != sizeof(back))
			return result(-1, "write/pread");
		if (memcmp(back, data, sizeof(data))) {
			errno = EIO;
			return result(-1, "read back");
		}
		result(0, path);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			line[0] = 0;
		return result(close(fd), "close");
	}
	if (!strcmp(cmd, "setxattr-create") && argc == 5)
		return result(setxattr(path, argv[3], argv[4], strlen(argv[4]), XATTR_CREATE),
			      "setxattr");
	if (!strcmp(cmd, "fsync") && argc == 3) {
		int fd = open(path, O_WRONLY);

		if (fd < 0)
			return result(-1, path);
		int r = fsync(fd);

		if (r == 0)
			close(fd);	/* the close of a failed file may fail the same way */
		return result(r, "fsync");
	}
	if (!strcmp(cmd, "fsync-ro") && argc == 3) {	/* a read-only open's fsync */
		int fd = open(path, O_RDONLY);

		if (fd < 0)
			return result(-1, path);
		int r = fsync(fd);

		close(fd);
		return result(r, "fsync");
	}
	if (!strcmp(cmd, "ioctl-flush") && argc == 3) {
		int fd = open(path, O_RDONLY);

		if (fd < 0)
			return result(-1, path);
		return result(ioctl(fd, RDMAFS_IOC_FLUSH) < 0 ? -1 : 0, "ioctl RDMAFS_IOC_FLUSH");
	}
	if (!strcmp(cmd, "pwrite") && argc == 6) {
		off_t off = strtoll(argv[3], NULL, 0);
		size_t len = strtoull(argv[4], NULL, 0);
		unsigned char *buf = malloc(len + 1);
		int fd = open(path, O_WRONLY | O_CREAT, 0644);

		if (fd < 0)
			return result(-1, path);
		pattern(buf, len, strtoull(argv[5], NULL, 0));
		for (size_t done = 0; done < len;) {
			ssize_t n = pwrite(fd, buf + done, len - done, off + done);

			if (n <= 0)
				return result(-1, "pwrite");
			done += n;
		}
		free(buf);
		return result(close(fd), "close");
	}
	if (!strcmp(cmd, "mmapwrite") && argc == 6)
		return map_store(path, strtoll(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
				 strtoull(argv[5], NULL, 0), 0);
	if (!strcmp(cmd, "hold-mmapwrite") && argc == 7)
		return map_store(path, strtoll(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
				 strtoull(argv[5], NULL, 0), atoi(argv[6]));
	if (!strcmp(cmd, "flock") && argc == 3) {
		int a = open(path, O_RDONLY), b = open(path, O_RDONLY);

		if (a < 0 || b < 0)
			return result(-1, path);
		if (flock(a, LOCK_EX | LOCK_NB) < 0)
			return result(-1, "flock a");
		if (flock(b, LOCK_EX | LOCK_NB) == 0) {
			fprintf(stderr, "testhelper: second exclusive flock succeeded\n");
			return 1;
		}
		if (errno != EWOULDBLOCK)
			return result(-1, "flock b");
		flock(a, LOCK_UN);
		return result(flock(b, LOCK_EX | LOCK_NB), "flock b after unlock");
	}
	if (!strcmp(cmd, "writer") && argc == 5) {
		size_t size = strtoull(argv[3], NULL, 0);
		time_t end = time(NULL) + atoi(argv[4]);
		uint64_t s = 12345, rounds = 0;
		int fd = open(path, O_RDWR | O_CREAT, 0644);
		unsigned char *m;

		if (fd < 0 || ftruncate(fd, size) < 0)
			return result(-1, path);
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			return result(-1, "mmap");
		while (time(NULL) < end) {
			size_t off = xorshift(&s) % (size / 4096) * 4096;

			pattern(m + off, 4096, xorshift(&s));
			/* and a few scattered bytes, a write that straddles chunks */
			m[xorshift(&s) % size] = xorshift(&s);
			rounds++;
		}
		munmap(m, size);
		close(fd);
		fprintf(stderr, "testhelper: writer did %" PRIu64 " writes\n", rounds);
		return result(0, path);
	}
	return usage();
}
