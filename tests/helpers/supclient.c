// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafs-supclient DIR: a stand-in daemon for the supervisor test (supervisor_store.sh),
 * run by rdmafs-supervisor. What it does depends on its generation (RDMAFS_SUPERVISOR_GEN):
 *   0: PUTs a memfd and a file holding an OFD lock, then dies by SIGKILL;
 *   1: LISTs them back (same open file descriptions: content, offset, the lock), checks
 *      that bad requests change nothing, replaces one, DROPs the other, hands over (75);
 *   2: LISTs the replaced one, pages through 300 more, churns 20,000 pipelined PUTs and
 *      DROPs over 2,000 tags (checked against a model), crashes (exit 1);
 *   3: crashes at once: the third crash within 10 s, so the supervisor waits;
 *   4: says it is ready (SUP_READY), then crashes: the next starts at once;
 *   5: LISTs the replaced one again, waits for SIGTERM, exits 0.
 * Each generation writes its findings as key=value lines to DIR/genN.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define EXTRA 300

union msgbuf {
	struct sup_msg m;
	char buf[SUP_MSG_MAX];
};

static int sock;
static FILE *out;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Send a request, receive the reply (and its descriptors into @rfds). Reply status. */
static int xact(uint16_t op, const uint64_t *tags, uint32_t n, const int *fds, int nfds,
		uint32_t arg, union msgbuf *reply, int *rfds, int *nrfds)
{
	union msgbuf req = { .m = { .magic = SUP_MAGIC, .version = SUP_VERSION, .op = op,
				    .count = n, .arg = arg } };
	char cbuf[CMSG_SPACE(sizeof(int) * SUP_MAX_FDS)] = { 0 };
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req.m) + n * sizeof(uint64_t) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t len;

	if (nrfds)
		*nrfds = 0;
	if (n)
		memcpy(req.m.tags, tags, n * sizeof(uint64_t));
	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	iov = (struct iovec){ .iov_base = reply, .iov_len = sizeof(*reply) };
	mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	len = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (len < (ssize_t)sizeof(reply->m) || reply->m.magic != SUP_MAGIC)
		return -EPROTO;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS) {
		int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (rfds && nrfds) {
			memcpy(rfds, CMSG_DATA(c), sizeof(int) * k);
			*nrfds = k;
		} else {
			for (int i = 0; i < k; i++)
				close(((int *)CMSG_DATA(c))[i]);
		}
	}
	return reply->m.status;
}

/* Send @len bytes of @buf (with @fd if >= 0) as one message; the reply's status. */
static int raw(const void *buf, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union msgbuf r;

	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(sock, &mh, 0) < 0 || recv(sock, &r, sizeof(r), 0) < (ssize_t)sizeof(r.m))
		return -EIO;
	return r.m.status;
}

/* True if the other end of pipe @rd was closed by everyone (reads EOF). */
static bool pipe_closed(int rd)
{
	char c;

	return read(rd, &c, 1) == 0;
}

/* Every entry of the store: tags and descriptors (duplicates), at most @max. Count. */
static int list_all(uint64_t *tags, int *fds, int max, int *pages)
{
	union msgbuf r;
	int n = 0, k = 0;
	uint32_t next = 0;

	*pages = 0;
	do {
		if (xact(SUP_LIST, NULL, 0, NULL, 0, next, &r, fds + n, &k) ||
		    k != (int)r.m.count || n + k > max)
			return -1;
		memcpy(tags + n, r.m.tags, k * sizeof(uint64_t));
		n += k;
		next = r.m.arg;
		(*pages)++;
	} while (next);
	return n;
}

/*
 * Pipelined churn, as rdmafs sends its staged files' puts and drops: batches of 64
 * requests sent before any reply is read, 20,000 random PUTs and DROPs over 2,000 tags.
 * Every reply must match a model of the store (in order: a DROP after a PUT of its tag
 * finds it), and the LIST after must hold exactly the model's tags. Then all go again.
 * 1 if all of it held.
 */
