// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the lease state machine (src/lease.c, included): grant and release, break
 * with release, timeouts under deny and revoke, holder death noticed by pidfd, several
 * holders, several breakers at once, release from inside notify(), shutdown.
 * Holders are forked children so that signals, SIGBUS and death are real.
 */
#include "../../src/lease.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ---- fakes of what lease.c uses from other modules ---- */

static struct conf test_conf;
const struct conf *cfg = &test_conf;
static unsigned nwarn;

void log_msg(enum log_level level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (level <= LOG_LVL_WARN)
		__atomic_add_fetch(&nwarn, 1, __ATOMIC_SEQ_CST);
	if (getenv("LEASE_TEST_VERBOSE")) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	errno = saved;
}

void staging_get(struct staged *st)
{
	__atomic_add_fetch(&st->refs, 1, __ATOMIC_SEQ_CST);
}

void staging_put(struct staged *st)
{
	__atomic_sub_fetch(&st->refs, 1, __ATOMIC_SEQ_CST);
}

/* ---- helpers ---- */

static struct inode test_ino = { .src_ino = 42 };
static struct staged test_st = { .ino = &test_ino };

/* A holder process: counts SIGUSR1s into a pipe, otherwise sleeps. */
struct child {
	pid_t pid;
	int sigfd;			/* read end: one byte per SIGUSR1 */
};

static int child_wfd;

static void on_usr1(int sig)
{
	char c = 's';

	(void)sig;
	if (write(child_wfd, &c, 1) < 0)
		_exit(3);
}

static struct child spawn_child(void)
{
	struct child c;
	int p[2];
	char ready;

	assert_int_equal(pipe(p), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		close(p[0]);
		child_wfd = p[1];
		/* cmocka catches SIGBUS in the test runner: the holder must die of it. */
		signal(SIGBUS, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGUSR1, on_usr1);
		ready = 'r';
		if (write(p[1], &ready, 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &ready, 1), 1);
	assert_int_equal(ready, 'r');
	c.sigfd = p[0];
	return c;
}

/* Signals the child got, waiting up to @ms for @want of them. */
static int child_signals(struct child *c, int want, int ms)
{
	struct pollfd p = { .fd = c->sigfd, .events = POLLIN };
	uint64_t end = now_ns() + ms * 1000000ull;
	char buf[16];
	int n = 0;

	while (poll(&p, 1, n >= want ? 0 : MAX((int64_t)(end - now_ns()) / 1000000, 0)) == 1) {
		ssize_t k = read(c->sigfd, buf, sizeof(buf));

		if (k <= 0)
			break;
		n += k;
	}
	return n;
}

/* Kill (if @sig) and reap; returns the wait status. */
static int reap_child(struct child *c, int sig)
{
	int status = 0;

	if (sig)
		kill(c->pid, sig);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	close(c->sigfd);
	return status;
}

/* What a ctl connection would be: notify() counts and may release after a delay. */
struct holder {
	struct lease *l;
	int notified;
	int release_after_ms;		/* < 0: never */
	bool release_inline;		/* lease_release() from inside notify() */
	pid_t kill_at_notice;		/* SIGKILL this holder process when notified */
	pthread_t thr;
	bool thr_started;
	int thr_err;			/* pthread_create() in notify(): checked by holder_join() */
};

static void *release_later(void *arg)
{
	struct holder *h = arg;

	usleep(h->release_after_ms * 1000);
	lease_release(h->l);
	return NULL;
}

static void holder_notify(void *arg)
{
	struct holder *h = arg;

	__atomic_add_fetch(&h->notified, 1, __ATOMIC_SEQ_CST);
	if (h->kill_at_notice) {
		kill(h->kill_at_notice, SIGKILL);
	} else if (h->release_inline) {
		lease_release(h->l);
	} else if (h->release_after_ms >= 0 && !h->thr_started) {
		/* notify() runs on the breaker's thread: no cmocka assertion here (they
		 * longjmp to the main thread's test); holder_join() checks on the main one. */
		h->thr_err = pthread_create(&h->thr, NULL, release_later, h);
		h->thr_started = !h->thr_err;
	}
}

static void holder_join(struct holder *h)
{
	assert_int_equal(h->thr_err, 0);
	if (h->thr_started)
		pthread_join(h->thr, NULL);
	h->thr_started = false;
}

static double secs_since(uint64_t t0)
{
	return (now_ns() - t0) / 1e9;
}

static int setup(void **state)
{
	(void)state;
	test_conf.lease_break_time = 1;
	test_conf.lease_expire = LEASE_EXPIRE_DENY;
	test_st.nleases = test_st.lease_breakers = test_st.refs = 0;
	nwarn = 0;
	return 0;
}

/* Every test leaves the table empty and the staging unreferenced. */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(lease_count(&test_st), 0);
	assert_int_equal(test_st.lease_breakers, 0);
	assert_int_equal(test_st.refs, 0);
	assert_null(lt.head);
	return 0;
}

