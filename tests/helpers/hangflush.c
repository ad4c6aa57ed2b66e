// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-hangflush MOUNTPOINT: a FUSE server with one file, "f" (4 KiB of 'x'), that
 * never answers FLUSH. Whoever closes a descriptor of that file waits (uninterruptibly)
 * until the server dies or is unmounted. The sec_shutdown_flush test sends such
 * descriptors to rdmafs's control socket, as a hostile user would. Runs in the foreground
 * until SIGTERM or unmount.
 */
#define FUSE_USE_VERSION 317
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define FILE_SIZE 4096

static int fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino == FILE_INO) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = FILE_SIZE;
	} else {
		return -ENOENT;
	}
	return 0;
}

static void hf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .ino = FILE_INO, .attr_timeout = 60, .entry_timeout = 60 };

	if (parent != FUSE_ROOT_ID || strcmp(name, "f")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void hf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fill(ino, &st))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, 60);
}

static void hf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO)
		fuse_reply_err(req, EISDIR);
	else
		fuse_reply_open(req, fi);
}

static void hf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	static char buf[FILE_SIZE];

	(void)ino;
	(void)fi;
	memset(buf, 'x', sizeof(buf));
	if (off >= FILE_SIZE)
		size = 0;
	else if (size > (size_t)(FILE_SIZE - off))
		size = FILE_SIZE - off;
	fuse_reply_buf(req, buf + (off < FILE_SIZE ? off : 0), size);
}

/* The point of this server: FLUSH is never answered (the request is simply kept). */
static void hf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)req;
	(void)ino;
	(void)fi;
	fprintf(stderr, "hangflush: FLUSH received, not answering\n");
}

static void hf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = hf_lookup,
	.getattr = hf_getattr,
	.open = hf_open,
	.read = hf_read,
	.flush = hf_flush,
	.release = hf_release,
};

int main(int argc, char *argv[])
{
	char *args_v[] = { argv[0], "-o", "fsname=hangflush", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
	struct fuse_session *se;
	int r = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]);
		return 2;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, argv[1]))
		goto out_signals;
	fprintf(stderr, "hangflush: mounted on %s\n", argv[1]);
	r = fuse_session_loop(se) ? 1 : 0;	/* one thread: FLUSH waits forever, others not */
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return r;
}