static int find(const uint64_t *tags, int n, uint64_t tag);
#define SUP_KIND_OK(tag) (SUP_TAG_KIND(tag) == SUP_K_INODEFD)
#define CHURN_TAGS 2000
static int churn(int fd, uint64_t keep)
{
	static bool in[CHURN_TAGS];
	static uint64_t tags[CHURN_TAGS + 16];
	static int fds[CHURN_TAGS + 16];
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint32_t seed = 12345;
	int ok = 1, n, pages, count = 0;

	for (int b = 0; b < 20000 / 64; b++) {
		int want[64];

		for (int i = 0; i < 64; i++) {
			union msgbuf q = { .m = { .magic = SUP_MAGIC, .version = SUP_VERSION,
						  .count = 1 } };
			struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q.m) + 8 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
			uint32_t id;

			seed = seed * 1103515245 + 12345;
			id = (seed >> 8) % CHURN_TAGS;
			q.m.tags[0] = SUP_TAG(SUP_K_INODEFD, id);
			if ((seed >> 4) & 1) {
				struct cmsghdr *c;

				q.m.op = SUP_PUT;
				memset(cbuf, 0, sizeof(cbuf));
				mh.msg_control = cbuf;
				mh.msg_controllen = sizeof(cbuf);
				c = CMSG_FIRSTHDR(&mh);
				c->cmsg_level = SOL_SOCKET;
				c->cmsg_type = SCM_RIGHTS;
				c->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(c), &fd, sizeof(int));
				want[i] = 0;
				count += !in[id];
				in[id] = true;
			} else {
				q.m.op = SUP_DROP;
				want[i] = in[id] ? 0 : -ENOENT;
				count -= in[id];
				in[id] = false;
			}
			if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
				return 0;
		}
		for (int i = 0; i < 64; i++) {
			union msgbuf r;

			if (recv(sock, &r, sizeof(r), 0) < (ssize_t)sizeof(r.m) ||
			    r.m.status != want[i])
				ok = 0;
		}
	}
	n = list_all(tags, fds, CHURN_TAGS + 16, &pages);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	ok &= n == count + 1;
	for (int i = 0; i < n; i++) {
		uint32_t id = tags[i] & 0xffffffu;

		if (tags[i] == keep)
			continue;
		if (SUP_KIND_OK(tags[i]) && id < CHURN_TAGS && in[id])
			in[id] = false;	/* seen once */
		else
			ok = 0;
	}
	for (int i = 0; i < CHURN_TAGS; i++) {
		union msgbuf r;
		uint64_t t = SUP_TAG(SUP_K_INODEFD, i);

		if (in[i])
			ok = 0;	/* in the model, not listed */
		if (find(tags, n, t) >= 0 && xact(SUP_DROP, &t, 1, NULL, 0, 0, &r, NULL, NULL))
			ok = 0;
	}
	n = list_all(tags, fds, 16, &pages);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return ok && n == 1 && tags[0] == keep;
}

static int find(const uint64_t *tags, int n, uint64_t tag)
{
	for (int i = 0; i < n; i++)
		if (tags[i] == tag)
			return i;
	return -1;
}

