/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_conn.h - a control client's connection (ctl_conn.c: the connection list, its limits,
 * epoll arming and the connection's lease handle): what the epoll thread (ctl.c) and the
 * request handlers do with one.
 */
#ifndef RDMAFS_CTL_CONN_H
#define RDMAFS_CTL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct ctl_conn;
struct lease;

/* ---- the epoll thread (ctl.c) ---- */

/* Connections are armed in @epfd (EPOLLONESHOT, data.ptr the connection). Before any add. */
void ctl_conns_init(int epfd);
/* An accepted socket @fd (owned from here): admitted or closed. 0, or -errno if refused. */
int ctl_conn_add(int fd);
/* A connection an earlier generation accepted (restart): added like ctl_conn_add() but
 * not refused; returned with a reference for the caller (ctl_conn_put()), NULL if not. */
struct ctl_conn *ctl_conn_adopt(int fd);
int ctl_conn_fd(const struct ctl_conn *c);
/* Arm @c for its next request. */
void ctl_conn_arm(struct ctl_conn *c);
/* Take @c off the list and out of epoll; release its lease. Idempotent. */
void ctl_conn_close(struct ctl_conn *c);
/*
 * A request arrived on @c with decode result @err: noted as activity. Returns @err, or
 * -EBUSY for a lease connection (it only waits for its break or close).
 */
int ctl_conn_request(struct ctl_conn *c, int err);
/* A job for @c is queued: it holds a reference, and @c is not idle meanwhile. */
void ctl_conn_queued(struct ctl_conn *c);
/* Close connections silent for a minute that hold no lease and wait for nothing. */
void ctl_conns_sweep_idle(void);
/* At exit, after the workers stopped: close every connection (leases are released). */
void ctl_conns_close_all(void);

/* ---- the workers and request handlers ---- */

/* SO_PEERCRED of the client, taken at accept. */
const struct ucred *ctl_conn_cred(const struct ctl_conn *c);
/*
 * Send one message (and @sendfd if >= 0) to @c. Waits up to a few seconds for room unless
 * @best_effort. Returns 0 or -errno.
 */
int ctl_conn_send(struct ctl_conn *c, const void *buf, size_t len, int sendfd, bool best_effort);
/* An empty reply to request @op/@seq carrying @err. */
int ctl_conn_send_error(struct ctl_conn *c, uint16_t op, uint32_t seq, int err);
/* Drop a reference (a job's); the last one closes the socket. */
void ctl_conn_put(struct ctl_conn *c);
/* @c's request is answered: arm it for the next one, or close it if @failed (no reply). */
void ctl_conn_job_done(struct ctl_conn *c, bool failed);
/*
 * Reserve @c's one lease slot: -EBUSY if it has one, -ENOLCK if its uid holds too many.
 * On 0 the connection holds a reference for the lease's notify argument; finish with
 * ctl_conn_lease_end(): @l the granted lease (released when @c closes), or NULL.
 */
int ctl_conn_lease_begin(struct ctl_conn *c);
void ctl_conn_lease_end(struct ctl_conn *c, struct lease *l);
/* The lease of @c was reported granted (lease_replied()). */
void ctl_conn_lease_replied(struct ctl_conn *c);
/* Log that @uid was refused @what, at most once per uid every few seconds. */
void ctl_log_refusal(uid_t uid, const char *what);

#endif
