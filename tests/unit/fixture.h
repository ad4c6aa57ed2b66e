/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/fixture.h - the daemon set-up the staging, commit and budget unit tests
 * share: a config (cfg), logging, staging's eviction policy (budget), and a backing folder
 * DIR = /tmp/rdmafs-unit-NAME.XXXXXX as the inode table's root, with files made in it.
 * Include after cmocka.h and the daemon headers.
 */
#ifndef RDMAFS_UNIT_FIXTURE_H
#define RDMAFS_UNIT_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct conf config;
static char dir[64];

/* config.@key = @value, or the test fails. */
static inline void set(const char *key, const char *value)
{
	char err[256];

	if (conf_set(&config, key, value, err, sizeof(err)))
		fail_msg("conf_set %s=%s: %s", key, value, err);
}

/* After conf_defaults(&config) and set(): cfg, logging, the policy, DIR and the table. */
static inline void fixture_start(const char *name)
{
	cfg = &config;
	log_init(cfg->log_level, false);
	budget_init(NULL);	/* staging's eviction policy */
	snprintf(dir, sizeof(dir), "/tmp/rdmafs-unit-%s.XXXXXX", name);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(inode_table_init(dir), 0);
}

static inline int fixture_stop(void)
{
	char cmd[128];

	inode_table_destroy();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* DIR/@name holding the @size bytes at @buf; returns its inode (one lookup). */
static inline struct inode *fixture_file(const char *name, const void *buf, size_t size)
{
	char path[160];
	struct inode *ino;
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	fd = openat(inode_root()->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	ino = inode_lookup_add(fd, &sb);
	assert_non_null(ino);
	return ino;
}

#endif
