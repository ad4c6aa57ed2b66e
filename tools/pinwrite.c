// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-pinwrite - map a file, pin the mapping long-term the way ibv_reg_mr does
 * (io_uring_register_buffers: FOLL_WRITE|FOLL_LONGTERM) and let a peer process write into
 * the pinned pages through the kernel (IORING_OP_READ_FIXED from a socket), as a NIC would.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static bool quiet;

/* --until-signal: SIGUSR1 is blocked (a signal must not interrupt a FUSE request) and
 * looked for between rounds. */
static bool usr1_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && sigismember(&set, SIGUSR1);
}

#define say(...) do { if (!quiet) printf(__VA_ARGS__); fflush(stdout); } while (0)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rdmafs-pinwrite [options] FILE\n"
		"\n"
		"Map FILE (MAP_SHARED), pin the mapping with io_uring_register_buffers (the same\n"
		"FOLL_WRITE|FOLL_LONGTERM pin as ibv_reg_mr), then have a peer process stream data\n"
		"into the pinned pages through the kernel (IORING_OP_READ_FIXED from a socket).\n"
		"\n"
		"  --from SRC       the peer sends the bytes of file SRC (default: --size random bytes)\n"
		"  --size N         bytes to map and write (default: size of SRC, else 16M)\n"
		"  --offset N       where in FILE the peer writes (default 0)\n"
		"  --seed S         seed of the random stream (default 1)\n"
		"  --probe          only map and pin; exit 0 if the pin works, 2 if refused\n"
		"  --no-fsync       do not fsync FILE after the peer's writes\n"
		"  --populate       map with MAP_POPULATE: pages are read-faulted in (clean) before\n"
		"                   the pin, so nothing dirties them (the peer's writes do not)\n"
		"  --hold SECONDS   keep the pin (and mapping) this long before exiting\n"
		"  --rounds N       the peer writes the whole range N times (default 1)\n"
		"  --duration S     instead: whole rounds until S seconds have passed\n"
		"  --until-signal   instead: whole rounds until SIGUSR1 (at least one)\n"
		"  --quiet          print only the checksum line\n"
		"\n"
		"Prints 'xxh3=<hex>' of what the peer sent (the last round). Exit 0 on success,\n"
		"2 if the pin is refused (e.g. EFAULT on a file of a disk filesystem), 1 on error.\n");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K': return v << 10;
	case 'm': case 'M': return v << 20;
	case 'g': case 'G': return v << 30;
	default: return v;
	}
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * The peer: writes @size bytes (from @src or a seeded stream, seed + round) into @sock,
 * one round each time the parent sends 'G', until it sends anything else.
 */
