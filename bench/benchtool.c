// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * benchtool.c - the measuring half of bench/run: small timed workloads that fio does not
 * cover (memory bandwidth, mmap stores and loads, commits, metadata, the copy baseline).
 * Each subcommand prints one line of key=value pairs; bench/run parses them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <rdmafs.h>
#ifdef HAVE_XXH_DISPATCH
#include <xxh_x86dispatch.h>
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static void die(const char *what)
{
	fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of process @pid in seconds (0 when pid is 0). */
static double pid_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut, st;
	FILE *f;

	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		die(path);
	if (!fgets(buf, sizeof(buf), f))
		die(path);
	fclose(f);
	p = strrchr(buf, ')');
	/* fields after comm: state(3) ... utime(14) stime(15) */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		die("parse stat");
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/*
 * Seconds on a CPU of all threads of process @pid now (sum of the first field of
 * /proc/PID/task/TID/schedstat, in ns: fine enough for a 10 ms scan where utime and stime
 * count 10 ms ticks). Threads that exit meanwhile take their time with them: for work
 * done by long-lived threads (the daemon's FUSE workers). 0 when pid is 0.
 */
static double pid_runtime(pid_t pid)
{
	char path[64];
	unsigned long long sum = 0, ns;
	struct dirent *de;
	DIR *d;

	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		die(path);
	while ((de = readdir(d))) {
		char sp[300];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/schedstat", pid, de->d_name);
		f = fopen(sp, "r");
		if (!f)
			continue;	/* exited meanwhile */
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1 << 20; break;
	case 'g': case 'G': v *= 1 << 30; break;
	}
	return (uint64_t)v;
}

/* xorshift: cheap reproducible bytes */
static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(void *p, size_t len)
{
	uint64_t *q = p;

	for (size_t i = 0; i < len / 8; i++)
		q[i] = rnd();
}

static uint64_t sum_loads(const void *p, size_t len)
{
	const uint64_t *q = p;
	uint64_t a = 0, b = 0, c = 0, d = 0;

	for (size_t i = 0; i + 4 <= len / 8; i += 4) {
		a += q[i];
		b += q[i + 1];
		c += q[i + 2];
		d += q[i + 3];
	}
	return a + b + c + d;
}

static void stores(void *p, size_t len, uint64_t v)
{
	uint64_t *q = p;

	for (size_t i = 0; i < len / 8; i++)
		q[i] = v + i;
}

static volatile uint64_t sink;

/*
 * membw FILE [PASSES]: one core's memory read bandwidth over the bytes of FILE (mapped
 * shared, read-only, populated first): a summing loop, and XXH3 over the same bytes in
 * 64 KiB pieces. Best of PASSES (default 3) of each (sum_cpu_bps: the summing loop per
 * second on the CPU), after an untimed first pass: the
 * first load of each page of a new mapping can cost far more than reading it (shadow
 * paging: 0.3-0.4 GB/s here after MAP_POPULATE), and the daemon's view is long-lived.
 */
static int cmd_membw(int argc, char **argv)
{
	struct stat sb;
	int fd = open(argv[0], O_RDONLY), passes = argc > 1 ? atoi(argv[1]) : 3;
	double best_sum = 0, best_xxh = 0, best_disp = 0, best_sum_cpu = 0;

	if (fd < 0 || fstat(fd, &sb) < 0)
		die(argv[0]);
	size_t len = sb.st_size;
	char *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

	if (p == MAP_FAILED)
		die("mmap");
	sink += sum_loads(p, len);
	for (int r = 0; r < passes; r++) {
		double t = now(), c = thread_cpu();

		sink += sum_loads(p, len);
		t = now() - t;
		c = thread_cpu() - c;
		if (len / t > best_sum)
			best_sum = len / t;
		if (c > 0 && len / c > best_sum_cpu)
			best_sum_cpu = len / c;
		t = now();
		for (size_t off = 0; off < len; off += 65536)
			sink += XXH3_64bits(p + off, MIN(65536, len - off));
		t = now() - t;
		if (len / t > best_xxh)
			best_xxh = len / t;
#ifdef HAVE_XXH_DISPATCH
		t = now();
		for (size_t off = 0; off < len; off += 65536)
			sink += XXH3_64bits_dispatch(p + off, MIN(65536, len - off));
		t = now() - t;
		if (len / t > best_disp)
			best_disp = len / t;
#endif
	}
	printf("bytes=%zu sum_bps=%.0f xxh3_bps=%.0f xxh3_dispatch_bps=%.0f sum_cpu_bps=%.0f\n",
	       len, best_sum, best_xxh, best_disp, best_sum_cpu);
	return 0;
}

/*
 * mmap FILE|memfd SIZE: stores then loads over a shared mapping (faulted in by a first
 * pass, then timed: best of 3 passes each). memfd: an anonymous memfd of SIZE.
 */
static int cmd_mmap(int argc, char **argv)
{
	size_t len = parse_size(argv[1]);
	int fd;
	double best_st = 0, best_ld = 0, t;

	if (!strcmp(argv[0], "memfd"))
		fd = memfd_create("bench", 0);
	else
		fd = open(argv[0], O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, len) < 0)
		die(argv[0]);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		die("mmap");
	t = now();
	stores(p, len, 1);	/* first touch: faults */
	double first = now() - t;

	for (int r = 0; r < 3; r++) {
		t = now();
		stores(p, len, r + 2);
		t = now() - t;
		if (len / t > best_st)
			best_st = len / t;
		t = now();
		sink += sum_loads(p, len);
		t = now() - t;
		if (len / t > best_ld)
			best_ld = len / t;
	}
	printf("bytes=%zu first_touch_bps=%.0f store_bps=%.0f load_bps=%.0f\n", len, len / first,
	       best_st, best_ld);
	munmap(p, len);
	close(fd);
	return 0;
}

