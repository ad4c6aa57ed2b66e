// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * logreplay.c - reads the log a dm-log-writes target recorded and replays a range of it
 * onto a device or an image file, for the crash-consistency harness (tests/vm/guest/crash_*).
 *
 *   rdmafs-logreplay LOG marks                  entry count, then "mark INDEX NAME" lines
 *   rdmafs-logreplay LOG list                   every entry: index, flags, sector, count
 *   rdmafs-logreplay LOG replay TARGET FROM TO  apply entries FROM <= i < TO to TARGET
 *
 * The on-disk format is the kernel's (Documentation/admin-guide/device-mapper/
 * log-writes.rst): block 0 of the log holds the super (magic, version, entry count, the
 * data device's logical block size); each entry is one block holding its header (the
 * target sector and sector count in blocks, flags, data length; a mark's name follows
 * the header), then, for a write, nr_sectors blocks of data. Entries are in the order the
 * writes completed; a prefix of the log is a state the disk could have been in after a
 * power cut. A discard is replayed as zeros (a hole punched in an image file); flushes
 * and FUA change no content.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LW_FLUSH (1u << 0)
#define LW_FUA (1u << 1)
#define LW_DISCARD (1u << 2)
#define LW_MARK (1u << 3)
#define LW_MAGIC 0x6a736677736872ull
#define LW_VERSION 1

struct lw_super {	/* little endian on disk */
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct lw_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

struct log {
	int fd;
	uint64_t nr_entries;
	uint32_t bs;		/* the data device's logical block size */
	uint64_t pos;		/* byte offset of the next entry header */
	uint64_t index;		/* its index */
	char *blk;		/* one block */
};

static int log_open(struct log *l, const char *path)
{
	struct lw_super s;

	l->fd = open(path, O_RDONLY);
	if (l->fd < 0)
		return -errno;
	if (pread(l->fd, &s, sizeof(s), 0) != sizeof(s))
		return -EIO;
	if (le64toh(s.magic) != LW_MAGIC || le64toh(s.version) != LW_VERSION)
		return -EINVAL;
	l->nr_entries = le64toh(s.nr_entries);
	l->bs = le32toh(s.sectorsize);
	if (l->bs < 512 || l->bs > 65536 || (l->bs & (l->bs - 1)))
		return -EINVAL;
	l->blk = malloc(l->bs);
	if (!l->blk)
		return -ENOMEM;
	l->pos = l->bs;
	l->index = 0;
	return 0;
}

/* Reads the header of entry l->index into @e (and its mark name into l->blk). */
static int log_entry(struct log *l, struct lw_entry *e)
{
	if (pread(l->fd, l->blk, l->bs, l->pos) != (ssize_t)l->bs)
		return -EIO;
	memcpy(e, l->blk, sizeof(*e));
	e->sector = le64toh(e->sector);
	e->nr_sectors = le64toh(e->nr_sectors);
	e->flags = le64toh(e->flags);
	e->data_len = le64toh(e->data_len);
	if ((e->flags & LW_MARK) && e->data_len >= l->bs - sizeof(*e))
		return -EINVAL;
	return 0;
}

/* Past the entry just read: its header block, and its data unless it is a discard. */
static void log_next(struct log *l, const struct lw_entry *e)
{
	l->pos += l->bs;
	if (!(e->flags & LW_DISCARD))
		l->pos += e->nr_sectors * l->bs;
	l->index++;
}

static int cmd_list(struct log *l)
{
	struct lw_entry e;
	int r;

	while (l->index < l->nr_entries) {
		r = log_entry(l, &e);
		if (r)
			return r;
		printf("%" PRIu64 " %s%s%s%s sector %" PRIu64 " count %" PRIu64, l->index,
		       e.flags & LW_FLUSH ? "F" : "-", e.flags & LW_FUA ? "U" : "-",
		       e.flags & LW_DISCARD ? "D" : "-", e.flags & LW_MARK ? "M" : "-",
		       e.sector, e.nr_sectors);
		if (e.flags & LW_MARK)
			printf(" %.*s", (int)e.data_len, l->blk + sizeof(e));
		putchar('\n');
		log_next(l, &e);
	}
	return 0;
}

static int cmd_marks(struct log *l)
{
	struct lw_entry e;
	uint64_t writes = 0, bytes = 0, flushes = 0;
	int r;

	printf("entries %" PRIu64 " blocksize %u\n", l->nr_entries, l->bs);
	while (l->index < l->nr_entries) {
		r = log_entry(l, &e);
		if (r)
			return r;
		if (e.flags & LW_MARK)
			printf("mark %" PRIu64 " %.*s\n", l->index, (int)e.data_len,
			       l->blk + sizeof(e));
		else if (!(e.flags & LW_DISCARD) && e.nr_sectors) {
			writes++;
			bytes += e.nr_sectors * l->bs;
		}
		if (e.flags & (LW_FLUSH | LW_FUA))
			flushes++;
		log_next(l, &e);
	}
	printf("writes %" PRIu64 " bytes %" PRIu64 " flushes %" PRIu64 "\n", writes, bytes,
	       flushes);
	return 0;
}

/* Zeros @len bytes at @off of @fd: a punched hole in a file, BLKZEROOUT on a device. */
static int zero_range(int fd, bool blockdev, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	static char zeros[65536];

	if (blockdev ? !ioctl(fd, BLKZEROOUT, range) :
		       !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);

		if (pwrite(fd, zeros, n, off) != (ssize_t)n)
			return -errno;
		off += n;
		len -= n;
	}
	return 0;
}