/* ---- tests ---- */

static void test_add_list_release(void **state)
{
	struct child a = spawn_child(), b = spawn_child();
	struct lease *la, *lb;
	struct lease_info info[4];
	struct lease_stats s0, s1;

	lease_stats(&s0);
	la = lease_add(&test_st, a.pid, SIGUSR1, NULL, NULL, NULL);
	lb = lease_add(&test_st, b.pid, 0, NULL, NULL, NULL);
	assert_non_null(la);
	assert_non_null(lb);
	assert_int_equal(lease_count(&test_st), 2);
	assert_int_equal(test_st.refs, 2);	/* each lease keeps the staging alive */
	assert_int_equal(lease_list(&test_st, info, 4), 2);
	assert_int_equal(lease_list(NULL, NULL, 0), 2);
	assert_int_equal(lease_list(&test_st, info, 1), 2);	/* count beyond max */
	lease_list(&test_st, info, 4);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(info[i].ino, 42);
		assert_true(info[i].pid == a.pid || info[i].pid == b.pid);
		assert_int_equal(info[i].signo, info[i].pid == a.pid ? SIGUSR1 : 0);
		assert_true(info[i].since.tv_sec > 0);
		assert_false(info[i].breaking);
	}
	lease_stats(&s1);
	assert_int_equal(s1.granted - s0.granted, 2);
	assert_int_equal(s1.held, 2);
	lease_release(la);
	assert_int_equal(lease_count(&test_st), 1);
	lease_release(lb);
	lease_release(NULL);
	lease_stats(&s1);
	assert_int_equal(s1.held, 0);
	reap_child(&a, SIGKILL);
	reap_child(&b, SIGKILL);
}

