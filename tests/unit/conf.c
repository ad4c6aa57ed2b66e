// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/conf.c - conf.c: every key with good and bad values, sizes and percentages,
 * file:line errors from a temporary file, the first error wins, bad input changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/conf.c"

static char err[1024];

static void set_ok(struct conf *c, const char *key, const char *val)
{
	err[0] = 0;
	int r = conf_set(c, key, val, err, sizeof(err));

	if (r)
		fail_msg("conf_set(%s, '%s') = %d: %s", key, val, r, err);
}

/* A bad value: -EINVAL, a message naming key and value, and the config unchanged. */
static void set_bad(struct conf *c, const char *key, const char *val)
{
	struct conf before = *c;

	err[0] = 0;
	int r = conf_set(c, key, val, err, sizeof(err));

	if (r != -EINVAL)
		fail_msg("conf_set(%s, '%s') = %d, expected -EINVAL", key, val, r);
	assert_non_null(strstr(err, key));
	if (!strstr(err, val))
		fail_msg("message '%s' does not show the value '%s'", err, val);
	if (memcmp(&before, c, sizeof(before)))
		fail_msg("conf_set(%s, '%s') failed but changed the config", key, val);
}

/* RAM from /proc/meminfo (MemTotal), not from the sysconf() that conf.c uses. */
static uint64_t ram_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kb = 0;
	char line[256];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb > 0);
	return kb * 1024;
}

static void test_defaults(void **state)
{
	struct conf c;

	conf_defaults(&c);
	assert_int_equal(c.staging, STAGING_SHMEM);
	assert_int_equal(c.staging_budget, ram_bytes() / 2);	/* 50 % of RAM */
	assert_int_equal(c.chunk_size, 65536);
	assert_int_equal(c.flush_interval, 5);
	assert_int_equal(c.flush_on_close, FLUSH_CLOSE_NO);
	assert_int_equal(c.uring_depth, 8);
	assert_int_equal(c.io_size, 2097152);
	assert_int_equal(c.direct_io, TRI_AUTO);
	assert_int_equal(c.lease_break_time, 10);
	assert_int_equal(c.lease_expire, LEASE_EXPIRE_DENY);
	assert_string_equal(c.rescue_dir, "/var/lib/rdmafs/rescue");
	assert_int_equal(c.log_level, LOG_LVL_INFO);
	assert_int_equal(c.shutdown_timeout, 30);
	assert_int_equal(c.passthrough, TRI_AUTO);
	assert_int_equal(c.hugetlb_page_size, 2097152);
	assert_true(c.hugetlb_fallback);
}

