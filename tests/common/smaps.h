/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smaps.h - one reader of /proc/self/smaps for the test and benchmark helpers (mapcheck,
 * maptest, bench/staging_modes): what the kernel gave a mapping (huge pages, page size).
 */
#ifndef RDMAFS_TESTS_SMAPS_H
#define RDMAFS_TESTS_SMAPS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Sum of @key (in kB) over the smaps block of the mapping that starts at @addr, or
 * @absent if the block has no such line (or smaps cannot be read).
 */
static inline long smaps_field(const void *addr, const char *key, long absent)
{
	char line[512], start[32];
	size_t klen = strlen(key);
	long sum = absent, v;
	bool in = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return absent;
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *sp = strchr(line, ' ');

		if (sp && (!colon || sp < colon)) {	/* a mapping's header line */
			in = !strncmp(line, start, strlen(start));
			continue;
		}
		if (in && !strncmp(line, key, klen) && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%ld", &v) == 1) {
			sum = (found ? sum : 0) + v;
			found = true;
		}
	}
	fclose(f);
	return sum;
}

#endif