static void test_bad_args(void **state)
{
	struct child c = spawn_child();
	pid_t dead = c.pid;

	errno = 0;
	assert_null(lease_add(&test_st, 0, 0, NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(lease_add(&test_st, getpid(), 1000, NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(lease_add(&test_st, getpid(), -1, NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	reap_child(&c, SIGKILL);
	assert_null(lease_add(&test_st, dead, 0, NULL, NULL, NULL));	/* holder already gone */
	assert_int_equal(errno, ESRCH);
}

/* No lease: the break passes at once, but new leases wait until the operation is done. */
static void test_break_without_leases(void **state)
{
	struct lease_stats s0, s1;
	struct lease *l;

	lease_stats(&s0);
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	errno = 0;
	assert_null(lease_add(&test_st, getpid(), 0, NULL, NULL, NULL));
	assert_int_equal(errno, EAGAIN);
	lease_break_done(&test_st);
	l = lease_add(&test_st, getpid(), 0, NULL, NULL, NULL);
	assert_non_null(l);
	lease_release(l);
	lease_stats(&s1);
	assert_int_equal(s1.breaks, s0.breaks);	/* nothing was broken */
}

/* A break on demand (lease_break = start + done) leaves no break open behind it. */
static void test_break_on_demand(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = 100 };
	struct lease *l;

	test_conf.lease_break_time = 5;
	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	assert_int_equal(lease_break(&test_st, "rdmafsctl lease break"), 0);
	assert_int_equal(test_st.lease_breakers, 0);
	assert_int_equal(h.notified, 1);
	l = lease_add(&test_st, c.pid, 0, NULL, NULL, NULL);	/* taken again at once */
	assert_non_null(l);
	lease_release(l);
	holder_join(&h);
	reap_child(&c, SIGKILL);
}

/* The holder is told (notify and its signal), releases, the break proceeds. */
static void test_break_released(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = 200 };
	struct lease_info info;
	uint64_t t0;

	h.l = lease_add(&test_st, c.pid, SIGUSR1, NULL, holder_notify, &h);
	assert_non_null(h.l);
	test_conf.lease_break_time = 5;
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	assert_true(secs_since(t0) >= 0.15 && secs_since(t0) < 2);
	assert_int_equal(h.notified, 1);
	assert_int_equal(child_signals(&c, 1, 1000), 1);
	assert_int_equal(lease_count(&test_st), 0);
	assert_int_equal(lease_list(NULL, &info, 1), 0);
	lease_break_done(&test_st);
	holder_join(&h);
	reap_child(&c, SIGKILL);
}

/* deny: the break fails with EBUSY after lease_break_time; the lease stays. */
static void test_break_timeout_deny(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = -1 };
	struct lease_stats s0, s1;
	struct lease_info info;
	uint64_t t0;

	lease_stats(&s0);
	h.l = lease_add(&test_st, c.pid, SIGUSR1, NULL, holder_notify, &h);
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), -EBUSY);
	assert_true(secs_since(t0) >= 0.95 && secs_since(t0) < 3);
	assert_int_equal(lease_count(&test_st), 1);
	assert_int_equal(test_st.lease_breakers, 0);	/* a denied break is over */
	assert_int_equal(lease_list(&test_st, &info, 1), 1);
	assert_false(info.breaking);
	lease_stats(&s1);
	assert_int_equal(s1.denies - s0.denies, 1);
	assert_int_equal(s1.breaks - s0.breaks, 1);
	assert_true(nwarn >= 1);
	/* The holder is alive and was not killed; a later break tells it again. */
	assert_int_equal(kill(c.pid, 0), 0);
	test_conf.lease_break_time = 0;
	assert_int_equal(lease_break_start(&test_st, "punch hole"), -EBUSY);
	assert_int_equal(h.notified, 2);
	assert_int_equal(child_signals(&c, 2, 1000), 2);
	lease_release(h.l);
	reap_child(&c, SIGKILL);
}

/* revoke: after lease_break_time the holder gets SIGBUS, the lease is dropped, the break
 * proceeds; the owner's lease_release() later only frees it. */
static void test_break_timeout_revoke(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = -1 };
	struct lease_stats s0, s1;
	uint64_t t0;
	int status;

	test_conf.lease_expire = LEASE_EXPIRE_REVOKE;
	lease_stats(&s0);
	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	assert_true(secs_since(t0) >= 0.95 && secs_since(t0) < 3);
	assert_int_equal(lease_count(&test_st), 0);
	lease_stats(&s1);
	assert_int_equal(s1.revokes - s0.revokes, 1);
	assert_int_equal(s1.denies, s0.denies);
	status = reap_child(&c, 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
	lease_break_done(&test_st);
	assert_int_equal(test_st.refs, 1);	/* still owned until released */
	lease_release(h.l);
}

/* A holder killed with SIGKILL releases: its pidfd is watched while the break waits. */
static void test_holder_death_during_break(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = -1 };
	struct lease_stats s0, s1;
	uint64_t t0;

	test_conf.lease_break_time = 10;
	lease_stats(&s0);
	/* The holder dies when the break reaches it (notify), never releasing. */
	h.kill_at_notice = c.pid;
	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	assert_true(secs_since(t0) < 2);
	lease_stats(&s1);
	assert_int_equal(s1.deaths - s0.deaths, 1);
	assert_int_equal(s1.denies, s0.denies);
	assert_int_equal(h.notified, 1);
	lease_break_done(&test_st);
	reap_child(&c, 0);
	lease_release(h.l);	/* the control connection notices EOF later */
}

/* Death is noticed without any break too: lease_count() drops the dead holder's lease. */
static void test_holder_death_idle(void **state)
{
	struct child c = spawn_child();
	struct lease *l = lease_add(&test_st, c.pid, 0, NULL, NULL, NULL);

	assert_int_equal(lease_count(&test_st), 1);
	reap_child(&c, SIGKILL);
	assert_int_equal(lease_count(&test_st), 0);
	lease_release(l);
}

/* Several holders: the break waits for the last one. */
static void test_several_holders(void **state)
{
	struct child c[3] = { spawn_child(), spawn_child(), spawn_child() };
	struct holder h[3] = { { .release_after_ms = 100 }, { .release_after_ms = 400 },
			       { .release_after_ms = 250 } };
	uint64_t t0;

	test_conf.lease_break_time = 5;
	for (int i = 0; i < 3; i++) {
		h[i].l = lease_add(&test_st, c[i].pid, SIGUSR1, NULL, holder_notify, &h[i]);
		assert_non_null(h[i].l);
	}
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	assert_true(secs_since(t0) >= 0.35 && secs_since(t0) < 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(h[i].notified, 1);
		assert_int_equal(child_signals(&c[i], 1, 1000), 1);
		holder_join(&h[i]);
		reap_child(&c[i], SIGKILL);
	}
	lease_break_done(&test_st);
}

