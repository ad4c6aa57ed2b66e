// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/staging_resume.c - staged files across a daemon death without a mount
 * (staging_restart.c, staging_resume.c): generation 0 stages a file, which changes in
 * staging only; it "dies" (its socket closes, the stand-in store keeps the memfd and the
 * stager lock fd); generation 1 resumes the file from its record: same bytes and size,
 * lock still held, committed whole by its next commit. Also: unseal replaces the memfd
 * in the store, unlock and drop take the descriptors out (the lock goes). Needs no root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"
#include "restart.h"

#include "fixture.h"

#include "store_stub.h"

/* The store's descriptor under @tag, or -1 (once it served every request sent). */
static int store_fd(uint64_t tag)
{
	restart_sync();	/* staged files put and drop pipelined */
	for (int i = 0; i < store.n; i++)
		if (store.tag[i] == tag)
			return store.fd[i];
	return -1;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* True if another open file description could take the stager lock of DIR/@name now. */
static bool lockable(const char *name)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[160];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	r = fcntl(fd, F_OFD_SETLK, &fl);
	close(fd);
	return r == 0;
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 13 + seed + i / 4096);
}

static int setup(void **state)
{
	(void)state;
	conf_defaults(&config);
	set("chunk_size", "4K");
	set("io_size", "64K");
	set("uring_depth", "4");
	set("staging_budget", "4M");
	set("log_level", "error");
	fixture_start("staging_resume");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return fixture_stop();
}

static void test_resume(void **state)
{
	const size_t size = 256 << 10, grown = 300 << 10;
	unsigned char *want = malloc(grown), *got = malloc(grown + 1);
	struct staged *st, *st2;
	struct inode *ino;
	char path[160];
	size_t n;
	int fd;

	(void)state;
	pattern(want, size, 1);
	ino = fixture_file("a", want, size);
	store.n = 0;
	gen_start(0);
	assert_int_equal(staging_restart_init(), 0);
	pthread_mutex_lock(&ino->lock);
	assert_int_equal(staging_create(ino, &st), 0);
	ino->st = st;
	pthread_mutex_unlock(&ino->lock);
	assert_true(same_file(store_fd(SUP_TAG(SUP_K_STAGING, 0)), st->memfd));
	assert_true(store_fd(SUP_TAG(SUP_K_LOCK, 0)) >= 0);
	assert_false(lockable("a"));

	/* Changes the daemon never saw (a passthrough write that grows it), then death. */
	pattern(want, grown, 2);
	assert_int_equal(pwrite(st->memfd, want, grown, 0), (ssize_t)grown);
	staging_restart_exit();
	gen_end();
	/* What the dead process held goes; the store's copies stay (restart_drop() is a
	 * no-op once unsupervised). */
	pthread_mutex_lock(&ino->lock);
	staging_drop(st);
	pthread_mutex_unlock(&ino->lock);
	assert_null(ino->st);
	assert_false(lockable("a"));	/* the store's lock fd keeps it */

	gen_start(1);
	assert_int_equal(staging_restart_init(), 0);
	assert_int_equal(staging_resume(&n), 0);
	assert_int_equal(n, 1);
	st2 = ino->st;
	assert_non_null(st2);
	assert_true(st2->lockfd >= 0);
	assert_true(st2->needs_sync);
	assert_int_equal(st2->size, grown);
	assert_int_equal(pread(st2->memfd, got, grown, 0), (ssize_t)grown);
	assert_memory_equal(got, want, grown);
	assert_int_equal(staging_bytes_used(), ALIGN_UP(grown, 4096));

	/* Its next commit writes it whole. */
	assert_int_equal(commit_file(st2), 0);
	assert_int_equal(st2->stats.committed_bytes, grown);
	snprintf(path, sizeof(path), "%s/a", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	memset(got, 0, grown);
	assert_int_equal(pread(fd, got, grown + 1, 0), (ssize_t)grown);
	assert_memory_equal(got, want, grown);
	close(fd);
	assert_int_equal(commit_file(st2), 0);
	assert_int_equal(st2->stats.committed_bytes, grown);	/* then clean */

	/* Unseal: the store keeps the new memfd under the same tag. */
	pthread_mutex_lock(&ino->lock);
	assert_true(staging_try_seal(st2));
	assert_int_equal(staging_unseal(st2), 0);
	pthread_mutex_unlock(&ino->lock);
	assert_true(same_file(store_fd(SUP_TAG(SUP_K_STAGING, 0)), st2->memfd));

	/* Unlock: the store's lock fd goes too, and with it the lock. */
	pthread_mutex_lock(&ino->lock);
	staging_unlock_writer(st2);
	pthread_mutex_unlock(&ino->lock);
	assert_int_equal(store_fd(SUP_TAG(SUP_K_LOCK, 0)), -1);
	assert_true(lockable("a"));
	pthread_mutex_lock(&ino->lock);
	assert_int_equal(staging_lock_writer(st2), 0);
	pthread_mutex_unlock(&ino->lock);
	assert_true(store_fd(SUP_TAG(SUP_K_LOCK, 0)) >= 0);
	assert_false(lockable("a"));

	/* Drop: record and descriptors go. */
	pthread_mutex_lock(&ino->lock);
	staging_drop(st2);
	pthread_mutex_unlock(&ino->lock);
	assert_int_equal(store_fd(SUP_TAG(SUP_K_STAGING, 0)), -1);
	assert_int_equal(store_fd(SUP_TAG(SUP_K_LOCK, 0)), -1);
	assert_true(lockable("a"));
	staging_restart_exit();
	gen_end();

	/* A later generation finds nothing to resume. */
	gen_start(2);
	assert_int_equal(staging_restart_init(), 0);
	assert_int_equal(staging_resume(&n), 0);
	assert_int_equal(n, 0);
	assert_null(ino->st);
	staging_restart_exit();
	gen_end();
	for (int i = 0; i < store.n; i++)
		close(store.fd[i]);
	inode_forget(ino, 1);
	free(want);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