/*
 * commit FILE [--frac F] [--chunk C] [--rand4k N] [--pid PID] [--seed S]: open FILE for
 * writing, change a fraction F of its chunks (every 1/F-th chunk of C bytes, rewritten
 * whole) or N random 4 KiB blocks with pwrite, then time fsync. Reports the daemon's CPU
 * seconds during the fsync when PID is given (daemon_cpu_s: utime + stime, 10 ms ticks,
 * io_uring workers included; daemon_run_s: ns on a CPU of the threads alive after it).
 */
static int cmd_commit(int argc, char **argv)
{
	const char *file = argv[0];
	double frac = 0;
	uint64_t chunk = 65536, n4k = 0;
	pid_t pid = 0;
	struct stat sb;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--frac"))
			frac = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--chunk"))
			chunk = parse_size(argv[i + 1]);
		else if (!strcmp(argv[i], "--rand4k"))
			n4k = parse_size(argv[i + 1]);
		else if (!strcmp(argv[i], "--pid"))
			pid = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seed"))
			rng ^= strtoull(argv[i + 1], NULL, 0) * 0x9e3779b97f4a7c15ull;
	}
	int fd = open(file, O_RDWR);

	if (fd < 0 || fstat(fd, &sb) < 0)
		die(file);
	uint64_t size = sb.st_size, written = 0;
	char *buf = aligned_alloc(4096, chunk > 4096 ? chunk : 4096);

	if (!buf)
		die("alloc");
	double t = now();

	if (frac > 0) {
		uint64_t nchunks = size / chunk, step = frac >= 1 ? 1 : (uint64_t)(1 / frac + 0.5);

		for (uint64_t i = 0; i < nchunks; i += step) {
			fill_random(buf, chunk);
			if (pwrite(fd, buf, chunk, i * chunk) != (ssize_t)chunk)
				die("pwrite");
			written += chunk;
		}
	}
	for (uint64_t i = 0; i < n4k; i++) {
		fill_random(buf, 4096);
		if (pwrite(fd, buf, 4096, (rnd() % (size / 4096)) * 4096) != 4096)
			die("pwrite");
		written += 4096;
	}
	double tw = now() - t, c0 = pid_cpu(pid), r0 = pid_runtime(pid);

	t = now();
	if (fsync(fd) < 0)
		die("fsync");
	t = now() - t;
	double dcpu = pid_cpu(pid) - c0, drun = pid_runtime(pid) - r0;

	printf("size=%" PRIu64 " written=%" PRIu64 " write_s=%.6f fsync_s=%.6f daemon_cpu_s=%.3f "
	       "daemon_run_s=%.6f\n", size, written, tw, t, dcpu, drun);
	close(fd);
	return 0;
}

