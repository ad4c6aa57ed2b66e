// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl_closer.c - owns the closing of descriptors control clients send us: closer children
 * that close them without any thread of ours waiting, and their reaping.
 */
#include "rdmafsd.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_closer.h"

#define CTL_CLOSER_MEM 16384		/* a closer's stack and bookkeeping */
#define CTL_CLOSER_STUCK_NS 1000000000ull	/* a close this old waits on a FUSE server */

/*
 * Closing a descriptor a client sent may wait forever: for a FUSE file the kernel sends
 * FLUSH and waits, uninterruptibly, for an answer that a user's own FUSE server may never
 * give (or ours, once its loop has stopped). So no thread of ours closes them: a closer, a
 * child sharing our descriptor table and memory (clone CLONE_FILES | CLONE_VM), closes
 * them and exits. A stuck closer holds only that file; our threads, the final commit and
 * the daemon's exit do not wait for it. This record sits at the bottom of the closer's
 * stack mapping (CTL_CLOSER_MEM bytes), freed when the closer is reaped.
 */
struct closer {
	int pidfd;			/* owned */
	uid_t uid;			/* whose descriptors */
	uint64_t started;		/* monotonic ns */
	struct closer *next;		/* closers.list, under closers.lock */
	unsigned nfds;
	int fds[4];			/* read by the child */
};

static struct {
	pthread_mutex_t lock;		/* protects list */
	struct closer *list;		/* closers not reaped yet */
} closers = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * The child runs on its own stack in our memory, but with the thread pointer of the thread
 * that made it, whose TLS may be gone by the time a close returns (the daemon may have
 * exited): so no libc call (syscall() writes errno there), no sanitizer, no stack canary.
 */
#if defined(__x86_64__) || defined(__aarch64__)
#define CTL_HAVE_CLOSER 1
static inline __attribute__((always_inline)) void raw_close(int fd)
{
#if defined(__x86_64__)
	long r = SYS_close;

	__asm__ volatile("syscall" : "+a"(r) : "D"((long)fd) : "rcx", "r11", "memory");
#else
	register long x8 __asm__("x8") = SYS_close;
	register long x0 __asm__("x0") = fd;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
#endif
}

#if defined(__has_attribute) && __has_attribute(no_stack_protector)
#define CTL_NO_CANARY __attribute__((no_stack_protector))
#else
#define CTL_NO_CANARY
#endif

__attribute__((no_sanitize("address", "undefined"))) CTL_NO_CANARY
static int closer_main(void *arg)
{
	const struct closer *k = arg;

	for (unsigned i = 0; i < k->nfds; i++)
		raw_close(k->fds[i]);
	return 0;	/* clone()'s trampoline calls exit(2) directly */
}
#else
#define CTL_HAVE_CLOSER 0	/* no raw system call here: close in place */
#endif

/* Reap the closers that are done; with @all, forget the rest too (at exit). closers.lock held. */
static void reap_closers_locked(bool all)
{
	for (struct closer **pp = &closers.list, *k; (k = *pp);) {
		struct pollfd p = { .fd = k->pidfd, .events = POLLIN };
		siginfo_t si;

		if (poll(&p, 1, 0) != 1) {
			if (!all) {
				pp = &k->next;
				continue;
			}
			/* Still in close(): its stack must stay; the child ends on its own. */
			log_warn("ctl: shutdown: descriptors of uid %u still closing (a FUSE server "
				 "not answering FLUSH?); not waiting for them", (unsigned)k->uid);
			*pp = k->next;
			close(k->pidfd);
			continue;
		}
		waitid(P_PIDFD, k->pidfd, &si, WEXITED);
		*pp = k->next;
		close(k->pidfd);
		munmap(k, CTL_CLOSER_MEM);
	}
}

/* Closes of @uid's descriptors that have waited for CTL_CLOSER_STUCK_NS; closers.lock held. */
static unsigned stuck_locked(uid_t uid)
{
	uint64_t now = now_ns();
	unsigned n = 0;

	reap_closers_locked(false);
	for (struct closer *k = closers.list; k; k = k->next)
		n += k->uid == uid && now - k->started > CTL_CLOSER_STUCK_NS;
	return n;
}

/* Close @n descriptors @uid's client sent us, without waiting for them (see struct closer). */
void ctl_close_client_fds(const int *fds, unsigned n, uid_t uid)
{
	struct closer *k;
	unsigned done;
	int pidfd = -1;

	if (!n)
		return;
	if (!CTL_HAVE_CLOSER) {
		errno = ENOSYS;
		goto err;
	}
	k = mmap(NULL, CTL_CLOSER_MEM, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (k == MAP_FAILED)
		goto err;
	k->uid = uid;
	k->started = now_ns();
	k->nfds = MIN(n, ARRAY_SIZE(k->fds));
	memcpy(k->fds, fds, k->nfds * sizeof(int));
#if CTL_HAVE_CLOSER
	if (clone(closer_main, (char *)k + CTL_CLOSER_MEM, CLONE_VM | CLONE_FILES | CLONE_PIDFD |
		  SIGCHLD, k, &pidfd) < 0) {
		munmap(k, CTL_CLOSER_MEM);
		goto err;
	}
#endif
	k->pidfd = pidfd;
	done = k->nfds;
	pthread_mutex_lock(&closers.lock);
	k->next = closers.list;
	closers.list = k;
	reap_closers_locked(false);	/* may free k already */
	pthread_mutex_unlock(&closers.lock);
	if (n > done)
		ctl_close_client_fds(fds + done, n - done, uid);
	return;
err:
	/* No memory or no process for a closer: close here, and hope. */
	log_warn("ctl: closer for uid %u: %s; closing its descriptors in place", (unsigned)uid,
		 strerror(errno));
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

unsigned ctl_closers_stuck(uid_t uid)
{
	unsigned n;

	pthread_mutex_lock(&closers.lock);
	n = stuck_locked(uid);
	pthread_mutex_unlock(&closers.lock);
	return n;
}

void ctl_closers_reap(void)
{
	pthread_mutex_lock(&closers.lock);
	reap_closers_locked(false);
	pthread_mutex_unlock(&closers.lock);
}

void ctl_closers_exit(void)
{
	/* Closers just started finish in microseconds; a stuck one is left behind. */
	uint64_t deadline = now_ns() + 1000000000ull;

	pthread_mutex_lock(&closers.lock);
	for (reap_closers_locked(false); closers.list && now_ns() < deadline;
	     reap_closers_locked(false)) {
		pthread_mutex_unlock(&closers.lock);
		usleep(10000);
		pthread_mutex_lock(&closers.lock);
	}
	reap_closers_locked(true);
	pthread_mutex_unlock(&closers.lock);
}
