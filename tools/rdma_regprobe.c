// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdma_regprobe: maps a file (or a memfd, or anonymous memory) and tries ibv_reg_mr on
 * it, printing success or the errno: shows which mappings the kernel lets a NIC pin.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdma_common.h"

enum kind { K_FILE, K_MEMFD, K_ANON };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rdma_regprobe [OPTIONS] FILE\n"
		"       rdma_regprobe [OPTIONS] --memfd | --anon\n"
		"\n"
		"Maps FILE (MAP_SHARED; created or grown to SIZE if needed), a memfd or anonymous\n"
		"memory, and registers the mapping with ibv_reg_mr for remote writes (LOCAL_WRITE,\n"
		"REMOTE_WRITE, REMOTE_READ: a writable long-term pin). Prints \"ok\" or the error,\n"
		"e.g. \"failed: Bad address (EFAULT)\" for a file on ext4 since Linux 6.5.\n"
		"\n"
		"  -s, --size SIZE     bytes to map (K, M, G suffixes; default FILE's size, or 1M)\n"
		"      --memfd         a memfd (shmem) instead of FILE\n"
		"      --anon          anonymous memory instead of FILE\n"
		"      --read-only     map PROT_READ and register without write access\n"
		"  -d, --dev NAME      RDMA device (default: the first one)\n"
		"  -e, --expect WHAT   ok, or an errno name (EFAULT): exit 0 if that is the outcome\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 registered (or the --expect outcome), 1 not, 2 usage or set-up\n"
		"error, 77 no RDMA device.\n");
}

static const char *errno_name(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "?";
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "memfd", no_argument, NULL, 'M' },
		{ "anon", no_argument, NULL, 'A' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "dev", required_argument, NULL, 'd' },
		{ "expect", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev_name = NULL, *expect = NULL, *path = NULL, *outcome;
	struct ibv_device **devs, *dev = NULL;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	enum kind kind = K_FILE;
	uint64_t size = 0;
	bool ro = false;
	int c, fd = -1, ndev, i, err, prot, access, rc;
	struct stat st;
	void *map;

	rt_prog = "rdma_regprobe";
	while ((c = getopt_long(argc, argv, "s:d:e:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (rt_parse_size(optarg, &size) || !size) {
				rt_err("bad size '%s'", optarg);
				return 2;
			}
			break;
		case 'M': kind = K_MEMFD; break;
		case 'A': kind = K_ANON; break;
		case 'r': ro = true; break;
		case 'd': dev_name = optarg; break;
		case 'e': expect = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((kind == K_FILE) != (optind == argc - 1) || optind < argc - 1) {
		usage(stderr);
		return 2;
	}
	if (kind == K_FILE)
		path = argv[optind];

	devs = ibv_get_device_list(&ndev);
	for (i = 0; devs && i < ndev && !dev; i++)
		if (!dev_name || !strcmp(ibv_get_device_name(devs[i]), dev_name))
			dev = devs[i];
	if (!dev) {
		printf("SKIP: no RDMA device%s%s\n", dev_name ? " named " : "",
		       dev_name ? dev_name : "");
		return 77;
	}
	ctx = ibv_open_device(dev);
	if (!ctx) {
		rt_err("ibv_open_device %s failed: %s", ibv_get_device_name(dev), strerror(errno));
		return 2;
	}
	pd = ibv_alloc_pd(ctx);
	if (!pd) {
		rt_err_errno("ibv_alloc_pd", errno);
		return 2;
	}

	if (kind == K_FILE) {
		fd = open(path, (ro ? O_RDONLY : O_RDWR) | (size && !ro ? O_CREAT : 0), 0644);
		if (fd < 0 || fstat(fd, &st)) {
			rt_err("open %s: %s", path, strerror(errno));
			return 2;
		}
		if (!size)
			size = st.st_size;
		if (!size) {
			rt_err("%s is empty: give --size", path);
			return 2;
		}
		if ((uint64_t)st.st_size < size && ftruncate(fd, size)) {
			rt_err("ftruncate %s: %s", path, strerror(errno));
			return 2;
		}
	} else if (kind == K_MEMFD) {
		path = "memfd";
		size = size ? size : 1 << 20;
		fd = memfd_create("rdma_regprobe", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, size)) {
			rt_err("memfd of %" PRIu64 " bytes: %s", size, strerror(errno));
			return 2;
		}
	} else {
		path = "anonymous memory";
		size = size ? size : 1 << 20;
	}
	prot = ro ? PROT_READ : PROT_READ | PROT_WRITE;
	map = mmap(NULL, size, prot, kind == K_ANON ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED,
		   fd, 0);
	if (map == MAP_FAILED) {
		rt_err("mmap %s: %s", path, strerror(errno));
		return 2;
	}

	access = ro ? 0 : IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
				  IBV_ACCESS_REMOTE_READ;
	mr = ibv_reg_mr(pd, map, size, access);
	err = mr ? 0 : errno;
	if (mr) {
		printf("reg_mr %s (%" PRIu64 " bytes, %s, %s): ok\n", path, size,
		       ro ? "read-only" : "writable", ibv_get_device_name(dev));
		ibv_dereg_mr(mr);
		outcome = "ok";
	} else {
		printf("reg_mr %s (%" PRIu64 " bytes, %s, %s): failed: %s (%s)\n", path, size,
		       ro ? "read-only" : "writable", ibv_get_device_name(dev), strerror(err),
		       errno_name(err));
		outcome = errno_name(err);
	}
	if (expect) {
		rc = strcasecmp(expect, outcome) ? 1 : 0;
		if (rc)
			printf("expected %s\n", expect);
	} else {
		rc = mr ? 0 : 1;
	}

	munmap(map, size);
	if (fd >= 0)
		close(fd);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(devs);
	return rc;
}
