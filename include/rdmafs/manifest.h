/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rdmafs/manifest.h - the MANIFEST of a rescue folder (written by the daemon when it cannot
 * commit at shutdown, read by `rdmafsctl replay`). Not installed; lib/manifest.c, pure.
 *
 * One record per line, fields separated by one space; a path is escaped so that any name
 * survives: every byte below 0x21, 0x7f and above, and '\' are written as \ooo (octal).
 *   # free text                                   (comment; also blank lines)
 *   rdmafs-rescue 2                               (first record: the format)
 *   root PATH DEV INO                             (the backing root: absolute path, identity)
 *   file NAME SIZE DEV INO UID BTIME_S BTIME_NS REL
 * NAME is "<digits>.data" in the folder, REL the file's path below the root ("/" if it had
 * none: unlinked). DEV INO UID BTIME identify the rescued file: replay writes only to that
 * same file, reached below the root without following any symlink. BTIME_S 0 and
 * BTIME_NS 0: the filesystem has no birth time.
 */
#ifndef RDMAFS_MANIFEST_H
#define RDMAFS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define RDMAFS_MANIFEST_VERSION 2
#define RDMAFS_MANIFEST_PATH_MAX 4096

enum rdmafs_manifest_kind {
	RDMAFS_MANIFEST_SKIP,		/* comment or blank line */
	RDMAFS_MANIFEST_FORMAT,		/* version */
	RDMAFS_MANIFEST_ROOT,		/* path, dev, ino */
	RDMAFS_MANIFEST_FILE,		/* everything */
};

struct rdmafs_manifest_rec {
	enum rdmafs_manifest_kind kind;
	unsigned version;
	char name[32];
	uint64_t size, dev, ino, uid;
	uint64_t btime_sec;
	uint32_t btime_nsec;
	char path[RDMAFS_MANIFEST_PATH_MAX];	/* unescaped; "" for a file without a path */
};

/*
 * Escape @in (a NUL-terminated path) into @out; returns the escaped length, or
 * -ENAMETOOLONG if @size is too small.
 */
int rdmafs_manifest_escape(const char *in, char *out, size_t size);

/*
 * Parse one line (@len bytes, without its '\n'; it may hold any bytes). Returns 0 with
 * @rec filled, or -EINVAL for anything malformed: unknown record, a field missing, extra
 * or not a number, a raw control byte, a bad escape or an escaped NUL, a NAME not
 * "<digits>.data", a root not absolute, a REL absolute or with a "." or ".." component.
 */
int rdmafs_manifest_parse(const char *line, size_t len, struct rdmafs_manifest_rec *rec);

#endif
