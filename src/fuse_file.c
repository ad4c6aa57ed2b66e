// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuse_file.c - FUSE ops on open files: open, create, flush, release, fsync, read, write,
 * fallocate, flock; the open handles, and the passthrough backing ids of an inode.
 */
#include "fuse_int.h"
#include "commit.h"
#include "restart.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fuse.h>

bool fuse_ops_passthrough;
int fuse_ops_devfd = -1;

#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif

/* One per open file; fi->fh points here. */
struct handle {
	/*
	 * Backing file opened with the client's access mode, owned, or -1: a staged open has
	 * none (its I/O goes to staging) until flock needs one (then guarded by lock).
	 */
	int fd;
	struct staged *st;	/* staging this open uses (a reference), or NULL */
	struct inode *ino;	/* a reference */
	bool writable;
	bool passthrough;	/* the kernel does the I/O: uses ino->backing_id */
	uint32_t err_seen;	/* st->err_seq this description has seen (commit_fd) */
	uint64_t fh;		/* fi->fh: its slot in the handle table (fuse_fh.c) */
	int flags;		/* open flags */
	bool reopen;		/* resumed: fd not opened yet (handle_fd_ready()) */
	bool flock_kept;	/* fd is in the store (FLOCK): a flock outlives the daemon */
	struct handle *next, *prev;	/* handles.list */
};

/* Open handles, so that those the kernel never released (shutdown) can be freed. */
static struct {
	pthread_mutex_t lock;	/* protects list */
	struct handle *list;
} handles = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void handle_link(struct handle *h)
{
	pthread_mutex_lock(&handles.lock);
	h->prev = NULL;
	h->next = handles.list;
	if (h->next)
		h->next->prev = h;
	handles.list = h;
	pthread_mutex_unlock(&handles.lock);
}

/* The store's tag of the backing fd of handle @fh that carries a flock: its slot. */
static uint64_t flock_tag(uint64_t fh)
{
	return SUP_TAG(SUP_K_FLOCK, (uint32_t)fh);
}

/* Unlink and free @h, dropping its references. */
static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&handles.lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		handles.list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&handles.lock);
	/* Before the slot is free: a kept fd always belongs to a valid handle record. */
	if (h->flock_kept)
		restart_drop(flock_tag(h->fh));
	fh_release(h->fh);
	if (h->st)
		staging_put(h->st);
	if (h->fd >= 0)
		close(h->fd);
	inode_unref(h->ino);
	free(h);
}

void fuse_ops_exit(void)
{
	while (handles.list)
		handle_free(handles.list);
	fh_table_exit();
	journal_exit();
}

/* A resumed handle's backing fd, opened again on its first use (by handle: I/O the
 * resume itself does not do). An object deleted meanwhile leaves it -1 (EBADF). */
