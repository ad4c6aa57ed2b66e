/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * restart.h - the daemon's side of the supervisor's descriptor store (supervisor.h,
 * doc/restart.md): what a generation keeps for the next one, and the state tables that
 * survive its death.
 *
 * Modes. Run by rdmafs-supervisor (SUP_ENV_FD in the environment): supervised; generation
 * 0 mounts, later generations resume (restart_resumed()) from what the store hands back.
 * Otherwise (restart=off, or a kernel without FUSE_HAS_RESEND): every call works, nothing
 * is kept: restart_put()/restart_drop() do nothing and tables live in a private memfd.
 *
 * Descriptors in the store, by tag (SUP_TAG(kind, id)), and who owns them:
 *   SUP_K_DEVFUSE, 0         main.c: the /dev/fuse file of the mount
 *   SUP_K_STATE, table id    restart.c: the memfd of each state table below
 *   SUP_K_STAGING, staged id staging (branch r15b): the staging memfd of a staged file
 *   SUP_K_LOCK, staged id    staging (branch r15b): its stager lock fd
 *   SUP_K_FLOCK, handle slot fuse_file.c: a handle's backing fd once it carries a flock
 *   (SUP_K_LEASECONN, SUP_K_PIDFD, SUP_K_INODEFD, SUP_K_CTLLISTEN: see their owners)
 *
 * State tables (SUP_K_STATE, id = enum restart_table_id), and who owns them:
 *   RESTART_T_META     main.c: the kernel's FUSE_INIT, counters (struct restart_meta)
 *   RESTART_T_INODES   inode.c: one record per inode the kernel knows (node id = slot + 2)
 *   RESTART_T_HANDLES  fuse_file.c/fuse_dir.c: one record per open file or directory
 *                      (fh = seq << 32 | slot)
 *   RESTART_T_STAGED   staging (branch r15b): one record per staged file
 *   RESTART_T_JOURNAL  fuse_journal.c: a ring of the last 4096 non-idempotent requests
 *                      (MKDIR, CREATE, OPEN, UNLINK, RENAME, ...) and their replies
 * A new table takes the next id; a record layout change bumps that table's
 * layout_version (a generation refuses a table of another version or record size).
 *
 * Resume order (main.c): restart_init() -> inode_table_init() (every node id back, no
 * I/O) -> restart_fuse_adopt() (synthetic INIT) -> staging_init() -> fuse_ops_init()
 * (the journal: fuse_journal.c journal_init(), which names the handles made for requests
 * never answered, freed instead of resumed; handles back: fuse_file.c file_resume(),
 * fuse_dir.c dir_resume(); then every backing
 * id no open uses is closed, except a BK_STAGING one whose inode has ino->st) ->
 * restart_fuse_resend() -> restart_ready() -> the FUSE loop. Staged files are resumed
 * between staging_init() and fuse_ops_init() (staging_restart_init(), staging_resume():
 * ino->st set again), and file_resume() gives a staged handle its h->st from ino->st.
 * Leases and the control listener come back in ctl_init() (ctl_lease_resume()).
 *
 * A table is a memfd truncated once to its (sparse) capacity and mapped once: record
 * pointers stay valid for the daemon's life. Each record has a state word, written last
 * with release semantics (restart_table_publish()), so a death between two stores leaves
 * the slot either free or valid, never half made. Updates of a valid record in place are
 * the owner's business (word-sized stores; counters that only grow may be over-counted
 * after a death, never under-counted).
 */
#ifndef RDMAFS_RESTART_H
#define RDMAFS_RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor.h"

/*
 * Start: read the environment; resumed generations LIST the store and keep what it
 * hands back for restart_take(). 0 or -errno (a supervisor that does not answer).
 * @enable false: run unsupervised even under a supervisor (nothing is put).
 */
int restart_init(bool enable);
/* Close every descriptor not taken and the store socket (after restart_ready() the
 * socket stays for put/drop until here). */
