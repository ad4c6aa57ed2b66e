/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf.h - rdmafs.conf and -o overrides (conf.c): one const config after start-up.
 */
#ifndef RDMAFS_CONF_H
#define RDMAFS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * STAGING_NONE (staging_paths rule or the mount's staging): the file is never staged;
 * every open uses the backing file itself (passthrough where the kernel offers it).
 */
enum staging_mode { STAGING_SHMEM, STAGING_THP, STAGING_HUGETLB, STAGING_NONE };
enum lease_expire { LEASE_EXPIRE_DENY, LEASE_EXPIRE_REVOKE };
enum tristate { TRI_AUTO, TRI_ON, TRI_OFF };
/* flush_on_close: what close(2) of a writable descriptor does (see rdmafs(8)). */
enum flush_close { FLUSH_CLOSE_NO, FLUSH_CLOSE_ASYNC, FLUSH_CLOSE_YES };
/* budget_enforce: when shmem staging growth by write(2) is charged (see rdmafs.conf(5)). */
enum budget_enforce { BUDGET_STRICT, BUDGET_DEFERRED };
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* One staging_paths rule: files whose path matches @pattern are staged in @mode. */
struct staging_rule {
	char pattern[256];
	enum staging_mode mode;
};

#define CONF_MAX_STAGING_RULES 32

struct conf {
	enum staging_mode staging;
	/* staging_paths: first match wins, no match -> staging */
	struct staging_rule staging_rules[CONF_MAX_STAGING_RULES];
	unsigned nstaging_rules;
	uint64_t staging_budget;	/* bytes; resolved from a size or a % of RAM */
	enum budget_enforce budget_enforce;
	uint32_t chunk_size;		/* bytes, power of two, >= 4 KiB */
	unsigned flush_interval;	/* seconds; 0 = no periodic write-back */
	enum flush_close flush_on_close;
	unsigned uring_depth;		/* commit writes in flight per file */
	uint32_t io_size;		/* bytes per commit write / fill read */
	enum tristate direct_io;
	unsigned lease_break_time;	/* seconds */
	enum lease_expire lease_expire;
	char rescue_dir[4096];
	enum log_level log_level;
	unsigned shutdown_timeout;	/* seconds of retries before rescue at exit */
	enum tristate passthrough;
	uint64_t hugetlb_page_size;	/* bytes */
	bool hugetlb_fallback;		/* fall back to shmem when the pool is short */
	bool restart;			/* survive the daemon's death (doc/restart.md) */
};

/* Defaults; conf_load() starts from these. */
void conf_defaults(struct conf *c);
/*
 * Load FILE (NULL: no file) into @c. Returns 0 or -errno; on a bad line writes
 * "FILE:LINE: message" to @err (size @errlen).
 */
int conf_load_file(struct conf *c, const char *file, char *err, size_t errlen);
/* Set one key from a string; 0, -ENOENT for an unknown key, -EINVAL for a bad value. */
int conf_set(struct conf *c, const char *key, const char *value, char *err, size_t errlen);
/* True if @key is a config key (used to sort -o options from libfuse's). */
bool conf_is_key(const char *key);
const char *conf_staging_name(enum staging_mode m);
/*
 * The staging mode of the file at @relpath ("/dir/name", relative to the mount root):
 * the first staging_paths rule that matches, else the mount's staging.
 */
enum staging_mode conf_staging_mode_for(const struct conf *c, const char *relpath);
/* Parse "64K", "1G", "50%" (of physical memory when @allow_pct). */
int conf_parse_size(const char *s, bool allow_pct, uint64_t *out);
void conf_dump(const struct conf *c, FILE *f);

extern const struct conf *cfg;	/* set once in main before any thread starts */

#endif