static int peer(int sock, const char *src, uint64_t size, uint64_t seed)
{
	static char buf[1 << 20];
	char cmd;

	for (unsigned r = 0; read(sock, &cmd, 1) == 1 && cmd == 'G'; r++) {
		uint64_t s = seed + r, sent = 0;
		int fd = src ? open(src, O_RDONLY) : -1;

		if (src && fd < 0) {
			perror(src);
			return 1;
		}
		while (sent < size) {
			size_t n = size - sent < sizeof(buf) ? size - sent : sizeof(buf);

			if (fd >= 0) {
				ssize_t got = read(fd, buf, n);

				if (got <= 0) {
					fprintf(stderr, "peer: %s is shorter than %" PRIu64 "\n", src, size);
					return 1;
				}
				n = got;
			} else {
				for (size_t i = 0; i < n; i += 8) {
					uint64_t v = xorshift(&s);

					memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
				}
			}
			for (size_t off = 0; off < n;) {
				ssize_t w = write(sock, buf + off, n - off);

				if (w < 0) {
					perror("peer: write");
					return 1;
				}
				off += w;
			}
			sent += n;
		}
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "size", required_argument, NULL, 's' },
		{ "offset", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "probe", no_argument, NULL, 'p' },
		{ "no-fsync", no_argument, NULL, 'n' },
		{ "populate", no_argument, NULL, 'P' },
		{ "hold", required_argument, NULL, 'H' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'D' },
		{ "until-signal", no_argument, NULL, 'U' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *src = NULL, *path;
	uint64_t size = 0, offset = 0, seed = 1, done;
	unsigned hold = 0, rounds = 1, round;
	double duration = 0;
	struct timespec t0, t;
	bool probe = false, do_fsync = true, populate = false, until_signal = false;
	struct io_uring ring;
	struct iovec iov;
	struct stat sb;
	int c, fd, sv[2], r, status;
	char *map;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'F': src = optarg; break;
		case 's': size = parse_size(optarg); break;
		case 'o': offset = parse_size(optarg); break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		case 'p': probe = true; break;
		case 'n': do_fsync = false; break;
		case 'P': populate = true; break;
		case 'H': hold = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'D': duration = strtod(optarg, NULL); break;
		case 'U': until_signal = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 1;
	}
	path = argv[optind];
	if (!size && src) {
		if (stat(src, &sb) < 0) {
			perror(src);
			return 1;
		}
		size = sb.st_size;
	}
	if (!size)
		size = 16 << 20;
	if (!seed)
		seed = 1;
	fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "pinwrite: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((uint64_t)sb.st_size < offset + size && ftruncate(fd, offset + size) < 0) {
		fprintf(stderr, "pinwrite: ftruncate %s: %s\n", path, strerror(errno));
		return 1;
	}
	map = mmap(NULL, offset + size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "pinwrite: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	say("mapped %s: %" PRIu64 " bytes\n", path, offset + size);
	r = io_uring_queue_init(8, &ring, 0);
	if (r < 0) {
		fprintf(stderr, "pinwrite: io_uring_queue_init: %s\n", strerror(-r));
		return 1;
	}
	iov.iov_base = map + offset;
	iov.iov_len = size;
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		fprintf(stderr, "pinwrite: long-term pin of %s refused: io_uring_register_buffers: %s\n",
			path, strerror(-r));
		return 2;
	}
	say("pinned %" PRIu64 " bytes long-term (io_uring_register_buffers, FOLL_LONGTERM)\n", size);
	if (probe)
		return 0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(sv[0]);
		_exit(peer(sv[1], src, size, seed));
	}
	close(sv[1]);
	if (duration > 0)
		say("peer pid %d writing %" PRIu64 " bytes for %.1f s into the pinned pages "
		    "(IORING_OP_READ_FIXED from a socket)\n", (int)pid, size, duration);
	else
		say("peer pid %d writing %" PRIu64 " bytes x %u into the pinned pages "
		    "(IORING_OP_READ_FIXED from a socket)\n", (int)pid, size, rounds);
	if (until_signal) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		say("ready\n");
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (round = 0;; round++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (until_signal ? round > 0 && usr1_pending() :
		    duration > 0 ? round > 0 && (t.tv_sec - t0.tv_sec) +
						(t.tv_nsec - t0.tv_nsec) / 1e9 >= duration :
				   round == rounds)
			break;
		if (write(sv[0], "G", 1) != 1) {	/* the peer sends one round per 'G' */
			perror("pinwrite: peer socket");
			return 1;
		}
		for (done = 0; done < size;) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;
			unsigned len = size - done > (1u << 20) ? 1u << 20 : size - done;

			io_uring_prep_read_fixed(sqe, sv[0], map + offset + done, len, 0, 0);
			r = io_uring_submit_and_wait(&ring, 1);
			if (r < 0) {
				fprintf(stderr, "pinwrite: io_uring_submit: %s\n", strerror(-r));
				return 1;
			}
			if (io_uring_peek_cqe(&ring, &cqe)) {
				fprintf(stderr, "pinwrite: no completion\n");
				return 1;
			}
			r = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (r <= 0) {
				fprintf(stderr, "pinwrite: READ_FIXED: %s\n",
					r ? strerror(-r) : "peer closed early");
				return 1;
			}
			done += r;
		}
	}
	if (write(sv[0], "S", 1) != 1) {
		perror("pinwrite: peer socket");
		return 1;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "pinwrite: peer failed\n");
		return 1;
	}
	say("peer done: %u rounds\n", round);
	if (do_fsync) {
		if (fsync(fd) < 0) {
			fprintf(stderr, "pinwrite: fsync %s: %s\n", path, strerror(errno));
			return 1;
		}
		say("fsync returned: the data is durable in the backing file\n");
	}
	printf("xxh3=%016" PRIx64 "\n", (uint64_t)XXH3_64bits(map + offset, size));
	fflush(stdout);
	if (hold)
		sleep(hold);
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	munmap(map, offset + size);
	close(fd);
	return 0;
}