/* Several holders, one never releases: deny keeps only that one. */
static void test_several_holders_one_stuck(void **state)
{
	struct child c[2] = { spawn_child(), spawn_child() };
	struct holder h[2] = { { .release_after_ms = 50 }, { .release_after_ms = -1 } };

	for (int i = 0; i < 2; i++)
		h[i].l = lease_add(&test_st, c[i].pid, 0, NULL, holder_notify, &h[i]);
	assert_int_equal(lease_break_start(&test_st, "truncate"), -EBUSY);
	assert_int_equal(lease_count(&test_st), 1);
	holder_join(&h[0]);
	lease_release(h[1].l);
	for (int i = 0; i < 2; i++)
		reap_child(&c[i], SIGKILL);
}

struct breaker {
	const char *why;
	int delay_ms;
	int r;
	double took;
};

static void *break_thread(void *arg)
{
	struct breaker *b = arg;
	uint64_t t0;

	usleep(b->delay_ms * 1000);
	t0 = now_ns();
	b->r = lease_break_start(&test_st, b->why);
	b->took = secs_since(t0);
	return NULL;
}

static void run_breakers(struct breaker *b, int n)
{
	pthread_t t[8];

	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, break_thread, &b[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/* Two truncates at once: one notice, both proceed once the holder releases. */
static void test_several_breakers_release(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = 300 };
	struct breaker b[2] = { { "truncate", 0 }, { "truncate", 100 } };

	test_conf.lease_break_time = 5;
	h.l = lease_add(&test_st, c.pid, SIGUSR1, NULL, holder_notify, &h);
	run_breakers(b, 2);
	assert_int_equal(b[0].r, 0);
	assert_int_equal(b[1].r, 0);
	assert_true(b[0].took < 2 && b[1].took < 2);
	assert_int_equal(h.notified, 1);
	assert_int_equal(child_signals(&c, 1, 1000), 1);
	assert_int_equal(test_st.lease_breakers, 2);
	lease_break_done(&test_st);
	lease_break_done(&test_st);
	holder_join(&h);
	reap_child(&c, SIGKILL);
}

/* Two breakers, holder stuck, deny: each times out on its own clock with EBUSY. */
static void test_several_breakers_deny(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = -1 };
	struct breaker b[2] = { { "truncate", 0 }, { "punch hole", 400 } };

	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	run_breakers(b, 2);
	assert_int_equal(b[0].r, -EBUSY);
	assert_int_equal(b[1].r, -EBUSY);
	assert_true(b[0].took >= 0.95 && b[1].took >= 0.95);
	assert_int_equal(h.notified, 1);	/* one break round, one notice */
	assert_int_equal(lease_count(&test_st), 1);
	lease_release(h.l);
	reap_child(&c, SIGKILL);
}

/* Two breakers, revoke: the first to time out revokes, both proceed. */
static void test_several_breakers_revoke(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_after_ms = -1 };
	struct breaker b[2] = { { "truncate", 0 }, { "truncate", 300 } };
	struct lease_stats s0, s1;
	int status;

	test_conf.lease_expire = LEASE_EXPIRE_REVOKE;
	lease_stats(&s0);
	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	run_breakers(b, 2);
	assert_int_equal(b[0].r, 0);
	assert_int_equal(b[1].r, 0);
	assert_true(b[1].took < 0.95);	/* released by the first breaker's revoke */
	lease_stats(&s1);
	assert_int_equal(s1.revokes - s0.revokes, 1);
	status = reap_child(&c, 0);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
	lease_break_done(&test_st);
	lease_break_done(&test_st);
	lease_release(h.l);
}

/* The control connection may drop the lease from inside notify() (send failed). */
static void test_release_inside_notify(void **state)
{
	struct child c = spawn_child();
	struct holder h = { .release_inline = true };
	uint64_t t0;

	test_conf.lease_break_time = 5;
	h.l = lease_add(&test_st, c.pid, 0, NULL, holder_notify, &h);
	t0 = now_ns();
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	assert_true(secs_since(t0) < 1);
	assert_int_equal(h.notified, 1);
	lease_break_done(&test_st);
	reap_child(&c, SIGKILL);
}

/* The holder's connection closes while notify() still runs in the breaker (ctl: EOF on
 * another thread): lease_release() waits for notify() to return, then frees once. */
struct slow {
	struct lease *l;
	int in_notify_ms;
	uint64_t notify_end, release_end;
};

