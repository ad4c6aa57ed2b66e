// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * conf.c - owns the configuration: defaults, rdmafs.conf (parsed by inih) and -o
 * key=value overrides, merged into one struct conf that is read-only once running.
 */
#include "rdmafsd.h"

#include <ctype.h>
#include <fnmatch.h>
#include <ini.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const struct conf *cfg;

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->staging = STAGING_SHMEM;
	conf_parse_size("50%", true, &c->staging_budget);
	c->chunk_size = 64 << 10;
	c->flush_interval = 5;
	c->flush_on_close = FLUSH_CLOSE_NO;
	c->uring_depth = 8;
	c->io_size = 2 << 20;
	c->direct_io = TRI_AUTO;
	c->lease_break_time = 10;
	c->lease_expire = LEASE_EXPIRE_DENY;
	snprintf(c->rescue_dir, sizeof(c->rescue_dir), "/var/lib/rdmafs/rescue");
	c->log_level = LOG_LVL_INFO;
	c->shutdown_timeout = 30;
	c->passthrough = TRI_AUTO;
	c->hugetlb_page_size = 2 << 20;
	c->hugetlb_fallback = true;
	c->restart = true;
}

int conf_parse_size(const char *s, bool allow_pct, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == '%') {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

		if (!allow_pct || end[1] || v == 0 || v > 100 || pages <= 0)
			return -EINVAL;
		*out = (uint64_t)pages * psz * v / 100;	/* exact: 50% is half */
		return 0;
	}
	unsigned shift = 0;

	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(s, no[i]))
			return *out = false, 0;
	}
	return -EINVAL;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_enum(const char *s, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const staging_names[] = { "shmem", "thp", "hugetlb", "none" };
static const char *const expire_names[] = { "deny", "revoke" };
static const char *const tri_names[] = { "auto", "on", "off" };
static const char *const enforce_names[] = { "strict", "deferred" };
static const char *const close_names[] = { "no", "async", "yes" };
static const char *const level_names[] = { "error", "warning", "notice", "info", "debug" };

const char *conf_staging_name(enum staging_mode m)
{
	return staging_names[m];
}

enum key_type { K_SIZE, K_SIZE_PCT, K_POW2, K_UINT, K_BOOL, K_ENUM, K_PATH, K_RULES };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	unsigned min, max;			/* K_UINT; K_POW2: min/max in KiB */
	const char *const *names;		/* K_ENUM */
	size_t nnames;
	const char *help;
};

#define OFF(f) offsetof(struct conf, f)
#define ENUM(a) a, ARRAY_SIZE(a)

static const struct key keys[] = {
	{ "staging", K_ENUM, OFF(staging), 0, 0, ENUM(staging_names),
	  "shmem | thp | hugetlb | none" },
	{ "staging_paths", K_RULES, OFF(staging_rules), 0, 0, NULL, 0,
	  "PATTERN:MODE, ... with MODE shmem | thp | hugetlb | none" },
	{ "staging_budget", K_SIZE_PCT, OFF(staging_budget), 0, 0, NULL, 0, "size or % of RAM" },
	{ "budget_enforce", K_ENUM, OFF(budget_enforce), 0, 0, ENUM(enforce_names),
	  "strict | deferred" },
	{ "chunk_size", K_POW2, OFF(chunk_size), 4, 64 << 10, NULL, 0, "power of two, 4K..64M" },
	{ "flush_interval", K_UINT, OFF(flush_interval), 0, 86400, NULL, 0, "seconds, 0 = off" },
	{ "flush_on_close", K_ENUM, OFF(flush_on_close), 0, 0, ENUM(close_names),
	  "no | async | yes" },
	{ "uring_depth", K_UINT, OFF(uring_depth), 1, 256, NULL, 0, "1..256" },
	{ "io_size", K_POW2, OFF(io_size), 64, 64 << 10, NULL, 0, "power of two, 64K..64M" },
	{ "direct_io", K_ENUM, OFF(direct_io), 0, 0, ENUM(tri_names), "auto | on | off" },
	{ "lease_break_time", K_UINT, OFF(lease_break_time), 0, 3600, NULL, 0, "seconds" },
	{ "lease_expire", K_ENUM, OFF(lease_expire), 0, 0, ENUM(expire_names), "deny | revoke" },
	{ "rescue_dir", K_PATH, OFF(rescue_dir), 0, 0, NULL, 0, "absolute path" },
	{ "log_level", K_ENUM, OFF(log_level), 0, 0, ENUM(level_names),
	  "error | warning | notice | info | debug" },
	{ "shutdown_timeout", K_UINT, OFF(shutdown_timeout), 0, 86400, NULL, 0, "seconds" },
	{ "passthrough", K_ENUM, OFF(passthrough), 0, 0, ENUM(tri_names), "auto | on | off" },
	{ "hugetlb_page_size", K_SIZE, OFF(hugetlb_page_size), 0, 0, NULL, 0, "2M | 1G" },
	{ "hugetlb_fallback", K_BOOL, OFF(hugetlb_fallback), 0, 0, NULL, 0, "yes | no" },
	{ "restart", K_BOOL, OFF(restart), 0, 0, NULL, 0, "on | off" },
};