/*
 * flush FILE: rdmafs_flush() of FILE (opened read-only, as rdmafsctl flush does), timed
 * around the library call alone: what an application calling it waits, without the start
 * of a process.
 */
static int cmd_flush(int argc, char **argv)
{
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC), r;
	double t;

	if (fd < 0)
		die(argv[0]);
	t = now();
	r = rdmafs_flush(fd);
	t = now() - t;
	if (r) {
		fprintf(stderr, "rdmafs_flush %s: %s\n", argv[0], strerror(-r));
		return 1;
	}
	printf("flush_s=%.6f\n", t);
	close(fd);
	return 0;
}

static const char *const meta_ops[] = { "create", "stat", "readdir", "rename", "unlink" };
static unsigned meta_batch;
static double meta_paused;

/*
 * Every meta_batch operations drop the kernel's dentry and inode caches (untimed): a
 * passthrough daemon holds an fd per inode the kernel caches, and RLIMIT_NOFILE may be
 * below the file count. Evicted FUSE inodes are forgotten, their fds closed.
 */
static void maybe_drop(unsigned i)
{
	double t;
	int fd;

	if (!meta_batch || (i + 1) % meta_batch)
		return;
	t = now();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "2", 1) != 1)
		die("drop_caches");
	close(fd);
	usleep(100000);	/* let the daemon process the FORGETs */
	meta_paused += now() - t;
}

/*
 * meta DIR N [BATCH]: create, stat, readdir, rename, unlink of N empty files in
 * DIR/bench.meta; operations per second of each phase.
 */
static int cmd_meta(int argc, char **argv)
{
	unsigned n = parse_size(argv[1]);
	char dir[4096], a[4200], b[4200];
	double t[5] = { 0 }, t0;
	struct stat sb;

	meta_batch = argc > 2 ? parse_size(argv[2]) : 0;
	snprintf(dir, sizeof(dir), "%s/bench.meta", argv[0]);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die(dir);
	meta_paused = 0;
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "%s/f%u", dir, i);
		int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);

		if (fd < 0)
			die(a);
		close(fd);
		maybe_drop(i);
	}
	t[0] = now() - t0 - meta_paused;
	meta_paused = 0;
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "%s/f%u", dir, i);
		if (stat(a, &sb) < 0)
			die(a);
		maybe_drop(i);
	}
	t[1] = now() - t0 - meta_paused;
	t0 = now();
	DIR *d = opendir(dir);
	unsigned seen = 0;

	if (!d)
		die(dir);
	while (readdir(d))
		seen++;
	closedir(d);
	if (seen < n)
		fprintf(stderr, "benchtool: readdir saw %u of %u\n", seen, n), exit(1);
	t[2] = now() - t0;
	maybe_drop(meta_batch ? meta_batch - 1 : 0);
	meta_paused = 0;
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "%s/f%u", dir, i);
		snprintf(b, sizeof(b), "%s/g%u", dir, i);
		if (rename(a, b) < 0)
			die(a);
		maybe_drop(i);
	}
	t[3] = now() - t0 - meta_paused;
	meta_paused = 0;
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(b, sizeof(b), "%s/g%u", dir, i);
		if (unlink(b) < 0)
			die(b);
		maybe_drop(i);
	}
	t[4] = now() - t0 - meta_paused;
	rmdir(dir);
	printf("n=%u batch=%u", n, meta_batch);
	for (int i = 0; i < 5; i++)
		printf(" %s_ops=%.0f", meta_ops[i], n / t[i]);
	printf("\n");
	return 0;
}

/*
 * openclose DIR N: N files DIR/oc<i> of 4 KiB exist; open all of them for writing
 * (each staged, all kept open), then close all. Per-file microseconds of each.
 */
static int cmd_openclose(int argc, char **argv)
{
	unsigned n = parse_size(argv[1]);
	int *fds = calloc(n, sizeof(*fds));
	char a[4200];
	double t;

	if (!fds)
		die("alloc");
	t = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "%s/oc%u", argv[0], i);
		fds[i] = open(a, O_RDWR);
		if (fds[i] < 0)
			die(a);
	}
	double to = now() - t;

	t = now();
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	double tc = now() - t;

	printf("n=%u open_us=%.1f close_us=%.1f\n", n, to * 1e6 / n, tc * 1e6 / n);
	free(fds);
	return 0;
}

