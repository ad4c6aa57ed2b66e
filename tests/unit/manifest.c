// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the rescue MANIFEST codec (lib/manifest.c): names with spaces, tabs and
 * newlines round-trip; malformed, absolute, ".." and unescaped records are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rdmafs/manifest.h"

static int parse(const char *line, struct rdmafs_manifest_rec *rec)
{
	return rdmafs_manifest_parse(line, strlen(line), rec);
}

static void test_round_trip(void **state)
{
	static const char *names[] = { "a b\tc\nd", "x\\y", "dir/\x7f\x01\xff", "-", "\xc3\xa9t\xc3\xa9" };
	static struct rdmafs_manifest_rec rec;
	char esc[256], line[512];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_true(rdmafs_manifest_escape(names[i], esc, sizeof(esc)) > 0);
		assert_null(strpbrk(esc, " \t\n"));
		snprintf(line, sizeof(line), "file 7.data 10 2049 12 1000 1700000000 5 %s", esc);
		assert_int_equal(parse(line, &rec), 0);
		assert_int_equal(rec.kind, RDMAFS_MANIFEST_FILE);
		assert_string_equal(rec.path, names[i]);
		assert_string_equal(rec.name, "7.data");
		assert_int_equal(rec.size, 10);
		assert_int_equal(rec.dev, 2049);
		assert_int_equal(rec.ino, 12);
		assert_int_equal(rec.uid, 1000);
		assert_int_equal(rec.btime_sec, 1700000000);
		assert_int_equal(rec.btime_nsec, 5);
	}
	assert_int_equal(rdmafs_manifest_escape("abcdef", esc, 4), -ENAMETOOLONG);
}

static void test_records(void **state)
{
	static struct rdmafs_manifest_rec rec;

	(void)state;
	assert_int_equal(parse("# comment", &rec), 0);
	assert_int_equal(rec.kind, RDMAFS_MANIFEST_SKIP);
	assert_int_equal(parse("", &rec), 0);
	assert_int_equal(parse("rdmafs-rescue 2", &rec), 0);
	assert_int_equal(rec.version, 2);
	assert_int_equal(parse("root /srv/a\\040b 2049 2", &rec), 0);
	assert_string_equal(rec.path, "/srv/a b");
	assert_int_equal(parse("file 1.data 0 1 2 3 0 0 /", &rec), 0);
	assert_string_equal(rec.path, "");	/* no path */
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"0.data\t100\t/etc/passwd",			/* format 1 */
		"file 1.data 10 1 2 3 0 0 /etc/passwd",		/* absolute */
		"file 1.data 10 1 2 3 0 0 ../x",
		"file 1.data 10 1 2 3 0 0 a/../../x",
		"file 1.data 10 1 2 3 0 0 a/./x",
		"file 1.data 10 1 2 3 0 0 a//x",
		"file 1.data 10 1 2 3 0 0 a/",
		"file 1.data 10 1 2 3 0 0 a\tb",		/* raw tab */
		"file 1.data 10 1 2 3 0 0 a\\000b",		/* escaped NUL */
		"file 1.data 10 1 2 3 0 0 a\\09",		/* bad escape */
		"file 1.data 10 1 2 3 0 0 a\\",
		"file 1.data 10 1 2 3 0 0 a b",			/* extra field */
		"file 1.data 10 1 2 3 0 0 a ",
		"file 1.data 10 1 2 3 0 0",			/* missing */
		"file  1.data 10 1 2 3 0 0 a",
		"file ../1.data 10 1 2 3 0 0 a",
		"file 1.dat 10 1 2 3 0 0 a",
		"file 1.data -1 1 2 3 0 0 a",
		"file 1.data 18446744073709551616 1 2 3 0 0 a",	/* 2^64 */
		"file 1.data 010 1 2 3 0 0 a",
		"file 1.data 10 1 2 3 0 1000000000 a",
		"root rel 1 2",
		"root /x 1",
		"rdmafs-rescue two",
		"unknown 1",
	};
	static struct rdmafs_manifest_rec rec;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &rec) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(rdmafs_manifest_parse("file 1.data 1 1 2 3 0 0 a\0b", 26, &rec), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
