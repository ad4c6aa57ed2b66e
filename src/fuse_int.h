/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_int.h - private to the FUSE op files (fuse_ops.c, fuse_dir.c, fuse_file.c,
 * fuse_xattr.c, fuse_common.c): the ops each file serves to the op table, and the
 * helpers they share. Nothing outside these files includes it.
 */
#ifndef RDMAFS_FUSE_INT_H
#define RDMAFS_FUSE_INT_H

#include "rdmafsd.h"

#include <fuse_lowlevel.h>

static const double attr_timeout = 1.0, entry_timeout = 1.0;

static inline struct inode *ino_of(fuse_ino_t i)
{
	return inode_get(i);
}

/*
 * The inode's O_PATH fd for one call (see inode_fd()), or -errno; give it back with
 * inode_fd_put(). The fd of an inode is not kept open: it is cached and may be reopened.
 */
static inline int ifd(struct inode *ino)
{
	return inode_fd(ino);
}

/* fuse_fh.c: file handles as slots of a table that outlives the daemon (restart.h) */
enum fh_kind { FH_FILE = 1, FH_DIR = 2 };
struct fh_rec {
	uint64_t nodeid;
	uint32_t kind;		/* enum fh_kind */
	uint32_t flags;		/* open flags */
	uint8_t writable, passthrough, staged, pad;
	uint32_t err_seen;
	uint64_t staged_id;	/* staging (r15b) */
	uint64_t spare[3];
};
int fh_table_init(void);
void fh_table_exit(void);
/* A slot for a handle being made (its record zeroed: fill it), its fh; 0 if full. */
uint64_t fh_reserve(void);
struct fh_rec *fh_rec(uint64_t fh);
/* The handle is given out: @fh means @obj (for this and the next generations). */
void fh_publish(uint64_t fh, void *obj);
/* Released (or never given out): the slot is free. */
void fh_release(uint64_t fh);
/* The object of @fh, or NULL when the kernel's fh is stale (released, slot reused). */
void *fh_get(uint64_t fh, uint32_t kind);
/* Resumed: @make an object for every handle an earlier generation gave out (NULL: it
 * is dropped); how many. */
unsigned int fh_resume(void *(*make)(uint64_t fh, struct fh_rec *rec));
void *file_resume(uint64_t fh, struct fh_rec *rec);	/* fuse_file.c */
void *dir_resume(uint64_t fh, struct fh_rec *rec);	/* fuse_dir.c */
void backing_resume(struct inode *ino, void *arg);	/* fuse_file.c */
void flock_resume_sweep(void);				/* fuse_file.c */

/*
 * fuse_journal.c: non-idempotent requests across a daemon's death (doc/restart.md 3.6).
 * journal_begin() before the system call (and before a handle is reserved); the op's
 * replies then go through jreply_*(), which record them before sending.
 */
enum journal_start {
	JOURNAL_NEW,		/* do it */
	JOURNAL_REPLAYED,	/* resent, done before: its recorded reply went out; return */
	JOURNAL_REDO,		/* resent, begun before: it may be done; "done already"
				 * errors (EEXIST of a create, ENOENT of a remove) are success */
};
int journal_init(void);		/* before fh_resume(): it names the orphan handles */
void journal_exit(void);
enum journal_start journal_begin(fuse_req_t req, uint32_t opcode);
/* The handle this request reserved (before fh_publish()). */
void journal_note_fh(uint64_t fh);
/* The ring itself, without libfuse (also for tests/unit/journal.c): journal_begin() of
 * the request with kernel unique @unique (bit 63: resent); JOURNAL_REPLAYED fills @done
 * with the reply to send again. journal_done() records this thread's reply (jreply_*()
 * call it): an error alone, an entry (@e), an open (@fi) or a create (both). */
enum { JK_ERR = 0, JK_ENTRY = 1, JK_OPEN = 2, JK_CREATE = 3 };
struct journal_reply {
	int32_t err;
	uint32_t kind;		/* JK_* */
	struct fuse_entry_param e;
	struct fuse_file_info fi;
};
enum journal_start journal_begin_unique(uint64_t unique, uint32_t opcode,
				       struct journal_reply *done);
void journal_done(int err, const struct fuse_entry_param *e, const struct fuse_file_info *fi);
/* Resumed: @fh was published for a request that never recorded its reply. */
bool journal_orphan_fh(uint64_t fh);
void jreply_err(fuse_req_t req, int err);
void jreply_entry(fuse_req_t req, const struct fuse_entry_param *e);
void jreply_open(fuse_req_t req, const struct fuse_file_info *fi);
void jreply_create(fuse_req_t req, const struct fuse_entry_param *e,
		   const struct fuse_file_info *fi);

/* fuse_common.c: attributes, lookup, privileges, own changes */
struct staged *staged_get(struct inode *ino);
void fix_staged_attr(struct inode *ino, struct stat *attr);
int stat_inode(struct inode *ino, struct stat *attr);
int lookup_fd(int fd, const char *name, struct fuse_entry_param *e);
int lookup_fd_stat(int fd, const char *name, const struct stat *sb,
		   struct fuse_entry_param *e);
int do_lookup(struct inode *parent, const char *name, struct fuse_entry_param *e);
void kill_privs(struct inode *ino);
void note_own_change(struct inode *ino);
void note_own_change_at(int dirfd, const char *name);

/* fuse_dir.c: names, directories, acting as the caller */
enum mk_kind { MK_NOD, MK_DIR, MK_SYMLINK };
int create_as_caller(fuse_req_t req, struct inode *parent, int dirfd, const char *name,
		     mode_t mode, int flags, bool *created, struct stat *sb, int *wfd);
void undo_create(fuse_req_t req, int dirfd, const char *name, const struct stat *sb);
void op_readlink(fuse_req_t req, fuse_ino_t i);
void op_mknod(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode);
void op_symlink(fuse_req_t req, const char *link, fuse_ino_t p, const char *name);
void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t newparent, const char *newname);
void op_unlink(fuse_req_t req, fuse_ino_t p, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t p, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np,
	       const char *newname, unsigned int flags);
void op_opendir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
		    struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi);

/* fuse_file.c: open files, their data and passthrough backing ids */
void backing_drop(struct inode *ino);
void op_open(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi);
/* RDMAFS_IOC_FLUSH of an open that is not staged: fsync its backing file; 0 or -errno. */
int fsync_unstaged(struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
	     struct fuse_file_info *fi);
void op_write_buf(fuse_req_t req, fuse_ino_t i, struct fuse_bufvec *in, off_t off,
		  struct fuse_file_info *fi);
void op_fallocate(fuse_req_t req, fuse_ino_t i, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void op_flock(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, int op);

/* fuse_xattr.c: extended attributes, ioctl, statfs */
void op_statfs(fuse_req_t req, fuse_ino_t i);
void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *name, const char *value,
		 size_t size, int flags);
void op_getxattr(fuse_req_t req, fuse_ino_t i, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t i, size_t size);
void op_removexattr(fuse_req_t req, fuse_ino_t i, const char *name);
void op_ioctl(fuse_req_t req, fuse_ino_t i, unsigned int cmd, void *arg,
	      struct fuse_file_info *fi, unsigned flags, const void *in_buf,
	      size_t in_bufsz, size_t out_bufsz);

#endif