static int cmd_replay(struct log *l, const char *target, uint64_t from, uint64_t to)
{
	uint64_t applied = 0, bytes = 0;
	struct lw_entry e;
	struct stat sb;
	char *buf = NULL;
	size_t cap = 0;
	int fd, r = 0;

	if (to > l->nr_entries)
		return -ERANGE;
	fd = open(target, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	while (l->index < to) {
		r = log_entry(l, &e);
		if (r)
			goto out;
		if (l->index < from || (e.flags & LW_MARK) || !e.nr_sectors)
			goto next;
		uint64_t off = e.sector * l->bs, len = e.nr_sectors * l->bs;

		if (e.flags & LW_DISCARD) {
			r = zero_range(fd, S_ISBLK(sb.st_mode), off, len);
			if (r)
				goto out;
		} else {
			if (len > cap) {
				free(buf);
				buf = malloc(len);
				if (!buf) {
					r = -ENOMEM;
					goto out;
				}
				cap = len;
			}
			if (pread(l->fd, buf, len, l->pos + l->bs) != (ssize_t)len ||
			    pwrite(fd, buf, len, off) != (ssize_t)len) {
				r = errno ? -errno : -EIO;
				goto out;
			}
			bytes += len;
		}
		applied++;
next:
		log_next(l, &e);
	}
	if (fsync(fd) < 0)
		r = -errno;
	printf("replayed %" PRIu64 " entries (%" PRIu64 " bytes written) up to entry %" PRIu64
	       "\n", applied, bytes, to);
out:
	free(buf);
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	struct log l = { .fd = -1 };
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: %s LOG marks|list\n"
			"       %s LOG replay TARGET FROM TO\n", argv[0], argv[0]);
		return 2;
	}
	r = log_open(&l, argv[1]);
	if (r) {
		fprintf(stderr, "logreplay: %s: not a dm-log-writes log: %s\n", argv[1],
			strerror(-r));
		return 1;
	}
	if (!strcmp(argv[2], "marks") && argc == 3)
		r = cmd_marks(&l);
	else if (!strcmp(argv[2], "list") && argc == 3)
		r = cmd_list(&l);
	else if (!strcmp(argv[2], "replay") && argc == 6)
		r = cmd_replay(&l, argv[3], strtoull(argv[4], NULL, 0),
			       strtoull(argv[5], NULL, 0));
	else
		r = -EINVAL;
	if (r)
		fprintf(stderr, "logreplay: %s %s: %s\n", argv[1], argv[2], strerror(-r));
	free(l.blk);
	close(l.fd);
	return r ? 1 : 0;
}