static void slow_notify(void *arg)
{
	struct slow *w = arg;

	usleep(w->in_notify_ms * 1000);
	w->notify_end = now_ns();
}

static void *release_at_100ms(void *arg)
{
	struct slow *w = arg;

	usleep(100 * 1000);
	lease_release(w->l);
	w->release_end = now_ns();
	return NULL;
}

static void test_release_during_notify(void **state)
{
	struct child c = spawn_child();
	struct slow w = { .in_notify_ms = 300 };
	pthread_t t;

	test_conf.lease_break_time = 5;
	w.l = lease_add(&test_st, c.pid, 0, NULL, slow_notify, &w);
	assert_int_equal(pthread_create(&t, NULL, release_at_100ms, &w), 0);
	assert_int_equal(lease_break_start(&test_st, "truncate"), 0);
	pthread_join(t, NULL);
	assert_true(w.release_end >= w.notify_end);	/* @arg outlived notify() */
	lease_break_done(&test_st);
	reap_child(&c, SIGKILL);
}

/* Shutdown notifies every holder, waits briefly, then refuses new leases. */
static void test_shutdown(void **state)
{
	struct child c[2] = { spawn_child(), spawn_child() };
	struct holder h[2] = { { .release_after_ms = 100 }, { .release_after_ms = -1 } };
	struct inode ino2 = { .src_ino = 43 };
	struct staged st2 = { .ino = &ino2 };
	uint64_t t0;
	int status;

	test_conf.lease_break_time = 60;	/* capped at LEASE_SHUTDOWN_WAIT */
	test_conf.lease_expire = LEASE_EXPIRE_REVOKE;
	h[0].l = lease_add(&test_st, c[0].pid, SIGUSR1, NULL, holder_notify, &h[0]);
	h[1].l = lease_add(&st2, c[1].pid, 0, NULL, holder_notify, &h[1]);
	t0 = now_ns();
	lease_shutdown();
	assert_true(secs_since(t0) >= LEASE_SHUTDOWN_WAIT - 0.1 &&
		    secs_since(t0) < LEASE_SHUTDOWN_WAIT + 2);
	assert_int_equal(h[0].notified, 1);
	assert_int_equal(h[1].notified, 1);
	assert_int_equal(child_signals(&c[0], 1, 1000), 1);
	assert_int_equal(lease_count(&st2), 0);	/* revoked */
	status = reap_child(&c[1], 0);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
	errno = 0;
	assert_null(lease_add(&test_st, getpid(), 0, NULL, NULL, NULL));
	assert_int_equal(errno, ESHUTDOWN);
	holder_join(&h[0]);
	lease_release(h[1].l);
	assert_int_equal(st2.refs, 0);
	reap_child(&c[0], SIGKILL);
}

/* A thread's id (or an fd-less daemon: EMFILE) makes pidfd_open fail: no lease (issue 12). */
struct parked {
	pid_t tid;
	int wfd;		/* the tid is written here once known */
};

static void *park(void *arg)
{
	struct parked *p = arg;

	p->tid = gettid();
	if (write(p->wfd, "t", 1) != 1)
		return NULL;
	pause();
	return NULL;
}

static void test_no_pidfd_no_lease(void **state)
{
	struct lease_stats before, after;
	struct parked p = { 0 };
	pthread_t thr;
	pid_t tid;
	int fds[2];
	char c;

	(void)state;
	lease_stats(&before);
	assert_int_equal(pipe(fds), 0);
	p.wfd = fds[1];
	assert_int_equal(pthread_create(&thr, NULL, park, &p), 0);
	assert_int_equal(read(fds[0], &c, 1), 1);	/* the thread has its tid */
	close(fds[0]);
	close(fds[1]);
	tid = p.tid;
	errno = 0;
	assert_null(lease_add(&test_st, tid, SIGUSR1, NULL, NULL, NULL));
	assert_true(errno == EINVAL || errno == ENOENT);	/* ENOENT since Linux 6.9 */
	lease_stats(&after);
	assert_int_equal(after.granted, before.granted);
	assert_int_equal(after.held, before.held);
	assert_int_equal(test_st.nleases, 0);
	pthread_cancel(thr);
	pthread_join(thr, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_list_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_pidfd_no_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_without_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_on_demand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_timeout_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_timeout_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_death_during_break, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_death_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_holders_one_stuck, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_breakers_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_breakers_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_breakers_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_inside_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_during_notify, setup, teardown),
		/* Last: shutdown is for good. */
		cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