/*
 * "PATTERN:MODE, PATTERN:MODE, ..." (an empty value clears the list); ';' separates too,
 * for -o where ',' splits options. A pattern may not contain ',', ';' or ':'. Parsed into
 * a copy so that a bad value changes nothing.
 */
static int parse_rules(const char *s, struct conf *c, char *err, size_t errlen)
{
	struct staging_rule rules[CONF_MAX_STAGING_RULES];
	unsigned n = 0;

	while (*s) {
		const char *end = s + strcspn(s, ",;"), *colon;
		size_t plen;
		int mode;
		char name[16];

		while (s < end && isspace((unsigned char)*s))
			s++;
		if (s == end) {		/* empty item: ",," or a trailing comma */
			s = *end ? end + 1 : end;
			continue;
		}
		colon = memchr(s, ':', end - s);
		if (!colon || colon == s || n == ARRAY_SIZE(rules))
			return -EINVAL;
		plen = colon - s;
		while (plen && isspace((unsigned char)s[plen - 1]))
			plen--;
		if (plen >= sizeof(rules[n].pattern))
			return -EINVAL;
		colon++;
		while (colon < end && isspace((unsigned char)*colon))
			colon++;
		size_t mlen = end - colon;

		while (mlen && isspace((unsigned char)colon[mlen - 1]))
			mlen--;
		if (!mlen || mlen >= sizeof(name))
			return -EINVAL;
		memcpy(name, colon, mlen);
		name[mlen] = 0;
		if (parse_enum(name, staging_names, ARRAY_SIZE(staging_names), &mode)) {
			snprintf(err, errlen, "unknown mode '%s' in staging_paths item '%.*s' "
				 "(expected shmem | thp | hugetlb | none)", name, (int)(end - s), s);
			return -EINVAL;
		}
		memcpy(rules[n].pattern, s, plen);
		rules[n].pattern[plen] = 0;
		rules[n].mode = mode;
		n++;
		s = *end ? end + 1 : end;
	}
	memcpy(c->staging_rules, rules, n * sizeof(rules[0]));
	c->nstaging_rules = n;
	return 0;
}

/*
 * A pattern with a '/' matches the whole path below the mount root ("/data/huge/x"; '*'
 * crosses directories); a pattern without one matches the file name, in any directory.
 */
enum staging_mode conf_staging_mode_for(const struct conf *c, const char *relpath)
{
	const char *base = strrchr(relpath, '/');