static void handle_fd_ready(struct handle *h)
{
	int fd;

	if (!__atomic_load_n(&h->reopen, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&handles.lock);
	if (h->reopen) {
		fd = inode_open(h->ino, h->flags & O_ACCMODE);
		if (fd < 0)
			log_notice("restart: reopen of an open file ino=%" PRIu64 ": %s",
				   (uint64_t)h->ino->src_ino, strerror(-fd));
		h->fd = fd < 0 ? -1 : fd;
		__atomic_store_n(&h->reopen, false, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&handles.lock);
}

/* The handle of @fi, its fd ready; NULL when the kernel's fh is stale. */
static struct handle *fh_of(struct fuse_file_info *fi)
{
	struct handle *h = fh_get(fi->fh, FH_FILE);

	if (h && !h->st)
		handle_fd_ready(h);
	return h;
}

void *file_resume(uint64_t fh, struct fh_rec *rec)
{
	struct inode *ino = inode_get(rec->nodeid);
	struct handle *h;
	int fd;

	if (!ino)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->fd = -1;
	h->ino = ino;
	h->fh = fh;
	h->flags = rec->flags;
	h->writable = rec->writable;
	h->passthrough = rec->passthrough;
	h->err_seen = rec->err_seen;
	/* A staged open whose staging did not survive (restart.h: staging's to resume)
	 * falls back to the backing file. */
	h->reopen = true;
	inode_ref(ino);
	pthread_mutex_lock(&ino->lock);
	if (rec->staged && ino->st) {	/* resumed before the handles (staging_resume()) */
		h->st = ino->st;
		staging_get(h->st);
		h->reopen = false;	/* a staged open has no fd of its own */
		/* Its kernel open may pass writes through (an earlier generation's config). */
		if (h->writable && h->passthrough)
			__atomic_store_n(&h->st->pt_writer, true, __ATOMIC_RELEASE);
	}
	inode_open_add(ino, h->writable);
	if (h->passthrough)
		ino->bk_opens++;
	pthread_mutex_unlock(&ino->lock);
	/* A flock the kernel's lock owner holds lives in that open file description: the
	 * handle goes on with the one the store kept, not a new open. */
	fd = restart_take(flock_tag(fh));
	if (fd >= 0) {
		h->fd = fd;
		h->reopen = false;
		h->flock_kept = true;
	}
	handle_link(h);
	return h;
}

/* Resumed, after every handle: flock fds of handles released before the death (their
 * drop was lost with the daemon) go. */
void flock_resume_sweep(void)
{
	uint64_t tag;
	int fd;

	while ((fd = restart_take_next(SUP_K_FLOCK, &tag)) >= 0) {
		close(fd);
		restart_drop(tag);
	}
}

/* Resumed: a backing id no open uses any more is closed, as the last release would have
 * (the one of a resident staging stays while staging keeps the file). */
void backing_resume(struct inode *ino, void *arg)
{
	(void)arg;
	if (!ino->backing_id || ino->bk_opens || (ino->bk_kind == BK_STAGING && ino->st))
		return;
	if (fuse_ops_devfd >= 0 &&
	    ioctl(fuse_ops_devfd, FUSE_DEV_IOC_BACKING_CLOSE, &ino->backing_id) < 0)
		log_warn("restart: passthrough close ino=%" PRIu64 " id=%d: %s",
			 (uint64_t)ino->src_ino, ino->backing_id, strerror(errno));
	ino->backing_id = 0;
	ino->bk_kind = BK_NONE;
	inode_note_backing(ino);
}
/* Register @fd as the inode's passthrough backing file; ino->lock held. */
static int backing_open(fuse_req_t req, struct inode *ino, int fd, enum bk_kind kind)
{
	int id;

	if (ino->bk_kind == kind)
		return 0;
	id = fuse_passthrough_open(req, fd);
	if (id <= 0) {
		int e = errno ? errno : EIO;

		if (kind == BK_BACKING) {	/* e.g. a backing file on a stacked FS */
			log_info("passthrough ino=%" PRIu64 " to the backing file: %s; the daemon "
				 "serves it", (uint64_t)ino->src_ino, strerror(e));
		} else {
			log_err("passthrough ino=%" PRIu64 ": %s; serving this mount without "
				"passthrough (mapped files cannot be pinned)",
				(uint64_t)ino->src_ino, strerror(e));
			fuse_ops_passthrough = false;
		}
		return -e;
	}
	ino->backing_id = id;
	ino->bk_kind = kind;
	inode_note_backing(ino);
	return 0;
}

/*
 * Staging left the inode or got a new memfd (staging_detach_hook; ino->lock held): close
 * the passthrough backing id of the old memfd, which a resident staging keeps registered
 * between opens (the kernel holds the memfd through it). No open uses it then. Called
 * from threads that have no request: the ioctl goes to the session's /dev/fuse.
 */
void backing_drop(struct inode *ino)
{
	int id = ino->backing_id;

	if (ino->bk_kind != BK_STAGING || ino->bk_opens)
		return;
	if (fuse_ops_devfd >= 0 && ioctl(fuse_ops_devfd, FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0)
		log_warn("passthrough close ino=%" PRIu64 " id=%d: %s", (uint64_t)ino->src_ino, id,
			 strerror(errno));
	ino->backing_id = 0;
	ino->bk_kind = BK_NONE;
}

/*
 * Resident staging of a file nobody uses, whose backing file changed behind rdmafs since
 * the fill or the last commit (size, mtime or ctime): staged again from the backing file,
 * if the staging is known clean (else the staged version wins: it is committed over the
 * backing file, as any change made through the mount). ino->lock held.
 */
static void revalidate(struct inode *ino)
{
	struct staged *st = ino->st;
	struct stat sb;
	int fd, r;

	if (!st || ino->nopen || st->pending_error)
		return;
	fd = inode_fd(ino);	/* cached or reopened by handle: a staged open has no fd */
	if (fd < 0)
		return;
	r = fstat(fd, &sb);
	inode_fd_put(ino);
	if (r < 0 || !staging_backing_changed(st, &sb))
		return;
	pthread_mutex_lock(&st->lock);
	bool mapped = st->may_change;
	pthread_mutex_unlock(&st->lock);
	if (mapped || !staging_known_clean(st) || lease_count(st)) {
		log_notice("open ino=%" PRIu64 ": backing file changed behind rdmafs while staged "
			   "with changes not yet committed: the staged version is kept",
			   (uint64_t)ino->src_ino);
		pthread_mutex_lock(&st->lock);
		staging_note_backing(st);	/* said once */
		pthread_mutex_unlock(&st->lock);
		return;
	}
	log_info("open ino=%" PRIu64 ": backing file changed behind rdmafs: staged again",
		 (uint64_t)ino->src_ino);
	staging_drop(st);
}

/*
 * Open @ino for @fi: writable opens and every open of a staged file use its staging;
 * read-only opens of an unstaged file use the backing file. With passthrough the kernel
 * then does all I/O; without it the daemon serves read and write.
 */
static int open_common(fuse_req_t req, struct inode *ino, struct fuse_file_info *fi,
		       int lockfd)
{
	bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct handle *h = calloc(1, sizeof(*h));
	struct staged *st;
	int r = 0;

	if (!h) {
		if (lockfd >= 0)
			close(lockfd);
		return -ENOMEM;
	}
	h->fh = fh_reserve();
	if (!h->fh) {
		if (lockfd >= 0)
			close(lockfd);
		free(h);
		return -ENFILE;
	}
	journal_note_fh(h->fh);	/* published and never answered: freed at resume */
	h->writable = writable;
	h->flags = fi->flags;
	h->fd = -1;
	if (writable && fuse_req_ctx(req)->uid != 0)
		kill_privs(ino);
	pthread_mutex_lock(&ino->lock);
	revalidate(ino);
	st = ino->st;
	if (st && writable) {
		/* A resident file this node does not stage for writing: lock it again. */
		r = staging_lock_writer(st);
		if (r == -ESTALE && !ino->nopen && !lease_count(st)) {
			staging_drop(st);	/* clean and unlocked: staged again below */
			st = NULL;
			r = 0;
		} else if (r == -ESTALE) {
			log_notice("open ino=%" PRIu64 " for writing: backing file changed by "
				   "another stager while open read-only here: refused (EBUSY) "
				   "until those opens close", (uint64_t)ino->src_ino);
			r = -EBUSY;
		}
		if (r)
			goto err_unlock;
	}
	if (st && st->sealed) {
		r = staging_unseal(st);
		if (r)
			goto err_unlock;
	}
	if (!st && writable && ino->type == S_IFREG) {
		if (ino->bk_kind == BK_BACKING || ino->nopen_w) {
			/* Staging now would split the file: the other opens' reads and writes
			 * go to the backing file (staging_paths mode none, or unstaged). */
			log_info("open ino=%" PRIu64 " for writing while other opens use the "
				 "backing file: not staged (its mappings cannot be pinned)",
				 (uint64_t)ino->src_ino);
		} else {
			/* st NULL: staging_paths mode none */
			r = staging_create_fd(ino, lockfd, &st);
			lockfd = -1;	/* staging_create_fd() took it */
			if (r == -ENOSPC) {
				log_notice("open ino=%" PRIu64 ": staging_budget reached, not staged",
					   (uint64_t)ino->src_ino);
				r = 0;
			} else if (r) {
				goto err_unlock;
			} else {
				ino->st = st;
			}
		}
	}
	if (!st) {
		/* An unstaged open: I/O through the backing file. Staged opens need no fd of
		 * their own, so that files held open do not cost a descriptor each. */
		h->fd = inode_open(ino, fi->flags & O_ACCMODE);
		if (h->fd < 0) {
			r = h->fd;
			goto err_unlock;
		}
	}
	if (st && staging_no_passthrough(st)) {
		/* hugetlb staging: passthrough refuses it (ELOOP). The daemon serves read
		 * and write; direct I/O keeps the kernel's page cache out. */
		fi->direct_io = 1;
	} else if (fuse_ops_passthrough) {
		if (st)
			r = backing_open(req, ino, st->memfd, BK_STAGING);
		else
			r = backing_open(req, ino, h->fd, BK_BACKING);
		if (!r && ino->bk_kind == (st ? BK_STAGING : BK_BACKING)) {
			fi->backing_id = ino->backing_id;
			ino->bk_opens++;
			h->passthrough = true;
			if (st && writable && !staging_serves_writes(st))
				__atomic_store_n(&st->pt_writer, true, __ATOMIC_RELEASE);
			if (st && writable && staging_serves_writes(st)) {
				/*
				 * mmap still maps the staging memfd (the kernel checks
				 * passthrough first), but FOPEN_DIRECT_IO overrides it for
				 * read, write and splice: writes come to us, and growth
				 * past staging_budget gets ENOSPC (op_write_buf()). The
				 * kernel takes the inode lock exclusively for a write past
				 * EOF, shared for the others.
				 */
				fi->direct_io = 1;
				fi->parallel_direct_writes = 1;
			}
		} else {
			/* Served by the daemon; direct I/O keeps the kernel's page cache out
			 * of an inode that other opens pass through. */
			fi->direct_io = 1;
		}
		r = 0;
	}
	if (st) {
		staging_get(st);
		h->st = st;
		staging_touch(st);
		h->err_seen = commit_err_sample(st);
		if (writable)
			staging_note_change(st);	/* maybe dirty until a commit after it */
	}
	inode_open_add(ino, writable);
	pthread_mutex_unlock(&ino->lock);
	if (lockfd >= 0)
		close(lockfd);	/* not staged here after all */
	inode_ref(ino);
	h->ino = ino;
	handle_link(h);
	{
		struct fh_rec *rec = fh_rec(h->fh);

		rec->nodeid = inode_fuse_ino(ino);
		rec->kind = FH_FILE;
		rec->flags = fi->flags;
		rec->writable = writable;
		rec->passthrough = h->passthrough;
		rec->staged = h->st != NULL;
		rec->err_seen = h->err_seen;
		fh_publish(h->fh, h);
	}
	fi->fh = h->fh;
	fi->keep_cache = 0;
	return 0;

err_unlock:
	pthread_mutex_unlock(&ino->lock);
	if (lockfd >= 0)
		close(lockfd);
	if (h->fd >= 0)
		close(h->fd);
	fh_release(h->fh);
	free(h);
	return r;
}

void op_open(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	int r;

	if (journal_begin(req, FUSE_OPEN) == JOURNAL_REPLAYED)
		return;
	r = ino_of(i) ? open_common(req, ino_of(i), fi, -1) : inode_fd(NULL);
	if (r)
		jreply_err(req, -r);
	else
		jreply_open(req, fi);
}

void op_create(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct inode *parent = ino_of(p);
	struct fuse_entry_param e;
	int fd, dirfd, r = 0, wfd = -1;
	bool created = false;
	struct stat sb;

	switch (journal_begin(req, FUSE_CREATE)) {
	case JOURNAL_REPLAYED:
		return;
	case JOURNAL_REDO:
		/* The dead daemon may have made it: the file there is opened (an O_EXCL
		 * create that found another's file then succeeds: it cannot be told). */
		fi->flags &= ~O_EXCL;
		break;
	case JOURNAL_NEW:
		break;
	}
	/* Before acting as the caller: a reopen by handle needs the daemon's capabilities. */
	dirfd = ifd(parent);
	if (dirfd < 0) {
		jreply_err(req, -dirfd);
		return;
	}
	fd = create_as_caller(req, parent, dirfd, name, mode, fi->flags, &created, &sb, &wfd);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = lookup_fd_stat(fd, name, &sb, &e);	/* owns fd; sb: the object fd opens */
	if (!r && !created && (fi->flags & O_TRUNC)) {
		/* The kernel treats a created file as new and skips its own truncation: an
		 * existing file (stale negative dentry) must be truncated here. */
		struct inode *ino = ino_of(e.ino);
		struct staged *st = staged_get(ino);
		char path[64];

		if (st) {
			r = staging_truncate(st, 0);
			staging_put(st);
		} else {
			int tfd = ifd(ino);

			r = tfd < 0 ? tfd : truncate(proc_fd_path(path, tfd), 0) < 0 ? -errno : 0;
			if (tfd >= 0)
				inode_fd_put(ino);
		}
		if (!r)
			r = stat_inode(ino, &e.attr);
		if (r)
			inode_forget(ino, 1);
	}
	if (!r) {
		fi->flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
		r = open_common(req, ino_of(e.ino), fi, wfd);
		wfd = -1;	/* open_common() took it */
		if (r)
			inode_forget(ino_of(e.ino), 1);
	}
out:
	if (wfd >= 0)
		close(wfd);
	if (r && created)
		undo_create(req, dirfd, name, &sb);
	inode_fd_put(parent);
	if (r)
		jreply_err(req, -r);
	else
		jreply_create(req, &e, fi);
}

void op_flush(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct handle *h = fh_get(fi->fh, FH_FILE);
	int r = 0;

	/* close() waits for durability with flush_on_close=yes (NFS-like close-to-open). */
	if (h && h->st && h->writable && cfg->flush_on_close == FLUSH_CLOSE_YES)
		r = commit_fd(h->st, &h->err_seen);
	else if (h && !h->st && h->writable && h->fd >= 0 &&
		 cfg->flush_on_close == FLUSH_CLOSE_YES)
		r = fdatasync(h->fd) < 0 ? -errno : 0;	/* unstaged: the backing file's data */
	fuse_reply_err(req, -r);
}

void op_release(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi)
{
	struct inode *ino = ino_of(i);
	struct handle *h = fh_get(fi->fh, FH_FILE);
	bool last;

	if (!h || !ino) {	/* resent, of a handle released before a restart */
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&ino->lock);
	last = inode_open_drop(ino, h->writable);
	/* A staged file's backing id stays while it is staged (resident): a reopen reuses
	 * it; backing_drop() closes it when the staging goes or gets a new memfd. */
	if (h->passthrough && --ino->bk_opens == 0 &&
	    !(ino->bk_kind == BK_STAGING && h->st && ino->st == h->st)) {
		fuse_passthrough_close(req, ino->backing_id);
		ino->backing_id = 0;
		ino->bk_kind = BK_NONE;
		inode_note_backing(ino);
	}
	pthread_mutex_unlock(&ino->lock);
	/* flush_on_close=async: the last writer's release (after munmap of its mappings)
	 * starts a commit of this file in the flusher thread; close does not wait. */
	if (h->st && last && cfg->flush_on_close == FLUSH_CLOSE_ASYNC)
		flusher_commit_async(h->st);
	/* flush_on_close=yes committed at flush, with this writer still open: a commit
	 * after the last writer proves the file clean and gives up the stager lock. */
	if (h->st && last && cfg->flush_on_close == FLUSH_CLOSE_YES)
		flusher_commit_async(h->st);
	handle_free(h);
	fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t i, int datasync, struct fuse_file_info *fi)
{
	struct inode *ino = ino_of(i);
	struct staged *st = staged_get(ino);
	struct handle *h = fi ? fh_of(fi) : NULL;
	int r;

	if (st && h && h->st == st) {
		r = commit_fd(st, &h->err_seen);
		staging_put(st);
	} else if (st) {
		r = commit_file(st);
		staging_put(st);
	} else if (h && h->st) {
		r = commit_fd(h->st, &h->err_seen);
	} else if (h && h->fd >= 0) {
		r = (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0 ? -errno : 0;
	} else {
		r = 0;
	}
	fuse_reply_err(req, -r);
}

int fsync_unstaged(struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);

	if (h->st || h->fd < 0)
		return 0;
	return fsync(h->fd) < 0 ? -errno : 0;
}

/*
 * A buffer of at least @size bytes owned by the calling thread (freed when it exits), or
 * NULL. Reused because a new one per read costs a first-touch fault per page (up to 1 MiB
 * a request), which libfuse's own splice reply falls back to whenever a reply exceeds the
 * pipe: 1 MiB reads ran at 0.05 of passthrough with it.
 */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_init(void)
{
	if (pthread_key_create(&read_buf_key, free))
		log_err("read buffers: pthread_key_create failed");
}

static char *read_buf(size_t size)
{
	size_t *b;

	pthread_once(&read_buf_once, read_buf_key_init);
	b = pthread_getspecific(read_buf_key);
	if (b && *b >= size)
		return (char *)(b + 1);
	free(b);
	b = malloc(sizeof(*b) + size);
	if (b)
		*b = size;
	pthread_setspecific(read_buf_key, b);
	return b ? (char *)(b + 1) : NULL;
}

/*
 * Daemon-served I/O: when the kernel does not pass the file through, and writable opens
 * of shmem staging with budget_enforce=strict (open_common()).
 */
void op_read(fuse_req_t req, fuse_ino_t i, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->st) {
		char *mem = read_buf(size ? size : 1);
		ssize_t n = mem ? staging_pread(h->st, mem, size, off) : -ENOMEM;

		if (n < 0)
			fuse_reply_err(req, -n);
		else
			fuse_reply_buf(req, mem, n);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void op_write_buf(fuse_req_t req, fuse_ino_t i, struct fuse_bufvec *in, off_t off,
		  struct fuse_file_info *fi)
{
	struct handle *h = fh_of(fi);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->st && staging_no_passthrough(h->st)) {
		/* Into memory first (the request may sit in a pipe), then into staging. */
		size_t len = fuse_buf_size(in);
		struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);

		mem.buf[0].mem = malloc(len ? len : 1);
		n = mem.buf[0].mem ? fuse_buf_copy(&mem, in, 0) : -ENOMEM;
		if (n >= 0)
			n = staging_pwrite(h->st, mem.buf[0].mem, n, off);
		free(mem.buf[0].mem);
		if (n < 0)
			fuse_reply_err(req, -n);
		else
			fuse_reply_write(req, n);
		return;
	}

	if (h->st) {
		/* Growth is charged to staging_budget first; a short count where it ends. */
		n = staging_write_begin(h->st, off, out.buf[0].size);
		if (n < 0) {
			fuse_reply_err(req, -n);
			return;
		}
		out.buf[0].size = n;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = h->st ? h->st->memfd : h->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (h->st)
		staging_write_end(h->st, off, n);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

void op_fallocate(fuse_req_t req, fuse_ino_t i, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	struct staged *st = staged_get(ino_of(i));
	struct handle *h = fh_of(fi);
	int r;

	if (!st && h && h->st) {
		st = h->st;
		staging_get(st);
	}
	if (st) {
		r = staging_fallocate(st, mode, off, len);
		staging_put(st);
	} else if (!h) {
		r = -EBADF;
	} else {
		r = fallocate(h->fd, mode, off, len) < 0 ? -errno : 0;
	}
	fuse_reply_err(req, -r);
}

void op_flock(fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, int op)
{
	struct handle *h = fh_of(fi);
	int fd;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	fd = __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE);

	if (fd < 0) {
		/* A staged open has no backing fd: the lock needs one, owned by the handle
		 * (a lock belongs to one open file description) until release. */
		int nfd = inode_open(h->ino, O_RDONLY), exp = -1;

		if (nfd < 0) {
			fuse_reply_err(req, -nfd);
			return;
		}
		if (__atomic_compare_exchange_n(&h->fd, &exp, nfd, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			fd = nfd;
		} else {
			close(nfd);	/* another flock of this handle set it first */
			fd = exp;
		}
	}
	if (flock(fd, op) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* The lock lives in this open file description: the store keeps a duplicate, so
	 * that a daemon's death neither lets it go nor leaves the next generation without
	 * the description to unlock (doc/restart.md 3.3). Kept until the handle's release;
	 * a flock that cannot be kept is still taken (it would end with the daemon). */
	if ((op & (LOCK_SH | LOCK_EX)) && !__atomic_exchange_n(&h->flock_kept, true,
							       __ATOMIC_ACQ_REL) &&
	    restart_put(flock_tag(h->fh), fd)) {
		log_warn("flock ino=%" PRIu64 ": not kept for a restart: a daemon death "
			 "releases it", (uint64_t)h->ino->src_ino);
		__atomic_store_n(&h->flock_kept, false, __ATOMIC_RELEASE);
	}
	fuse_reply_err(req, 0);
}

/* Run @fn on the "/proc/self/fd/N" path of @ino; its result, or -1 with errno. */