void restart_exit(void);

bool restart_supervised(void);	/* descriptors go to the store */
bool restart_resumed(void);	/* an earlier generation mounted: adopt, do not mount */
unsigned int restart_generation(void);
/* CLOCK_MONOTONIC ns when the supervisor saw the previous generation exit; 0 for gen 0. */
uint64_t restart_died_ns(void);
/* How the generation before ended (SUP_ENV_PREV): exit status, 256 + signal, or -1. */
int restart_prev_exit(void);
/* Stop being supervised (the kernel cannot resend): nothing is put from now on. */
void restart_disable(void);

/* Keep a duplicate of @fd under @tag (replacing one with that tag); @fd stays the
 * caller's. 0 or -errno; 0 and nothing done when not supervised. Thread-safe. */
int restart_put(uint64_t tag, int fd);
/* Close and forget @tag's descriptor. 0, -ENOENT, or -errno; 0 when not supervised. */
int restart_drop(uint64_t tag);
/*
 * The same, pipelined (the hot paths: staged files, inodes): sent, not waited for; 0 once
 * the request is on the socket, which is when it counts (it outlives this process: the
 * supervisor serves it before it hands anything to a next generation), or -errno (not
 * sent). A refusal (the store full) comes later: logged, counted (restart_refused()); the
 * next generation then finds no descriptor under the tag and resumes without it. Requests
 * are served in the order sent, pipelined or not: a PUT then a DROP of one tag leave
 * nothing. The store's copy lives until the supervisor serves the DROP (a lock held by
 * its open file description: unlock it explicitly). Thread-safe.
 */
int restart_put_async(uint64_t tag, int fd);
/* @n descriptors in one message (all or none kept; a refusal is logged by @tags[0]). */
int restart_put_many_async(const uint64_t *tags, const int *fds, unsigned int n);
/* Drops are batched (restart.c, RS_DROP_BATCH): restart_flush_drops() sends those
 * pending; the flusher calls it every second. */
int restart_drop_async(uint64_t tag);
int restart_flush_drops(void);
/* Wait until the supervisor answered every request sent. 0, or the first refusal
 * (-errno, -ENOENT for a DROP of an unknown tag) since the last call. */
int restart_sync(void);
/* Pipelined requests the store refused since the start (each logged). */
uint64_t restart_refused(void);

/*
 * Fault injection, test builds only (-Dtests, RDMAFS_TEST_KNOBS): restart_test_knob() reads
 * the file RDMAFS_TEST_DIE names into @buf (NUL-terminated; its length, or -1 without the
 * knob); restart_test_die() empties that file, so the next generation does not die again,
 * and _exit(99)s the daemon naming @where. Without test knobs: -1, and nothing.
 */
ssize_t restart_test_knob(char *buf, size_t size);
void restart_test_die(const char *where);
/* Tell the supervisor this generation serves (its death is no longer a start-up crash). */
int restart_ready(void);

/* Resumed: the descriptor an earlier generation put under @tag, now the caller's (the
 * store keeps its own); -ENOENT if none or already taken. */
int restart_take(uint64_t tag);
/* Resumed: the next not yet taken descriptor of @kind (the caller's), its tag in @tag;
 * -ENOENT when there are no more. */
int restart_take_next(unsigned int kind, uint64_t *tag);

/* ---- state tables ---- */

enum restart_table_id {
	RESTART_T_META = 1,
	RESTART_T_INODES = 2,
	RESTART_T_HANDLES = 3,
	RESTART_T_STAGED = 4,
	RESTART_T_LEASES = 5,	/* lease.c (branch r15b): one record per kept lease */
	RESTART_T_JOURNAL = 6,	/* fuse_journal.c: a ring of non-idempotent requests */
};

struct restart_table;