/* prepare DIR N SIZE: N files DIR/oc<i> of SIZE bytes (written directly) */
static int cmd_prepare(int argc, char **argv)
{
	unsigned n = parse_size(argv[1]);
	size_t size = parse_size(argv[2]);
	char a[4200], *buf = calloc(1, size + 1);

	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "%s/oc%u", argv[0], i);
		int fd = open(a, O_CREAT | O_TRUNC | O_WRONLY, 0644);

		if (fd < 0 || write(fd, buf, size) != (ssize_t)size)
			die(a);
		close(fd);
	}
	free(buf);
	printf("files=%u size=%zu\n", n, size);
	return 0;
}

/*
 * copy anon|map FILE SIZE [--pid PID]: a peer process streams SIZE bytes through a socket;
 * the kernel writes them into pinned memory (io_uring registered buffer, READ_FIXED), as
 * a NIC would. anon: the memory is anonymous; the application then pwrite()s it to FILE
 * and fdatasync()s. map: the memory is FILE mapped from the rdmafs mount; then fsync.
 * Reports the time from the first byte received to durable and the CPU seconds spent by
 * the application (and the daemon, PID).
 */
static int cmd_copy(int argc, char **argv)
{
	bool map = !strcmp(argv[0], "map");
	const char *file = argv[1];
	size_t len = parse_size(argv[2]), piece = 1 << 20;
	pid_t dpid = argc > 4 && !strcmp(argv[3], "--pid") ? atoi(argv[4]) : 0;
	int sv[2], fd;
	char *mem;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair");
	int sbuf = 4 << 20;

	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sbuf, sizeof(sbuf));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sbuf, sizeof(sbuf));
	pid_t peer = fork();

	if (peer < 0)
		die("fork");
	if (!peer) {	/* the peer: random bytes, sent once the receiver is ready */
		char *src = malloc(piece), go;

		close(sv[0]);
		fill_random(src, piece);
		if (read(sv[1], &go, 1) != 1)
			_exit(1);
		for (size_t off = 0; off < len;) {
			ssize_t w = write(sv[1], src, MIN(piece, len - off));

			if (w <= 0)
				_exit(1);
			off += w;
		}
		_exit(0);
	}
	close(sv[1]);
	fd = open(file, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		die(file);
	if (map) {
		if (ftruncate(fd, len) < 0)
			die("ftruncate");
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	} else {
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			   MAP_POPULATE, -1, 0);
	}
	if (mem == MAP_FAILED)
		die("mmap");
	struct io_uring ring;
	struct iovec iov = { mem, len };
	int r = io_uring_queue_init(8, &ring, 0);

	if (r < 0 || (r = io_uring_register_buffers(&ring, &iov, 1)) < 0) {
		errno = -r;
		die("io_uring_register_buffers");
	}
	double c0 = self_cpu(), d0 = pid_cpu(dpid), t0 = now();

	if (write(sv[0], "g", 1) != 1)
		die("go");
	for (size_t off = 0; off < len;) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		io_uring_prep_read_fixed(sqe, sv[0], mem + off, MIN(len - off, 64u << 20), 0, 0);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe) < 0 || cqe->res <= 0) {
			errno = cqe ? -cqe->res : EIO;
			die("read_fixed");
		}
		off += cqe->res;
		io_uring_cqe_seen(&ring, cqe);
	}
	double t_recv = now();

	if (map) {
		if (fsync(fd) < 0)
			die("fsync");
	} else {
		for (size_t off = 0; off < len;) {
			ssize_t w = pwrite(fd, mem + off, MIN(len - off, 64u << 20), off);

			if (w <= 0)
				die("pwrite");
			off += w;
		}
		if (fdatasync(fd) < 0)
			die("fdatasync");
	}
	double t1 = now(), c1 = self_cpu(), d1 = pid_cpu(dpid);

	waitpid(peer, NULL, 0);
	printf("bytes=%zu recv_s=%.6f durable_s=%.6f app_cpu_s=%.3f daemon_cpu_s=%.3f\n", len,
	       t_recv - t0, t1 - t0, c1 - c0, d1 - d0);
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	munmap(mem, len);
	close(fd);
	return 0;
}

