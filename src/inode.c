// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * inode.c - owns the inode table: one struct inode per backing object (dev, ino), its
 * O_PATH fd, lookup and reference counts. The FUSE inode number is the struct's address.
 */
#include "rdmafsd.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct inode_key {
	dev_t dev;
	ino_t ino;
};

static struct {
	pthread_mutex_t lock;		/* protects by_key, nlookup, nref of every inode */
	struct inode *by_key;		/* uthash, keyed by (src_dev, src_ino) */
	struct inode root;
} itab = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void inode_init_fields(struct inode *ino, int fd, const struct stat *st)
{
	memset(ino, 0, sizeof(*ino));
	ino->fd = fd;
	ino->src_dev = st->st_dev;
	ino->src_ino = st->st_ino;
	ino->type = st->st_mode & S_IFMT;
	pthread_mutex_init(&ino->lock, NULL);
}

int inode_table_init(const char *source)
{
	struct stat st;
	int fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	inode_init_fields(&itab.root, fd, &st);
	itab.root.nlookup = 2;	/* never forgotten */
	return 0;
}

void inode_table_destroy(void)
{
	struct inode *ino, *tmp;

	pthread_mutex_lock(&itab.lock);
	HASH_ITER(hh, itab.by_key, ino, tmp) {
		HASH_DEL(itab.by_key, ino);
		close(ino->fd);
		pthread_mutex_destroy(&ino->lock);
		free(ino);
	}
	pthread_mutex_unlock(&itab.lock);
	if (itab.root.fd > 0)
		close(itab.root.fd);
	itab.root.fd = -1;
}

struct inode *inode_root(void)
{
	return &itab.root;
}

struct inode *inode_get(uint64_t fuse_ino)
{
	if (fuse_ino == FUSE_ROOT_ID)
		return &itab.root;
	return (struct inode *)(uintptr_t)fuse_ino;
}

uint64_t inode_fuse_ino(struct inode *ino)
{
	return ino == &itab.root ? FUSE_ROOT_ID : (uint64_t)(uintptr_t)ino;
}

struct inode *inode_lookup_add(int fd, const struct stat *st)
{
	struct inode_key key = { .dev = st->st_dev, .ino = st->st_ino };
	struct inode *ino;

	if (st->st_dev == itab.root.src_dev && st->st_ino == itab.root.src_ino) {
		close(fd);
		pthread_mutex_lock(&itab.lock);
		itab.root.nlookup++;
		pthread_mutex_unlock(&itab.lock);
		return &itab.root;
	}
	pthread_mutex_lock(&itab.lock);
	HASH_FIND(hh, itab.by_key, &key, sizeof(key), ino);
	if (ino) {
		ino->nlookup++;
		pthread_mutex_unlock(&itab.lock);
		close(fd);
		return ino;
	}
	ino = malloc(sizeof(*ino));
	if (!ino) {
		pthread_mutex_unlock(&itab.lock);
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	inode_init_fields(ino, fd, st);
	ino->nlookup = 1;
	/* The key is the leading (src_dev, src_ino) pair of struct inode_key layout. */
	HASH_ADD_KEYPTR(hh, itab.by_key, &ino->src_dev, sizeof(key), ino);
	pthread_mutex_unlock(&itab.lock);
	return ino;
}

/* itab.lock held */
static void inode_maybe_free(struct inode *ino)
{
	if (ino == &itab.root || ino->nlookup || ino->nref)
		return;
	HASH_DEL(itab.by_key, ino);
	close(ino->fd);
	pthread_mutex_destroy(&ino->lock);
	free(ino);
}

void inode_forget(struct inode *ino, uint64_t n)
{
	pthread_mutex_lock(&itab.lock);
	ino->nlookup = n > ino->nlookup ? 0 : ino->nlookup - n;
	inode_maybe_free(ino);
	pthread_mutex_unlock(&itab.lock);
}

void inode_ref(struct inode *ino)
{
	pthread_mutex_lock(&itab.lock);
	ino->nref++;
	pthread_mutex_unlock(&itab.lock);
}

void inode_unref(struct inode *ino)
{
	pthread_mutex_lock(&itab.lock);
	ino->nref--;
	inode_maybe_free(ino);
	pthread_mutex_unlock(&itab.lock);
}

char *inode_proc_path(struct inode *ino, char *buf)
{
	snprintf(buf, 64, "/proc/self/fd/%d", ino->fd);
	return buf;
}
