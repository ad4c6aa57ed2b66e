// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * manifest.c - owns the rescue MANIFEST codec (include/rdmafs/manifest.h): escaping and
 * a strict line parser. Pure functions, no I/O; linked into the daemon and rdmafsctl,
 * unit-tested and fuzzed.
 */
#include "rdmafs/manifest.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool needs_escape(unsigned char c)
{
	return c < 0x21 || c >= 0x7f || c == '\\';
}

int rdmafs_manifest_escape(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (needs_escape(*p)) {
			if (n + 4 >= size)
				return -ENAMETOOLONG;
			out[n++] = '\\';
			out[n++] = (char)('0' + (*p >> 6));
			out[n++] = (char)('0' + ((*p >> 3) & 7));
			out[n++] = (char)('0' + (*p & 7));
		} else {
			if (n + 1 >= size)
				return -ENAMETOOLONG;
			out[n++] = (char)*p;
		}
	}
	if (n >= size)
		return -ENAMETOOLONG;
	out[n] = 0;
	return (int)n;
}

/* A cursor over the line's fields. */
struct cur {
	const char *p, *end;
};

/* The next field: [*s, *s + *n); false if there is none. */
static bool field(struct cur *c, const char **s, size_t *n)
{
	const char *q;

	if (c->p >= c->end)
		return false;
	q = memchr(c->p, ' ', (size_t)(c->end - c->p));
	if (!q)
		q = c->end;
	if (q == c->p)
		return false;	/* empty field: two spaces, or a leading one */
	*s = c->p;
	*n = (size_t)(q - c->p);
	c->p = q == c->end ? q : q + 1;
	if (q != c->end && c->p == c->end)
		return false;	/* a trailing space */
	return true;
}

static bool is_field(struct cur *c, const char *want)
{
	const char *s;
	size_t n;

	return field(c, &s, &n) && n == strlen(want) && !memcmp(s, want, n);
}

static bool number(struct cur *c, uint64_t *v)
{
	const char *s;
	size_t n;

	if (!field(c, &s, &n) || n > 20 || (n > 1 && s[0] == '0'))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || *v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return true;
}

/* An escaped string into @out (NUL-terminated). */
static bool string(struct cur *c, char *out, size_t size)
{
	const char *s;
	size_t n, o = 0;

	if (!field(c, &s, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x21 || ch == 0x7f)
			return false;
		if (ch == '\\') {
			if (n - i < 4 || s[i + 1] < '0' || s[i + 1] > '3' || s[i + 2] < '0' ||
			    s[i + 2] > '7' || s[i + 3] < '0' || s[i + 3] > '7')
				return false;
			ch = (unsigned char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
					     (s[i + 3] - '0'));
			if (!ch)
				return false;
			i += 3;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = (char)ch;
	}
	out[o] = 0;
	return true;
}

/* A path below the root: relative, no empty, "." or ".." component. */
static bool rel_ok(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");

		if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
		if (*s == '/' && !*++s)
			return false;	/* trailing slash */
	}
	return true;
}

static bool name_ok(const char *s)
{
	size_t d = strspn(s, "0123456789");

	return d > 0 && d < 12 && !strcmp(s + d, ".data");
}

int rdmafs_manifest_parse(const char *line, size_t len, struct rdmafs_manifest_rec *rec)
{
	struct cur c = { line, line + len };
	uint64_t v;

	memset(rec, 0, sizeof(*rec));
	if (memchr(line, 0, len) || memchr(line, '\n', len))
		return -EINVAL;
	if (!len || line[0] == '#') {
		rec->kind = RDMAFS_MANIFEST_SKIP;
		return 0;
	}
	if (len >= 14 && !memcmp(line, "rdmafs-rescue ", 14)) {
		c.p += 14;
		if (!number(&c, &v) || v > 1000 || c.p != c.end)
			return -EINVAL;
		rec->kind = RDMAFS_MANIFEST_FORMAT;
		rec->version = (unsigned)v;
		return 0;
	}
	if (len >= 5 && !memcmp(line, "root ", 5)) {
		c.p += 5;
		if (!string(&c, rec->path, sizeof(rec->path)) || rec->path[0] != '/' ||
		    !number(&c, &rec->dev) || !number(&c, &rec->ino) || c.p != c.end)
			return -EINVAL;
		rec->kind = RDMAFS_MANIFEST_ROOT;
		return 0;
	}
	if (!is_field(&c, "file") || !string(&c, rec->name, sizeof(rec->name)) ||
	    !name_ok(rec->name) || !number(&c, &rec->size) || !number(&c, &rec->dev) ||
	    !number(&c, &rec->ino) || !number(&c, &rec->uid) || !number(&c, &rec->btime_sec) ||
	    !number(&c, &v) || v > 999999999)
		return -EINVAL;
	rec->btime_nsec = (uint32_t)v;
	if (c.end - c.p == 1 && *c.p == '/') {
		rec->path[0] = 0;	/* no path (a relative one never is "/") */
	} else if (!string(&c, rec->path, sizeof(rec->path)) || !rel_ok(rec->path)) {
		return -EINVAL;
	}
	if (rec->path[0] && c.p != c.end)
		return -EINVAL;
	rec->kind = RDMAFS_MANIFEST_FILE;
	return 0;
}