/*
 * Create table @id, or adopt the one an earlier generation made (resumed; then
 * restart_table_adopted() is true). @capacity records of @record_size bytes (payload),
 * sparse. -EPROTO (errno) when an adopted table's layout_version or record_size differ.
 * NULL with errno on failure.
 */
struct restart_table *restart_table_open(unsigned int id, size_t record_size,
					 uint32_t layout_version, uint32_t capacity);
void restart_table_close(struct restart_table *t);	/* unmaps; the store keeps the memfd */
bool restart_table_adopted(const struct restart_table *t);
uint32_t restart_table_capacity(const struct restart_table *t);
/* Slots ever used: every valid slot is below it. */
uint32_t restart_table_hwm(const struct restart_table *t);

/* The payload of @slot (zeroed when allocated); NULL if @slot >= capacity. */
void *restart_table_rec(struct restart_table *t, uint32_t slot);
/* A free slot, its payload zeroed, its seq incremented, not yet valid; -ENOSPC. */
int64_t restart_table_alloc(struct restart_table *t);
/* Make @slot valid (release: every store to its payload before this one is seen). */
void restart_table_publish(struct restart_table *t, uint32_t slot);
/* Make @slot free again (valid or just allocated). */
void restart_table_free(struct restart_table *t, uint32_t slot);
bool restart_table_valid(const struct restart_table *t, uint32_t slot);
/* How many times @slot was allocated (a handle's or inode's generation); never 0 once
 * allocated. */
uint32_t restart_table_seq(const struct restart_table *t, uint32_t slot);

/* The meta table's only record (RESTART_T_META, slot 0). */
struct restart_meta {
	uint32_t init_in_len;		/* 0: no INIT seen yet */
	uint8_t init_in[128];		/* the kernel's struct fuse_init_in (F5) */
	uint64_t restarts;		/* generations resumed */
	uint64_t last_blackout_ns;	/* death seen to the first reply after resuming */
	uint32_t init_out_len;		/* 0: no INIT answered yet */
	uint8_t init_out[128];		/* generation 0's struct fuse_init_out: a resumed
					 * generation's synthetic INIT must answer the same */
};

/* ---- the FUSE session (restart_fuse.c) ---- */

struct fuse_session;

/*
 * Supervised: serve @se through restart's custom io on /dev/fuse @fd (generation 0, after
 * the mount; it keeps @fd): each worker's request buffer is locked in memory (F11), the
 * kernel's INIT is recorded for the generations after (F5) and checked for
 * FUSE_HAS_RESEND (without it: restart_disable(), logged). Opens the meta table. 0 or
 * -errno; 0 and nothing done when not supervised.
 */
int restart_fuse_attach(struct fuse_session *se, int fd);
/*
 * Resumed: adopt the store's /dev/fuse into @se (custom io as above) and feed it the INIT
 * generation 0 recorded, whose reply is swallowed and compared with the one the kernel
 * got (flags, max_write, max_pages, time_gran: fixed until remount). The descriptor (@se
 * keeps it), or -errno: -EPROTONOSUPPORT when this binary cannot serve the mount (its
 * reply or the meta table's layout differs; main.c exits SUP_EXIT_INCOMPAT).
 */
int restart_fuse_adopt(struct fuse_session *se);
/* Resumed: put every request the dead generation had read back on the queue (F4).
 * 0 or -errno. */
int restart_fuse_resend(int fd);
/* The unique of the request this thread read last, when it was read(2) through the custom
 * io (RDMAFS_NO_SPLICE_READ, or before splice was negotiated); 0 when it was spliced. */
uint64_t restart_fuse_read_unique(void);

struct restart_stats {
	bool supervised;
	bool restartable;		/* a death would be survived (supervised, can resend) */
	int prev_exit;			/* SUP_ENV_PREV: -1 for generation 0 */
	unsigned int generation;
	uint64_t restarts;
	double last_blackout_ms;	/* 0: none yet */
};
void restart_stats(struct restart_stats *out);

#endif