/*
 * fillproto FILE map|bounce: two ways to fill a memfd from FILE (O_DIRECT io_uring reads
 * of 2 MiB, 8 in flight) and XXH3 every 64 KiB chunk, as staging does. map: read into a
 * fresh shared mapping of the memfd and hash there (each page is first touched by the
 * CPU through that mapping); bounce: read into 8 reused buffers, hash them while hot,
 * pwrite() them into the memfd (the kernel copies; no user mapping of the memfd).
 */
static int cmd_fillproto(int argc, char **argv)
{
	bool bounce = !strcmp(argv[1], "bounce");
	const size_t io = 2 << 20, depth = 8;
	int fd = open(argv[0], O_RDONLY | O_DIRECT), mfd = memfd_create("fill", 0);
	struct io_uring ring;
	struct stat sb;
	char *dst, *buf;
	size_t next = 0, inflight = 0, slots_free = depth, freelist[8];

	if (fd < 0 || fstat(fd, &sb) < 0 || mfd < 0 || ftruncate(mfd, sb.st_size) < 0)
		die(argv[0]);
	size_t size = sb.st_size;
	double t = now(), c = self_cpu();

	if (bounce) {
		buf = mmap(NULL, io * depth, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			   MAP_POPULATE, -1, 0);
		dst = NULL;
	} else {
		dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		buf = NULL;
	}
	if (buf == MAP_FAILED || dst == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < depth; i++)
		freelist[i] = i;
	struct { size_t off, len; } req[8];

	if (io_uring_queue_init(depth, &ring, 0) < 0)
		die("ring");
	while (next < size || inflight) {
		struct io_uring_cqe *cqe;

		while (next < size && slots_free) {
			size_t s = freelist[--slots_free];
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			req[s].off = next;
			req[s].len = MIN(io, size - next);
			io_uring_prep_read(sqe, fd, bounce ? buf + s * io : dst + next, req[s].len,
					   next);
			io_uring_sqe_set_data64(sqe, s);
			next += req[s].len;
			inflight++;
		}
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			size_t s = io_uring_cqe_get_data64(cqe);
			char *p = bounce ? buf + s * io : dst + req[s].off;

			if (cqe->res != (int)req[s].len)
				errno = EIO, die("read");
			io_uring_cqe_seen(&ring, cqe);
			for (size_t o = 0; o < req[s].len; o += 65536)
				sink += XXH3_64bits(p + o, MIN(65536, req[s].len - o));
			if (bounce && pwrite(mfd, p, req[s].len, req[s].off) != (ssize_t)req[s].len)
				die("pwrite");
			inflight--;
			freelist[slots_free++] = s;
		}
	}
	t = now() - t;
	printf("bytes=%zu fill_s=%.6f fill_bps=%.0f cpu_s=%.3f\n", size, t, size / t,
	       self_cpu() - c);
	return 0;
}

/* ---- stress: an fsstress-like mixed workload ---- */

enum { S_CREATE, S_WRITE, S_READ, S_TRUNC, S_RENAME, S_UNLINK, S_MKDIR, S_STAT, S_FSYNC,
       S_NOPS };
static const char *const stress_names[S_NOPS] = {
	"create", "write", "read", "truncate", "rename", "unlink", "mkdir", "stat", "fsync"
};
/* relative frequencies, out of 100 (fsstress's defaults weigh reads, writes and
 * namespace operations alike; fsync is rare) */
static const unsigned stress_weight[S_NOPS] = { 14, 20, 16, 5, 6, 10, 3, 24, 2 };

#define STRESS_FILES 2000	/* per process: above it creates turn into unlinks */
#define STRESS_DIRS 64

struct sfile { unsigned dir, id; };

static void stress_path(char *b, size_t n, const char *root, unsigned dir, unsigned id)
{
	snprintf(b, n, "%s/d%u/f%u", root, dir, id);
}

