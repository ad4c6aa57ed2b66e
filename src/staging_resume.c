// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * staging_resume.c - owns the resume of staged files: a new daemon generation rebuilds
 * the staged files of the dead one from their records and the descriptors the store kept
 * (staging_restart.c), before it serves.
 *
 * A resumed file knows no committed fingerprint: every chunk is "unknown"
 * (DIRTY_FP_NONE), its committed size too, and it needs an fdatasync, so its next commit
 * writes it whole. No staged byte is lost; a restart costs one full rewrite per staged
 * file (doc/restart.md 3.4: the fingerprint arena and the commit marker are not built).
 */
#include "rdmafsd.h"
#include "metrics.h"
#include "restart.h"
#include "staging_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rebuild the staged file of record @slot around @memfd (taken); 0 or -errno. */
static int resume_one(uint32_t slot, const struct staged_rec *r, int memfd)
{
	struct inode *ino = inode_get(r->fuse_ino);
	struct staged *st;
	struct stat sb;
	int ret;

	if (!ino || ino->src_dev != (dev_t)r->src_dev || ino->src_ino != (ino_t)r->src_ino ||
	    ino->type != S_IFREG) {
		log_err("restart: staged record %" PRIu32 " (ino=%" PRIu64 "): its inode is not "
			"known any more: staging not resumed", slot, r->src_ino);
		return -ESTALE;
	}
	if (r->mode > STAGING_HUGETLB || fstat(memfd, &sb) < 0) {
		log_err("restart: staged record %" PRIu32 " ino=%" PRIu64 ": bad mode %" PRIu32
			" or memfd", slot, r->src_ino, r->mode);
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->memfd = memfd;
	st->bfd = st->dfd = -1;
	st->lockfd = restart_take(SUP_TAG(SUP_K_LOCK, slot));
	if (st->lockfd < 0)
		st->lockfd = -1;	/* not held: the next writable open takes it */
	st->rslot = slot + 1;
	st->ino = ino;
	st->mode = r->mode;
	st->page_size = staging_mem_page_size(st->mode);
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->commit_lock, NULL);
	st->logical_size = st->mode == STAGING_HUGETLB ?
			   MIN(r->logical_size, (uint64_t)sb.st_size) : (uint64_t)sb.st_size;
	st->lost_from = r->lost_from;
	st->err_seq = r->err_seq;
	st->err_last = r->err_last;
	st->pending_error = r->pending_error;
	st->may_change = r->flags & STAGED_F_MAY_CHANGE;
	st->seal_refused = r->flags & STAGED_F_SEAL_REFUSED;
	st->bk_mtim = (struct timespec){ r->bk_mtim_sec, r->bk_mtim_nsec };
	st->bk_ctim = (struct timespec){ r->bk_ctim_sec, r->bk_ctim_nsec };
	st->bk_size = r->bk_size;
	/* A memfd's seal is its own: still sealed, no writer can exist. thp's stand-in is
	 * only a promise of the dead daemon: unsealed (scanned until frozen again). */
	if (st->mode != STAGING_THP) {
		int seals = fcntl(memfd, F_GET_SEALS);

		st->sealed = seals >= 0 && (seals & F_SEAL_WRITE);
	}
	/* Nothing known committed: the next commit writes all and syncs (see the top). */
	st->committed_size = UINT64_MAX;
	st->needs_sync = true;
	st->change_seq = 1;		/* maybe dirty: the first pass scans it */
	st->last_use = now_ns();
	st->dm = dirty_create(cfg->chunk_size);
	ret = st->dm ? 0 : -ENOMEM;
	pthread_mutex_lock(&st->lock);
	if (!ret)
		ret = staging_sync_map(st);	/* size, budget charge, allocation, the view */
	if (!ret)
		ret = dirty_resize(st->dm, st->size);
	pthread_mutex_unlock(&st->lock);
	if (ret) {
		log_err("restart: staged ino=%" PRIu64 ": %s: staging not resumed",
			(uint64_t)ino->src_ino, strerror(-ret));
		st->ino = NULL;
		st->memfd = -1;		/* the caller's */
		staging_budget_set(st, 0, NULL, true);
		if (st->lockfd >= 0)
			close(st->lockfd);
		st->lockfd = -1;
		st->rslot = 0;
		staged_free(st);
		return ret;
	}
	inode_ref(ino);
	ino->st = st;
	staging_list_add(st);
	metrics_add(&metrics.files_staged, 1);
	log_info("restart: staged ino=%" PRIu64 " resumed (%" PRIu64 " bytes, %s%s%s): its "
		 "next commit writes it whole", (uint64_t)ino->src_ino, st->size,
		 conf_staging_name(st->mode), st->sealed ? ", sealed" : "",
		 st->lockfd >= 0 ? ", locked" : "");
	return 0;
}

int staging_resume(size_t *resumed)
{
	struct restart_table *t = staging_rec_table();
	uint32_t hwm;
	uint64_t tg;
	size_t n = 0;
	int fd, ret = 0;

	*resumed = 0;
	if (!t || !restart_table_adopted(t))
		return 0;
	hwm = restart_table_hwm(t);
	for (uint32_t slot = 0; slot < hwm; slot++) {
		struct staged_rec *r;
		int e;

		if (!restart_table_valid(t, slot))
			continue;
		r = restart_table_rec(t, slot);
		fd = restart_take(SUP_TAG(SUP_K_STAGING, slot));
		if (fd < 0) {
			log_err("restart: staged record %" PRIu32 " ino=%" PRIu64 ": no staging "
				"memfd in the store", slot, r->src_ino);
			e = fd;
		} else {
			e = resume_one(slot, r, fd);
			if (e)
				close(fd);
		}
		if (e == -ENOMEM) {
			/* Kept in the store: the next generation may resume it. */
			ret = ret ? ret : e;
			continue;
		}
		if (e) {
			/* Its inode or its staging is gone: nothing can reach the data. */
			restart_table_free(t, slot);
			restart_drop(SUP_TAG(SUP_K_LOCK, slot));
			restart_drop(SUP_TAG(SUP_K_STAGING, slot));
			ret = ret ? ret : e;
			continue;
		}
		n++;
	}
	/* Descriptors without a record: a death between a free and its drops. */
	while ((fd = restart_take_next(SUP_K_STAGING, &tg)) >= 0) {
		close(fd);
		restart_drop(tg);
	}
	while ((fd = restart_take_next(SUP_K_LOCK, &tg)) >= 0) {
		close(fd);
		restart_drop(tg);
	}
	*resumed = n;
	return ret;
}