	base = base ? base + 1 : relpath;
	for (unsigned i = 0; i < c->nstaging_rules; i++) {
		const struct staging_rule *r = &c->staging_rules[i];
		bool path = strchr(r->pattern, '/') != NULL;

		if (fnmatch(r->pattern, path ? relpath : base, 0) == 0)
			return r->mode;
	}
	return c->staging;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

bool conf_is_key(const char *key)
{
	return find_key(key) != NULL;
}

int conf_set(struct conf *c, const char *name, const char *value, char *err, size_t errlen)
{
	const struct key *k = find_key(name);
	char *field = (char *)c + (k ? k->off : 0);
	uint64_t sz;
	int r = 0, e;

	if (!k) {
		snprintf(err, errlen, "unknown key '%s'", name);
		return -ENOENT;
	}
	if (!value)
		value = "";
	while (isspace((unsigned char)*value))
		value++;
	switch (k->type) {
	case K_SIZE:
	case K_SIZE_PCT:
		r = conf_parse_size(value, k->type == K_SIZE_PCT, &sz);
		if (!r && sz == 0)
			r = -EINVAL;
		/* Validate before storing: a rejected value must leave the config as it was. */
		if (!r && !strcmp(name, "hugetlb_page_size") && sz != 2 << 20 && sz != 1 << 30)
			r = -EINVAL;
		if (!r)
			*(uint64_t *)field = sz;
		break;
	case K_POW2:
		r = conf_parse_size(value, false, &sz);
		if (!r && (sz < (uint64_t)k->min << 10 || sz > (uint64_t)k->max << 10 ||
			   (sz & (sz - 1))))
			r = -EINVAL;
		if (!r)
			*(uint32_t *)field = sz;
		break;
	case K_UINT:
		r = parse_uint(value, k->min, k->max, (unsigned *)field);
		break;
	case K_BOOL:
		r = parse_bool(value, (bool *)field);
		break;
	case K_ENUM:
		r = parse_enum(value, k->names, k->nnames, &e);
		if (r && k->names == close_names) {	/* flush_on_close was yes | no */
			bool b;

			r = parse_bool(value, &b);
			if (!r)
				e = b ? FLUSH_CLOSE_YES : FLUSH_CLOSE_NO;
		}
		if (!r)
			*(int *)field = e;
		break;
	case K_PATH:
		if (value[0] != '/' || strlen(value) >= sizeof(c->rescue_dir))
			r = -EINVAL;
		else
			strcpy(field, value);
		break;
	case K_RULES:
		err[0] = 0;
		r = parse_rules(value, c, err, errlen);
		if (r && err[0])
			return -EINVAL;	/* said which item */
		break;
	}
	if (r)
		snprintf(err, errlen, "bad value '%s' for %s (expected %s)", value, name, k->help);
	return r ? -EINVAL : 0;
}

struct load_ctx {
	struct conf *c;
	FILE *f;
	int line;		/* lines read so far: inih's line number of the current line */
	char msg[512];		/* the first error the handler saw ... */
	int msg_line;		/* ... and its line; inih returns the first failing line */
	bool failed;
};

/*
 * Count lines as inih reads them, so the handler knows where it is, and give inih the
 * syntax rdmafs.conf(5) describes whatever inih was built with (Debian's inih takes only
 * ';' as an inline comment and reads an indented line as the previous key's continuation):
 * '#' after blank space starts a comment, and an indented line is an error of its own line.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *lc = stream;
	char *s = fgets(str, num, lc->f);
	char *p;

	if (!s)
		return NULL;
	lc->line++;
	for (p = s; *p; p++) {
		if (*p == '#' && (p == s || isblank((unsigned char)p[-1]))) {
			strcpy(p, "\n");
			break;
		}
	}
	if (isblank((unsigned char)s[0])) {
		p = s + strspn(s, " \t\r\n\v\f");
		if (*p && *p != ';') {
			if (!lc->failed) {
				lc->failed = true;
				lc->msg_line = lc->line;
				snprintf(lc->msg, sizeof(lc->msg),
					 "indented line (a key starts at the beginning of a line)");
			}
			strcpy(s, "[\n");	/* a syntax error at this line for inih */
		}
	}
	return s;
}

/* inih 55 does not pass line numbers: ini_parse_file() returns the first failing one. */
static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *lc = user;

	if (lc->failed)		/* keep the first error: inih goes on after one */
		return 0;
	lc->failed = true;
	lc->msg_line = lc->line;
	if (section[0])
		snprintf(lc->msg, sizeof(lc->msg), "sections are not used ('[%s]')", section);
	else if ((!value || !value[0]) && strcmp(name, "staging_paths"))
		snprintf(lc->msg, sizeof(lc->msg), "'%s' has no value", name);
	else if (conf_set(lc->c, name, value, lc->msg, sizeof(lc->msg)) == 0)
		lc->failed = false;
	return !lc->failed;
}

int conf_load_file(struct conf *c, const char *file, char *err, size_t errlen)
{
	struct conf tmp = *c;	/* bad input changes nothing: *c is set only on success */
	struct load_ctx lc = { .c = &tmp };
	FILE *f;
	int r;

	if (!file)
		return 0;
	f = fopen(file, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(-r));
		return r;
	}
	lc.f = f;
	r = ini_parse_stream(read_line, &lc, on_ini_line, &lc);
	fclose(f);
	if (r == 0) {
		*c = tmp;
		return 0;
	}
	/* A syntax error on an earlier line than the handler's first error comes first. */
	if (r > 0)
		snprintf(err, errlen, "%s:%d: %s", file, r,
			 lc.failed && lc.msg_line == r ? lc.msg
						       : "syntax error (expected 'key = value')");
	else
		snprintf(err, errlen, "%s: cannot parse (out of memory)", file);
	return -EINVAL;
}

void conf_dump(const struct conf *c, FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)c + k->off;

		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case K_SIZE:
		case K_SIZE_PCT:
			fprintf(f, "%" PRIu64 "\n", *(const uint64_t *)field);
			break;
		case K_POW2:
			fprintf(f, "%" PRIu32 "\n", *(const uint32_t *)field);
			break;
		case K_UINT:
			fprintf(f, "%u\n", *(const unsigned *)field);
			break;
		case K_BOOL:
			fprintf(f, "%s\n", *(const bool *)field ? "yes" : "no");
			break;
		case K_ENUM:
			fprintf(f, "%s\n", k->names[*(const int *)field]);
			break;
		case K_PATH:
			fprintf(f, "%s\n", field);
			break;
		case K_RULES:
			for (unsigned j = 0; j < c->nstaging_rules; j++)
				fprintf(f, "%s%s:%s", j ? ", " : "", c->staging_rules[j].pattern,
					staging_names[c->staging_rules[j].mode]);
			fprintf(f, "\n");
			break;
		}
	}
}
