/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl_conn.h - a control client's connection, as the request handlers see it (owned by
 * ctl.c: the connection list, its limits, epoll arming and the connection's lease handle).
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
/* Log that @uid was refused @what, at most once per uid every few seconds. */
void ctl_log_refusal(uid_t uid, const char *what);

#endif