static bool locked_by_other(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(path, O_RDWR | O_CLOEXEC);
	bool r = fd >= 0 && !fcntl(fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK;

	if (fd >= 0)
		close(fd);
	return r;
}

static int memfd_with(const char *text)
{
	int fd = memfd_create("supclient", MFD_CLOEXEC);

	if (fd >= 0 && pwrite(fd, text, strlen(text), 0) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool content_is(int fd, const char *text)
{
	char buf[64] = { 0 };

	return pread(fd, buf, sizeof(buf) - 1, 0) == (ssize_t)strlen(text) && !strcmp(buf, text);
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char *argv[])
{
	const uint64_t t_stage = SUP_TAG(SUP_K_STAGING, 1), t_lock = SUP_TAG(SUP_K_LOCK, 1);
	char path[4096], fpath[4096];
	const char *e_fd = getenv(SUP_ENV_FD), *e_gen = getenv(SUP_ENV_GEN);
	static uint64_t tags[EXTRA + 16];
	static int fds[EXTRA + 16];
	union msgbuf r;
	int gen, n, pages;

	if (argc != 2 || !e_fd || !e_gen)
		return 2;
	sock = atoi(e_fd);
	gen = atoi(e_gen);
	snprintf(path, sizeof(path), "%s/gen%d", argv[1], gen);
	snprintf(fpath, sizeof(fpath), "%s/f", argv[1]);
	out = fopen(path, "w");
	if (!out)
		return 1;
	setvbuf(out, NULL, _IONBF, 0);
	fprintf(out, "start_ms=%.3f\n", now_ms());
	if (getenv(SUP_ENV_DIED))	/* the supervisor's view: its death to our start */
		fprintf(out, "since_death_ms=%.0f\nbackoff_ms=%s\n",
			now_ms() - atof(getenv(SUP_ENV_DIED)) / 1e6, getenv(SUP_ENV_BACKOFF));

	if (gen == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int f = open(fpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		int put[2] = { memfd_with("hello"), f };
		uint64_t t[2] = { t_stage, t_lock };

		if (f < 0 || put[0] < 0 || lseek(f, 123, SEEK_SET) != 123 ||
		    fcntl(f, F_OFD_SETLK, &fl))
			return 1;
		fprintf(out, "put=%d\n", xact(SUP_PUT, t, 2, put, 2, 0, &r, NULL, NULL));
		fprintf(out, "death_ms=%.3f\n", now_ms());
		raise(SIGKILL);	/* a crash: our copies close, the store's stay */
	}
	if (gen == 1) {
		uint64_t bad_tags[2] = { t_stage, SUP_TAG(SUP_K_STAGING, 2) };
		int p[2], fresh, i_stage, i_lock;

		n = list_all(tags, fds, 16, &pages);
		i_stage = find(tags, n, t_stage);
		i_lock = find(tags, n, t_lock);
		fprintf(out, "listed=%d\n", n);
		if (n != 2 || i_stage < 0 || i_lock < 0)
			return 1;
		fprintf(out, "memfd_content_kept=%d\n", content_is(fds[i_stage], "hello"));
		fprintf(out, "file_offset_kept=%d\n", lseek(fds[i_lock], 0, SEEK_CUR) == 123);
		fprintf(out, "lock_kept=%d\n", locked_by_other(fpath));

		/* Bad messages, each with a descriptor: refused, descriptor closed, store
		 * unchanged. */
		{
			static char big[SUP_MSG_MAX + 64];
			struct sup_msg bad = { .magic = 0xdeadbeef, .version = SUP_VERSION,
					       .op = SUP_PUT };
			if (pipe2(p, O_CLOEXEC))
				return 1;
			fprintf(out, "bad_magic_status=%d\n", raw(&bad, sizeof(bad), p[1]));
			bad.magic = SUP_MAGIC;
			bad.version = SUP_VERSION + 1;
			fprintf(out, "bad_version_status=%d\n", raw(&bad, sizeof(bad), p[1]));
			bad.version = SUP_VERSION;
			bad.op = SUP_LIST;
			fprintf(out, "list_with_fd_status=%d\n", raw(&bad, sizeof(bad), p[1]));
			bad.op = 99;
			fprintf(out, "bad_op_status=%d\n", raw(&bad, sizeof(bad), p[1]));
			memcpy(big, &bad, sizeof(bad));
			fprintf(out, "oversized_status=%d\n", raw(big, sizeof(big), p[1]));
			close(p[1]);
			fprintf(out, "bad_fd_closed=%d\n", pipe_closed(p[0]));
		}
		fprintf(out, "put_count_mismatch=%d\n",
			xact(SUP_PUT, bad_tags, 2, &p[0], 1, 0, &r, NULL, NULL));
		/* A DROP naming a tag held and one not: the one held goes, -ENOENT says the
		 * other was not there (batched drops of the daemon). */
		{
			uint64_t part[2] = { SUP_TAG(SUP_K_STAGING, 3), SUP_TAG(SUP_K_STAGING, 2) };
			int x = memfd_with("dropped");

			fprintf(out, "put_extra=%d\n",
				xact(SUP_PUT, &part[0], 1, &x, 1, 0, &r, NULL, NULL));
			close(x);
			fprintf(out, "drop_unknown=%d\n",
				xact(SUP_DROP, part, 2, NULL, 0, 0, &r, NULL, NULL));
		}
		for (int i = 0; i < n; i++)
			close(fds[i]);
		n = list_all(tags, fds, 16, &pages);
		fprintf(out, "store_unchanged=%d\n",
			n == 2 && find(tags, n, t_stage) >= 0 && find(tags, n, t_lock) >= 0);
		for (int i = 0; i < n; i++)
			close(fds[i]);

		/* Replace the staging, drop the lock: its last descriptor closes. */
		fresh = memfd_with("world");
		fprintf(out, "replace=%d\n",
			xact(SUP_PUT, &t_stage, 1, &fresh, 1, 0, &r, NULL, NULL));
		close(fresh);
		fprintf(out, "drop=%d\n", xact(SUP_DROP, &t_lock, 1, NULL, 0, 0, &r, NULL, NULL));
		fprintf(out, "lock_released=%d\n", !locked_by_other(fpath));
		return SUP_EXIT_HANDOVER;
	}
	if (gen == 2) {
		uint64_t more[EXTRA];
		int mfd[EXTRA], ok = 1;

		n = list_all(tags, fds, 16, &pages);
		fprintf(out, "handover_kept=%d\n", n == 1 && tags[0] == t_stage &&
			content_is(fds[0], "world"));
		for (int i = 0; i < n; i++)
			close(fds[i]);
		/* More than one message's worth: PUT in two, LIST in pages, DROP in two. */
		for (int i = 0; i < EXTRA; i++) {
			more[i] = SUP_TAG(SUP_K_STAGING, 100 + i);
			mfd[i] = memfd_with("x");
			if (mfd[i] < 0)
				return 1;
		}
		ok &= !xact(SUP_PUT, more, SUP_MAX_FDS, mfd, SUP_MAX_FDS, 0, &r, NULL, NULL);
		ok &= !xact(SUP_PUT, more + SUP_MAX_FDS, EXTRA - SUP_MAX_FDS, mfd + SUP_MAX_FDS,
			    EXTRA - SUP_MAX_FDS, 0, &r, NULL, NULL);
		for (int i = 0; i < EXTRA; i++)
			close(mfd[i]);
		n = list_all(tags, fds, EXTRA + 16, &pages);
		fprintf(out, "paged_list=%d pages=%d\n", n, pages);
		for (int i = 0; i < n; i++)
			close(fds[i]);
		ok &= !xact(SUP_DROP, more, SUP_MAX_FDS, NULL, 0, 0, &r, NULL, NULL);
		ok &= !xact(SUP_DROP, more + SUP_MAX_FDS, EXTRA - SUP_MAX_FDS, NULL, 0, 0, &r, NULL,
			    NULL);
		n = list_all(tags, fds, 16, &pages);
		for (int i = 0; i < n; i++)
			close(fds[i]);
		fprintf(out, "paging_ok=%d\n", ok && n == 1);
		mfd[0] = memfd_with("y");
		fprintf(out, "churn_ok=%d\n", mfd[0] >= 0 && churn(mfd[0], t_stage));
		close(mfd[0]);
		fprintf(out, "death_ms=%.3f\n", now_ms());
		return 1;	/* a crash: the next starts at once */
	}
	if (gen == 3) {
		fprintf(out, "death_ms=%.3f\n", now_ms());
		return 1;	/* the third crash within 10 s: the next start is delayed */
	}
	if (gen == 4) {
		/* Serving: a death from now on is no start-up failure, no back-off. */
		fprintf(out, "ready_status=%d\n",
			xact(SUP_READY, NULL, 0, NULL, 0, 0, &r, NULL, NULL));
		fprintf(out, "death_ms=%.3f\n", now_ms());
		return 1;
	}
	if (gen == 5) {
		n = list_all(tags, fds, 16, &pages);
		fprintf(out, "kept=%d\n",
			n == 1 && tags[0] == t_stage && content_is(fds[0], "world"));
		signal(SIGTERM, on_term);
		fprintf(out, "ready=1\n");
		for (;;)
			pause();
	}
	return 1;
}
