// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the rescue MANIFEST line parser (rdmafs_manifest_parse) that
 * `rdmafsctl replay` runs as root on a folder's MANIFEST, on arbitrary bytes. What it
 * accepts must be what replay relies on, and a path it returns must escape back to the
 * same field (names with newlines, tabs and spaces survive a round trip).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdmafs/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rel(const char *p)
{
	if (p[0] == '/' || strstr(p, "//") || !strcmp(p, "..") || !strncmp(p, "../", 3) ||
	    strstr(p, "/../") || (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/..")))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rdmafs_manifest_rec rec, again;
	static char esc[4 * RDMAFS_MANIFEST_PATH_MAX + 64], line[sizeof(esc) + 64];
	char *copy = malloc(size ? size : 1);	/* exact size: ASan sees any overread */
	int r;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	r = rdmafs_manifest_parse(copy, size, &rec);
	if (r != 0 && r != -22)
		abort();
	if (r == 0 && rec.kind == RDMAFS_MANIFEST_FILE) {
		if (strlen(rec.name) < 6 || strcmp(rec.name + strlen(rec.name) - 5, ".data") ||
		    strchr(rec.name, '/') || rec.btime_nsec > 999999999)
			abort();
		if (rec.path[0]) {
			check_rel(rec.path);
			/* Round trip: the escaped path parses back to the same bytes. */
			if (rdmafs_manifest_escape(rec.path, esc, sizeof(esc)) < 0)
				abort();
			int n = snprintf(line, sizeof(line), "file 1.data 0 0 0 0 0 0 %s", esc);

			if (n < 0 || (size_t)n >= sizeof(line) ||
			    rdmafs_manifest_parse(line, (size_t)n, &again) ||
			    strcmp(again.path, rec.path))
				abort();
		}
	}
	if (r == 0 && rec.kind == RDMAFS_MANIFEST_ROOT && rec.path[0] != '/')
		abort();
	free(copy);
	return 0;
}
