// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lease_holder - a pin holder for the lease tests: maps a file of an rdmafs mount, takes a
 * lease (rdmafs_lease), pins the mapping long-term (io_uring_register_buffers, the pin of
 * ibv_reg_mr), waits for the break notice, then unpins, unmaps and releases the lease.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <poll.h>
#include <rdmafs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_NOPIN 2		/* the pin is refused: no passthrough, skip */
#define EXIT_SIGBUS 42		/* the lease was revoked */

static volatile sig_atomic_t got_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lease_holder [options] FILE\n"
		"\n"
		"Map FILE, take an rdmafs lease on it, pin the mapping long-term, print 'ready',\n"
		"then wait for the break notice (the lease fd turns readable, or --signo arrives)\n"
		"and print 'notice'. Then, unless --ignore: unpin, unmap, close the lease fd and\n"
		"print 'released'.\n"
		"\n"
		"  --signo N      signal the daemon sends with the notice (default 0: none)\n"
		"  --delay-ms N   wait N ms between notice and release (default 0)\n"
		"  --ignore       keep pin and lease after the notice (test deny / revoke)\n"
		"  --hold S       give up waiting after S seconds (default 60), exit 1\n"
		"\n"
		"Exit: 0 released, 1 error or no notice, 2 pin refused, 42 SIGBUS (revoked).\n");
}

static void on_signal(int sig)
{
	got_signal = sig;
}

static void on_sigbus(int sig)
{
	static const char msg[] = "sigbus\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(EXIT_SIGBUS);
	_exit(EXIT_SIGBUS);
}

static void say(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signo", required_argument, NULL, 's' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "ignore", no_argument, NULL, 'i' },
		{ "hold", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int signo = 0, delay_ms = 0, hold = 60, c, fd, lfd, r;
	bool ignore = false;
	struct io_uring ring;
	struct iovec iov;
	struct stat sb;
	struct pollfd p;
	void *map;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': signo = atoi(optarg); break;
		case 'd': delay_ms = atoi(optarg); break;
		case 'i': ignore = true; break;
		case 'H': hold = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 1;
	}
	signal(SIGBUS, on_sigbus);
	if (signo)
		signal(signo, on_signal);

	fd = open(argv[optind], O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !sb.st_size) {
		fprintf(stderr, "lease_holder: %s: %s\n", argv[optind],
			fd < 0 || sb.st_size ? strerror(errno) : "empty file");
		return 1;
	}
	map = mmap(NULL, sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("lease_holder: mmap");
		return 1;
	}
	/* Lease first, then pin: no pin exists that a break would not know about. */
	lfd = rdmafs_lease(fd, signo);	/* the lease fd, or -errno */
	if (lfd < 0) {
		fprintf(stderr, "lease_holder: rdmafs_lease: %s\n", strerror(-lfd));
		return 1;
	}
	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		fprintf(stderr, "lease_holder: io_uring_queue_init: %s\n", strerror(-r));
		return 1;
	}
	iov = (struct iovec){ .iov_base = map, .iov_len = sb.st_size };
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		fprintf(stderr, "lease_holder: long-term pin refused: %s\n", strerror(-r));
		return EXIT_NOPIN;
	}
	say("ready");

	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (time_t end = time(NULL) + hold; !got_signal;) {
		r = poll(&p, 1, 100);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR) {
			perror("lease_holder: poll");
			return 1;
		}
		if (time(NULL) >= end) {
			say("timeout");
			return 1;
		}
	}
	say(got_signal ? "notice signal" : "notice fd");
	if (ignore) {	/* a stuck holder: keeps its pin until killed, revoked or --hold */
		alarm(hold);
		for (;;)
			pause();
	}
	/* The whole delay, even if the notice signal interrupts it (it may come after the fd
	 * turned readable). */
	struct timespec left = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };

	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	munmap(map, sb.st_size);
	close(lfd);	/* releases the lease: only now may the daemon free the pages */
	close(fd);
	say("released");
	return 0;
}
