/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/store_stub.h - a stand-in for rdmafs-supervisor's descriptor store, for the
 * unit tests of restart.c and of staged files across a daemon death: one thread answers
 * PUT, DROP and LIST on one generation's socket; gen_start() starts a generation on it
 * (restart_init() with the socket in the environment), gen_end() lets it "die" (the
 * socket closes, the store keeps what it holds). Include after cmocka.h and restart.h.
 */
#ifndef RDMAFS_TESTS_STORE_STUB_H
#define RDMAFS_TESTS_STORE_STUB_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor.h"

static struct {
	uint64_t tag[64];
	int fd[64];
	int n;
} store;

static void store_send(int sock, struct sup_msg *m, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 64)] = { 0 };
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) + m->count * 8 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m->magic = SUP_MAGIC;
	m->version = SUP_VERSION;
	if (n) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static void *store_main(void *arg)
{
	int sock = (int)(intptr_t)arg;
	union {
		struct sup_msg m;
		char b[SUP_MSG_MAX];
	} in, out;

	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = { .iov_base = &in, .iov_len = sizeof(in) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c;
		int fd[8];

		if (recvmsg(sock, &mh, 0) <= 0)
			break;
		c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0));
		memset(&out.m, 0, sizeof(out.m));
		out.m.op = in.m.op;
		if (in.m.op == SUP_PUT) {	/* one descriptor per tag (up to 8) */
			for (uint32_t k = 0; k < in.m.count && k < 8; k++) {
				int i;

				for (i = 0; i < store.n && store.tag[i] != in.m.tags[k]; i++)
					;
				if (i == store.n)
					store.n++;
				else
					close(store.fd[i]);
				store.tag[i] = in.m.tags[k];
				store.fd[i] = fd[k];
			}
		} else if (in.m.op == SUP_DROP) {
			/* Each tag held goes; -ENOENT if one was not (batched drops). */
			for (uint32_t k = 0; k < in.m.count; k++) {
				int i;

				for (i = 0; i < store.n && store.tag[i] != in.m.tags[k]; i++)
					;
				if (i == store.n) {
					out.m.status = -ENOENT;
					continue;
				}
				close(store.fd[i]);
				store.n--;
				store.tag[i] = store.tag[store.n];
				store.fd[i] = store.fd[store.n];
			}
		} else if (in.m.op == SUP_LIST) {
			out.m.count = store.n;
			memcpy(out.m.tags, store.tag, store.n * 8);
			store_send(sock, &out.m, store.fd, store.n);
			continue;
		}
		store_send(sock, &out.m, NULL, 0);
	}
	close(sock);
	return NULL;
}

static pthread_t store_thread;

/* Start generation @gen: a socket to the store in the environment, restart_init(). */
static void gen_start(unsigned int gen)
{
	char v[16];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pthread_create(&store_thread, NULL, store_main, (void *)(intptr_t)sv[0]),
			 0);
	snprintf(v, sizeof(v), "%d", sv[1]);
	setenv(SUP_ENV_FD, v, 1);
	snprintf(v, sizeof(v), "%u", gen);
	setenv(SUP_ENV_GEN, v, 1);
	setenv(SUP_ENV_DIED, "12345", 1);
	assert_int_equal(restart_init(true), 0);
	assert_true(restart_supervised());
	assert_int_equal(restart_generation(), gen);
}

/* The generation dies: its socket closes, the store keeps what it holds. */
static void gen_end(void)
{
	restart_exit();
	pthread_join(store_thread, NULL);
}

#endif
