// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * version.c - the daemon's version as `rdmafs --version` and `rdmafsctl stat --json`
 * (version) show it: the meson project version, and `git describe` of the tree it was
 * built from when that was a git checkout.
 */
#include "rdmafsd.h"
#include "rdmafs_git.h"

#include <stdio.h>
#include <string.h>

const char *rdmafs_version(void)
{
	static char v[48];

	if (!v[0]) {
		if (RDMAFS_GIT_DESCRIBE[0] && strcmp(RDMAFS_GIT_DESCRIBE, RDMAFS_VERSION))
			snprintf(v, sizeof(v), "%s (%s)", RDMAFS_VERSION, RDMAFS_GIT_DESCRIBE);
		else
			snprintf(v, sizeof(v), "%s", RDMAFS_VERSION);
	}
	return v;
}