/* One process: random operations over its own tree ROOT for @secs; counts per op. */
static void stress_child(const char *root, double secs, uint64_t seed, uint64_t *count)
{
	static struct sfile files[STRESS_FILES];
	unsigned nfiles = 0, ndirs = 1, next_id = 0;
	char a[4200], b[4200], *buf = aligned_alloc(4096, 65536);
	double end = now() + secs;
	struct stat sb;

	rng ^= seed * 0x9e3779b97f4a7c15ull;
	if (!buf)
		die("alloc");
	fill_random(buf, 65536);
	snprintf(a, sizeof(a), "%s/d0", root);
	if (mkdir(root, 0755) < 0)
		die(root);
	if (mkdir(a, 0755) < 0)
		die(a);
	for (unsigned long n = 0;; n++) {
		if (!(n % 64) && now() >= end)
			break;
		unsigned r = rnd() % 100, op = 0;

		while (r >= stress_weight[op])
			r -= stress_weight[op++];
		if (op == S_CREATE && nfiles == STRESS_FILES)
			op = S_UNLINK;
		if (op == S_MKDIR && ndirs == STRESS_DIRS)
			op = S_STAT;
		if (op != S_CREATE && op != S_MKDIR && !nfiles)
			op = S_CREATE;
		unsigned k = nfiles ? rnd() % nfiles : 0;
		struct sfile *f = &files[k];
		size_t len = 1 + rnd() % 16384;
		off_t off = rnd() % (256 << 10);
		int fd;

		if (op != S_CREATE && op != S_MKDIR)
			stress_path(a, sizeof(a), root, f->dir, f->id);
		switch (op) {
		case S_CREATE:
			f = &files[nfiles];
			f->dir = rnd() % ndirs;
			f->id = next_id++;
			stress_path(a, sizeof(a), root, f->dir, f->id);
			fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
				die(a);
			nfiles++;
			break;
		case S_WRITE:
			fd = open(a, O_WRONLY);
			if (fd < 0 || pwrite(fd, buf, len, off) != (ssize_t)len || close(fd) < 0)
				die(a);
			break;
		case S_READ:
			fd = open(a, O_RDONLY);
			if (fd < 0 || pread(fd, buf, len, off) < 0 || close(fd) < 0)
				die(a);
			break;
		case S_TRUNC:
			if (truncate(a, rnd() % (256 << 10)) < 0)
				die(a);
			break;
		case S_RENAME:
			f->dir = rnd() % ndirs;
			f->id = next_id++;
			stress_path(b, sizeof(b), root, f->dir, f->id);
			if (rename(a, b) < 0)
				die(a);
			break;
		case S_UNLINK:
			if (unlink(a) < 0)
				die(a);
			files[k] = files[--nfiles];
			break;
		case S_MKDIR:
			snprintf(a, sizeof(a), "%s/d%u", root, ndirs);
			if (mkdir(a, 0755) < 0)
				die(a);
			ndirs++;
			break;
		case S_STAT:
			if (stat(a, &sb) < 0)
				die(a);
			break;
		case S_FSYNC:
			fd = open(a, O_WRONLY);
			if (fd < 0 || fsync(fd) < 0 || close(fd) < 0)
				die(a);
			break;
		}
		count[op]++;
	}
	free(buf);
}

/*
 * stress DIR NPROC SECONDS [SEED]: NPROC processes, each over its own tree DIR/p<i>
 * (64 folders, up to 2,000 files), run random create (write up to 16 KiB), write, read,
 * truncate, rename, unlink, mkdir, stat and fsync for SECONDS; operations per second.
 */
static int cmd_stress(int argc, char **argv)
{
	unsigned nproc = parse_size(argv[1]);
	double secs = atof(argv[2]), t;
	uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 1, total[S_NOPS] = { 0 }, sum = 0;
	int pfd[2];
	char root[2048];

	if (mkdir(argv[0], 0755) < 0 && errno != EEXIST)
		die(argv[0]);
	if (pipe(pfd) < 0)
		die("pipe");
	t = now();
	for (unsigned i = 0; i < nproc; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid) {
			uint64_t count[S_NOPS] = { 0 };

			close(pfd[0]);
			snprintf(root, sizeof(root), "%s/p%u", argv[0], i);
			stress_child(root, secs, seed * 1000 + i + 1, count);
			if (write(pfd[1], count, sizeof(count)) != sizeof(count))
				_exit(1);
			_exit(0);
		}
	}
	close(pfd[1]);
	for (unsigned i = 0; i < nproc; i++) {
		uint64_t count[S_NOPS];
		int st;

		if (read(pfd[0], count, sizeof(count)) != sizeof(count))
			fprintf(stderr, "benchtool: a stress process failed\n"), exit(1);
		for (int k = 0; k < S_NOPS; k++)
			total[k] += count[k];
		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fprintf(stderr, "benchtool: a stress process failed\n"), exit(1);
	}
	t = now() - t;
	for (int k = 0; k < S_NOPS; k++)
		sum += total[k];
	printf("nproc=%u seconds=%.3f", nproc, t);
	for (int k = 0; k < S_NOPS; k++)
		printf(" %s=%" PRIu64, stress_names[k], total[k]);
	printf(" ops=%" PRIu64 " ops_s=%.0f\n", sum, sum / t);
	return 0;
}