/* conf/rdmafs.conf shows every key at its default: loading it changes nothing. */
static void test_shipped_conf_is_defaults(void **state)
{
	const char *src = getenv("RDMAFS_SOURCE");
	char path[4096];
	struct conf c, d;

	if (!src)
		skip();
	snprintf(path, sizeof(path), "%s/conf/rdmafs.conf", src);
	conf_defaults(&c);
	conf_defaults(&d);
	if (conf_load_file(&c, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_memory_equal(&c, &d, sizeof(c));
	/* ... and names every key. */
	FILE *f = fopen(path, "r");
	char line[512], text[16384] = "";

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#')
			strncat(text, line, sizeof(text) - strlen(text) - 1);
	fclose(f);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char want[80];

		snprintf(want, sizeof(want), "\n%s =", keys[i].name);
		if (!strstr(text, want) && strncmp(text, want + 1, strlen(want + 1)))
			fail_msg("conf/rdmafs.conf lacks key %s", keys[i].name);
	}
}

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(conf_parse_size("0", false, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(conf_parse_size("4096", false, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(conf_parse_size("64K", false, &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(conf_parse_size("64k", false, &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(conf_parse_size("2M", false, &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(conf_parse_size("2MiB", false, &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(conf_parse_size("2MB", false, &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(conf_parse_size("1G", false, &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(conf_parse_size("3T", false, &v), 0);
	assert_int_equal(v, 3ull << 40);
	assert_int_equal(conf_parse_size("50%", true, &v), 0);
	assert_int_equal(v, ram_bytes() / 2);
	assert_int_equal(conf_parse_size("100%", true, &v), 0);
	assert_int_equal(v, ram_bytes());

	static const char *const bad[] = { "", "K", "-1", " 1", "1X", "1KX", "1KiBs", "1.5G",
					   "0x10", "1 K", "99999999999999999999" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (conf_parse_size(bad[i], true, &v) == 0)
			fail_msg("size '%s' accepted", bad[i]);
	assert_int_equal(conf_parse_size("50%", false, &v), -EINVAL);
	assert_int_equal(conf_parse_size("0%", true, &v), -EINVAL);
	assert_int_equal(conf_parse_size("101%", true, &v), -EINVAL);
	assert_int_equal(conf_parse_size("50%x", true, &v), -EINVAL);
	assert_int_equal(conf_parse_size("16777216T", false, &v), -ERANGE);
	assert_int_equal(conf_parse_size(NULL, false, &v), -EINVAL);
}

static void test_every_key(void **state)
{
	struct conf c;

	conf_defaults(&c);
	set_ok(&c, "staging", "thp");
	assert_int_equal(c.staging, STAGING_THP);
	set_ok(&c, "staging", "HugeTLB");
	assert_int_equal(c.staging, STAGING_HUGETLB);
	set_ok(&c, "staging", "shmem");
	assert_int_equal(c.staging, STAGING_SHMEM);
	set_bad(&c, "staging", "tmpfs");

	set_ok(&c, "staging_budget", "1G");
	assert_int_equal(c.staging_budget, 1ull << 30);
	set_ok(&c, "staging_budget", "25%");
	assert_int_equal(c.staging_budget, ram_bytes() / 4);
	set_ok(&c, "staging_budget", "  4096");	/* leading blanks of -o values */
	assert_int_equal(c.staging_budget, 4096);
	set_bad(&c, "staging_budget", "0");
	set_bad(&c, "staging_budget", "0%");
	set_bad(&c, "staging_budget", "200%");
	set_bad(&c, "staging_budget", "lots");

	set_ok(&c, "chunk_size", "4K");
	assert_int_equal(c.chunk_size, 4096);
	set_ok(&c, "chunk_size", "64M");
	assert_int_equal(c.chunk_size, 64 << 20);
	set_ok(&c, "chunk_size", "1048576");
	assert_int_equal(c.chunk_size, 1 << 20);
	set_bad(&c, "chunk_size", "2K");
	set_bad(&c, "chunk_size", "128M");
	set_bad(&c, "chunk_size", "96K");
	set_bad(&c, "chunk_size", "50%");
	set_bad(&c, "chunk_size", "0");

	set_ok(&c, "flush_interval", "0");
	assert_int_equal(c.flush_interval, 0);
	set_ok(&c, "flush_interval", "86400");
	assert_int_equal(c.flush_interval, 86400);
	set_bad(&c, "flush_interval", "86401");
	set_bad(&c, "flush_interval", "-1");
	set_bad(&c, "flush_interval", "1s");
	set_bad(&c, "flush_interval", "99999999999999999999");

	set_ok(&c, "flush_on_close", "no");
	assert_false(c.flush_on_close);
	set_ok(&c, "flush_on_close", "TRUE");
	assert_true(c.flush_on_close);
	set_ok(&c, "flush_on_close", "0");
	assert_false(c.flush_on_close);
	set_ok(&c, "flush_on_close", "on");
	assert_int_equal(c.flush_on_close, FLUSH_CLOSE_YES);
	set_ok(&c, "flush_on_close", "async");
	assert_int_equal(c.flush_on_close, FLUSH_CLOSE_ASYNC);
	set_bad(&c, "flush_on_close", "maybe");

	set_ok(&c, "uring_depth", "1");
	assert_int_equal(c.uring_depth, 1);
	set_ok(&c, "uring_depth", "256");
	assert_int_equal(c.uring_depth, 256);
	set_bad(&c, "uring_depth", "0");
	set_bad(&c, "uring_depth", "257");

	set_ok(&c, "io_size", "64K");
	assert_int_equal(c.io_size, 64 << 10);
	set_ok(&c, "io_size", "64M");
	assert_int_equal(c.io_size, 64 << 20);
	set_bad(&c, "io_size", "32K");
	set_bad(&c, "io_size", "3M");

	set_ok(&c, "direct_io", "off");
	assert_int_equal(c.direct_io, TRI_OFF);
	set_ok(&c, "direct_io", "on");
	assert_int_equal(c.direct_io, TRI_ON);
	set_bad(&c, "direct_io", "yes");

	set_ok(&c, "lease_break_time", "0");
	assert_int_equal(c.lease_break_time, 0);
	set_ok(&c, "lease_break_time", "3600");
	assert_int_equal(c.lease_break_time, 3600);
	set_bad(&c, "lease_break_time", "3601");

	set_ok(&c, "lease_expire", "revoke");
	assert_int_equal(c.lease_expire, LEASE_EXPIRE_REVOKE);
	set_bad(&c, "lease_expire", "kill");

	set_ok(&c, "rescue_dir", "/tmp/rescue");
	assert_string_equal(c.rescue_dir, "/tmp/rescue");
	set_bad(&c, "rescue_dir", "relative/dir");
	char longpath[5000];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	{
		struct conf before = c;

		assert_int_equal(conf_set(&c, "rescue_dir", longpath, err, sizeof(err)), -EINVAL);
		assert_memory_equal(&before, &c, sizeof(c));
	}

	set_ok(&c, "log_level", "debug");
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	set_ok(&c, "log_level", "error");
	assert_int_equal(c.log_level, LOG_LVL_ERR);
	set_bad(&c, "log_level", "verbose");

	set_ok(&c, "shutdown_timeout", "0");
	assert_int_equal(c.shutdown_timeout, 0);
	set_bad(&c, "shutdown_timeout", "x");

	set_ok(&c, "passthrough", "off");
	assert_int_equal(c.passthrough, TRI_OFF);
	set_bad(&c, "passthrough", "never");

	set_ok(&c, "hugetlb_page_size", "1G");
	assert_int_equal(c.hugetlb_page_size, 1 << 30);
	set_ok(&c, "hugetlb_page_size", "2M");
	assert_int_equal(c.hugetlb_page_size, 2 << 20);
	set_bad(&c, "hugetlb_page_size", "4M");
	set_bad(&c, "hugetlb_page_size", "4K");
	set_bad(&c, "hugetlb_page_size", "big");

	set_ok(&c, "hugetlb_fallback", "no");
	assert_false(c.hugetlb_fallback);
	set_bad(&c, "hugetlb_fallback", "2");
}

static void test_unknown_key(void **state)
{
	struct conf c, before;

	conf_defaults(&c);
	before = c;
	assert_int_equal(conf_set(&c, "chunksize", "4K", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "chunksize"));
	assert_memory_equal(&before, &c, sizeof(c));
	assert_false(conf_is_key("chunksize"));
	assert_false(conf_is_key(""));
	assert_false(conf_is_key("allow_other"));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		assert_true(conf_is_key(keys[i].name));
}

/* Write @text to a temporary file; its path in @path (64 bytes). */
static void temp_conf(char *path, const char *text)
{
	strcpy(path, "/tmp/rdmafs-unit-conf.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Load @text: returns the error message ("" if it loaded). */
static const char *load(struct conf *c, const char *text, char *path)
{
	int r;

	temp_conf(path, text);
	err[0] = 0;
	r = conf_load_file(c, path, err, sizeof(err));
	unlink(path);
	if (r)
		assert_int_equal(r, -EINVAL);
	else
		assert_string_equal(err, "");
	return err;
}

static void expect_error(const char *text, int line, const char *what)
{
	char path[64], want[128];
	struct conf c, before;

	conf_defaults(&c);
	c.flush_interval = 3;	/* not a default: a load that reset the config shows */
	before = c;
	load(&c, text, path);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)))
		fail_msg("for %s: got '%s', expected it to start with '%s'", what, err, want);
	if (!strstr(err, what))
		fail_msg("got '%s', expected it to mention '%s'", err, what);
	if (memcmp(&before, &c, sizeof(c)))
		fail_msg("for %s: a file with an error changed the config", what);
}

static void test_file(void **state)
{
	char path[64];
	struct conf c;

	conf_defaults(&c);
	assert_string_equal(load(&c, "# comment\n; comment\n\nchunk_size = 16K\n"
				     "flush_interval=2\nstaging =  thp  \n", path), "");
	assert_int_equal(c.chunk_size, 16 << 10);
	assert_int_equal(c.flush_interval, 2);
	assert_int_equal(c.staging, STAGING_THP);

	expect_error("chunk_size = 16K\n\nflush_interval = soon\n", 3, "flush_interval");
	expect_error("flush_interval = 1\nnot a key value line\n", 2, "syntax error");
	expect_error("# x\nbogus_key = 1\n", 2, "bogus_key");
	expect_error("[section]\nchunk_size = 4K\n", 2, "section");
	expect_error("chunk_size =\n", 1, "no value");
	expect_error("chunk_size = 64K ; inline comment\nio_size = 1\n", 2, "io_size");
}

/* rdmafs.conf(5): '#' starts a comment, also after a value; indented lines are named. */
static void test_comments_and_indent(void **state)
{
	char path[64];
	struct conf c;

	conf_defaults(&c);
	assert_string_equal(load(&c, "chunk_size = 16K  # small chunks\n"
				     "flush_interval = 2\t# seconds\n"
				     "rescue_dir = /var/lib/a#b # '#' inside a word is kept\n"
				     "staging = thp # thp ; either comment\n"
				     "   # an indented comment\n"
				     "\t\n", path), "");
	assert_int_equal(c.chunk_size, 16 << 10);
	assert_int_equal(c.flush_interval, 2);
	assert_string_equal(c.rescue_dir, "/var/lib/a#b");
	assert_int_equal(c.staging, STAGING_THP);

	expect_error("chunk_size = 16K\n  flush_interval = 2\n", 2, "indented");
	expect_error("  chunk_size = 16K\n", 1, "indented");
	expect_error("flush_interval = soon # when\n", 1, "'soon'");
	expect_error("chunk_size = # nothing\n", 1, "no value");
	expect_error("garbage\n  chunk_size = 4K\n", 1, "syntax error");
	expect_error("flush_interval = x\n  chunk_size = 4K\n", 1, "flush_interval");
}

/* The first bad line is reported, whatever kind of error comes later. */
static void test_first_error_wins(void **state)
{
	expect_error("flush_interval = x\nchunk_size = 3\n", 1, "flush_interval");
	expect_error("flush_interval = x\ngarbage\n", 1, "flush_interval");
	expect_error("garbage\nflush_interval = x\n", 1, "syntax error");
	expect_error("a = 1\nb = 2\n", 1, "'a'");
}

static void test_missing_file(void **state)
{
	struct conf c;

	conf_defaults(&c);
	assert_int_equal(conf_load_file(&c, "/nonexistent/rdmafs.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/rdmafs.conf"));
	assert_int_equal(conf_load_file(&c, NULL, err, sizeof(err)), 0);
}

static void test_dump_roundtrip(void **state)
{
	char path[64], *text = NULL;
	size_t len = 0;
	struct conf c, d;
	FILE *f = open_memstream(&text, &len);

	conf_defaults(&c);
	set_ok(&c, "staging", "thp");
	set_ok(&c, "chunk_size", "8K");
	set_ok(&c, "rescue_dir", "/x/y");
	set_ok(&c, "flush_on_close", "no");
	set_ok(&c, "log_level", "debug");
	conf_dump(&c, f);
	fclose(f);
	conf_defaults(&d);
	assert_string_equal(load(&d, text, path), "");
	/* A percentage is dumped as bytes: equal after one round. */
	assert_memory_equal(&c, &d, sizeof(c));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_conf_is_defaults),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_comments_and_indent),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_dump_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