/*
 * reopen FILE SECONDS: open FILE (existing) for writing, write 1 byte at a random
 * offset, close; repeated for SECONDS. Rounds per second.
 */
static int cmd_reopen(int argc, char **argv)
{
	double secs = atof(argv[1]), t0 = now(), t;
	struct stat sb;
	unsigned long n = 0;

	if (stat(argv[0], &sb) < 0 || !sb.st_size)
		die(argv[0]);
	do {
		int fd = open(argv[0], O_WRONLY);
		char c = (char)n;

		if (fd < 0 || pwrite(fd, &c, 1, rnd() % sb.st_size) != 1 || close(fd) < 0)
			die(argv[0]);
		n++;
		t = now() - t0;
	} while (t < secs);
	printf("n=%lu seconds=%.3f per_s=%.1f\n", n, t, n / t);
	return 0;
}

/*
 * smallfiles DIR SECONDS [MAX]: create DIR/s<i>, write 4 KiB, close; repeated for SECONDS
 * (at most MAX files, default 100000). Files per second.
 */
static int cmd_smallfiles(int argc, char **argv)
{
	double secs = atof(argv[1]), t0 = now(), t;
	unsigned long max = argc > 2 ? parse_size(argv[2]) : 100000, n = 0;
	char a[4200], buf[4096];

	fill_random(buf, sizeof(buf));
	do {
		snprintf(a, sizeof(a), "%s/s%lu", argv[0], n);
		int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);

		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) || close(fd) < 0)
			die(a);
		n++;
		t = now() - t0;
	} while (t < secs && n < max);
	printf("n=%lu seconds=%.3f per_s=%.1f\n", n, t, n / t);
	return 0;
}

/* hold FILE...: open each for writing and keep them open until stdin closes */
static int cmd_hold(int argc, char **argv)
{
	char c;

	for (int i = 0; i < argc; i++)
		if (open(argv[i], O_RDWR) < 0)
			die(argv[i]);
	printf("held=%d\n", argc);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
	int min_args;
	const char *usage;
} cmds[] = {
	{ "membw", cmd_membw, 1, "FILE [PASSES]" },
	{ "flush", cmd_flush, 1, "FILE" },
	{ "mmap", cmd_mmap, 2, "FILE|memfd SIZE" },
	{ "commit", cmd_commit, 1, "FILE [--frac F] [--chunk C] [--rand4k N] [--pid P]" },
	{ "meta", cmd_meta, 2, "DIR N [BATCH]" },
	{ "prepare", cmd_prepare, 3, "DIR N SIZE" },
	{ "openclose", cmd_openclose, 2, "DIR N" },
	{ "copy", cmd_copy, 3, "anon|map FILE SIZE [--pid P]" },
	{ "hold", cmd_hold, 1, "FILE..." },
	{ "fillproto", cmd_fillproto, 2, "FILE map|bounce" },
	{ "stress", cmd_stress, 3, "DIR NPROC SECONDS [SEED]" },
	{ "reopen", cmd_reopen, 2, "FILE SECONDS" },
	{ "smallfiles", cmd_smallfiles, 2, "DIR SECONDS [MAX]" },
};

int main(int argc, char **argv)
{
	for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name) && argc - 2 >= cmds[i].min_args)
			return cmds[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "usage: benchtool COMMAND ARGS\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %s %s\n", cmds[i].name, cmds[i].usage);
	return 2;
}
