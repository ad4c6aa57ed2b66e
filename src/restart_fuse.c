// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart_fuse.c - the FUSE session of a supervised daemon (doc/restart.md, F4, F5, F11):
 * custom io that locks each worker's request buffer and records the kernel's INIT,
 * adoption of the store's /dev/fuse by a resumed generation with a synthetic INIT, and
 * FUSE_NOTIFY_RESEND. Interface: restart.h.
 */
#include "rdmafsd.h"
#include "restart.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define RS_NOTIFY_RESEND 7			/* FUSE_NOTIFY_RESEND (7.40) */
#define RS_HAS_RESEND (1ULL << 39)		/* FUSE_HAS_RESEND, in flags2 */
#define RS_INIT_EXT (1U << 30)			/* FUSE_INIT_EXT */
/* The unique of the INIT a resumed generation feeds its own session: odd (the kernel's
 * are even), so the reply our writev swallows could never be the kernel's. */
#define RS_SYNTH_INIT_UNIQUE ((1ULL << 62) | 1)
#define META_LAYOUT 2

static struct restart_table *meta_tab;
static struct restart_meta *meta;
static _Atomic bool first_reply_done;	/* resumed: the blackout is measured */
static bool mlock_warned;
/* The unique of the request this worker read last through rs_read(); 0 when it was
 * spliced (no callback sees a spliced request's header). */
static __thread uint64_t read_unique;

uint64_t restart_fuse_read_unique(void)
{
	return read_unique;
}

static uint64_t init_unique;		/* the kernel's INIT, until its reply is recorded */
static struct {
	uint32_t len;
	uint8_t b[sizeof(meta->init_out)];
} synth_out;				/* our synthetic INIT's reply (resumed) */

/* struct fuse_init_out up to what the comparison reads (7.36+). */
struct rs_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2;
};

/* The payload of a reply (after its fuse_out_header) into @dst; its length. */
static uint32_t reply_payload(const struct iovec *iov, int count, uint8_t *dst, size_t max)
{
	size_t skip = sizeof(struct fuse_out_header), n = 0;

	for (int i = 0; i < count && n < max; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		p += skip;
		l -= skip;
		skip = 0;
		l = MIN(l, max - n);
		memcpy(dst + n, p, l);
		n += l;
	}
	return n;
}

#ifdef RDMAFS_TEST_KNOBS
/* Test knob: the kernel's INIT loses FUSE_HAS_RESEND (a kernel older than 6.9). */
static void test_mask_resend(struct fuse_init_in *in, size_t len)
{
	if (getenv("RDMAFS_TEST_NO_RESEND") &&
	    len >= offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2))
		in->flags2 &= ~(uint32_t)(RS_HAS_RESEND >> 32);
}

/* Test knob: this binary answers INIT otherwise (max_write halved) when its file ends
 * with the string RDMAFS_TEST_INCOMPAT_MARK names (a copy the test appended it to). */
static void test_incompat(struct rs_init_out *o)
{
	const char *mark = getenv("RDMAFS_TEST_INCOMPAT_MARK");
	char tail[256];
	struct stat sb;
	ssize_t n = -1;
	int fd;

	if (!mark || !*mark)
		return;
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && !fstat(fd, &sb))
		n = pread(fd, tail, sizeof(tail),
			  sb.st_size > (off_t)sizeof(tail) ? sb.st_size - (off_t)sizeof(tail) : 0);
	if (fd >= 0)
		close(fd);
	if (n > 0 && memmem(tail, n, mark, strlen(mark))) {
		log_notice("restart: test knob: this binary answers INIT with max_write %u",
			   o->max_write / 2);
		o->max_write /= 2;
	}
}
#else
static void test_mask_resend(struct fuse_init_in *in, size_t len)
{
	(void)in;
	(void)len;
}

static void test_incompat(struct rs_init_out *o)
{
	(void)o;
}
#endif

static uint64_t init_out_flags(const struct rs_init_out *o)
{
	return o->flags | (o->flags & RS_INIT_EXT ? (uint64_t)o->flags2 << 32 : 0);
}

/*
 * Resumed: whether the synthetic INIT's reply (this binary's) matches generation 0's,
 * which the kernel applied for the life of the mount. A binary that would negotiate
 * other flags or sizes cannot serve it (doc/restart.md 3.8).
 */
static bool init_out_matches(void)
{
	struct rs_init_out was = { 0 }, now = { 0 };
	uint32_t len = atomic_load_explicit((_Atomic uint32_t *)&meta->init_out_len,
					    memory_order_acquire);

	if (!len) {
		log_notice("restart: no INIT reply recorded: not compared");
		return true;
	}
	memcpy(&was, meta->init_out, MIN(len, sizeof(was)));
	memcpy(&now, synth_out.b, MIN(synth_out.len, sizeof(now)));
	test_incompat(&now);
	if (init_out_flags(&was) == init_out_flags(&now) && was.max_write == now.max_write &&
	    was.max_pages == now.max_pages && was.time_gran == now.time_gran)
		return true;
	log_err("restart: this binary answers INIT otherwise than the kernel was answered at "
		"mount (flags %#" PRIx64 " / %#" PRIx64 ", max_write %u / %u, max_pages %u / %u, "
		"time_gran %u / %u): it cannot serve this mount", init_out_flags(&was),
		init_out_flags(&now), was.max_write, now.max_write, was.max_pages, now.max_pages,
		was.time_gran, now.time_gran);
	return false;
}

static bool init_can_resend(const struct fuse_init_in *in, size_t len)
{
	uint64_t flags;

	if (len < offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2))
		return false;
	flags = in->flags;
	if (flags & RS_INIT_EXT)
		flags |= (uint64_t)in->flags2 << 32;
	return flags & RS_HAS_RESEND;
}

static ssize_t rs_read(int fd, void *buf, size_t len, void *userdata)
{
	static __thread void *locked;
	const struct fuse_in_header *in = buf;
	ssize_t n;

	(void)userdata;
	/*
	 * The kernel copies a request into this buffer after taking it off its queue; a
	 * fault in that copy while SIGKILL is pending ends the request with EIO, where no
	 * resend can bring it back (F11). A locked buffer never faults.
	 */
	if (buf != locked && restart_supervised()) {
		if (mlock(buf, len) && !mlock_warned) {
			mlock_warned = true;
			log_warn("restart: mlock of a request buffer (%zu bytes): %s; a request "
				 "being read at a daemon's death may fail with EIO", len,
				 strerror(errno));
		}
		locked = buf;
	}
	n = read(fd, buf, len);
	read_unique = n >= (ssize_t)sizeof(*in) ? in->unique : 0;
	if (n < (ssize_t)sizeof(*in) || in->opcode != FUSE_INIT || !meta)
		return n;
	/* The kernel's only INIT: kept for the generations after us (F5). */
	{
		size_t l = MIN((size_t)n - sizeof(*in), sizeof(meta->init_in));

		test_mask_resend((void *)(in + 1), l);
		init_unique = in->unique;

		memcpy(meta->init_in, in + 1, l);
		atomic_store_explicit((_Atomic uint32_t *)&meta->init_in_len, l,
				      memory_order_release);
		if (restart_supervised() && !init_can_resend((const void *)(in + 1), l)) {
			log_warn("restart: kernel cannot resend requests (no FUSE_HAS_RESEND); "
				 "a daemon death ends the mount");
			restart_disable();
		}
	}
	return n;
}

static ssize_t rs_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	ssize_t len = 0;

	(void)userdata;
	if (out->unique == RS_SYNTH_INIT_UNIQUE) {	/* our own INIT's reply */
		synth_out.len = reply_payload(iov, count, synth_out.b, sizeof(synth_out.b));
		for (int i = 0; i < count; i++)
			len += iov[i].iov_len;
		return len;
	}
	len = writev(fd, iov, count);
	if (meta && init_unique && out->unique == init_unique && len > 0) {
		/* what the kernel now applies until unmount: later generations compare */
		uint32_t l = reply_payload(iov, count, meta->init_out, sizeof(meta->init_out));

		atomic_store_explicit((_Atomic uint32_t *)&meta->init_out_len, l,
				      memory_order_release);
		init_unique = 0;
	}
	if (meta && !atomic_load_explicit(&first_reply_done, memory_order_relaxed) &&
	    out->unique && restart_died_ns() &&
	    !atomic_exchange(&first_reply_done, true))
		meta->last_blackout_ns = now_ns() - restart_died_ns();
	return len;
}

/*
 * Without this callback libfuse offers no FUSE_CAP_SPLICE_READ to a custom io, and every
 * request is read(2) into the worker's buffer: the kernel then copies a WRITE's payload
 * into daemon memory through get_user_pages, which gives up when SIGKILL is pending even
 * for a locked buffer, and the request ends with EIO (F11). Through splice the kernel
 * copies into pipe pages it allocates itself; the request is on the processing queue
 * (resent after a death) before any daemon memory is touched. The INIT is still read
 * through rs_read(): libfuse splices only once INIT negotiated FUSE_CAP_SPLICE_READ.
 */
static ssize_t rs_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout,
				 size_t len, unsigned int flags, void *userdata)
{
	(void)userdata;
	read_unique = 0;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io rs_io = {
	.read = rs_read,
	.writev = rs_writev,
	.splice_receive = rs_splice_receive,
};

static int meta_open(void)
{
	meta_tab = restart_table_open(RESTART_T_META, sizeof(struct restart_meta), META_LAYOUT,
				      1);
	if (!meta_tab)
		return -errno;
	if (!restart_table_adopted(meta_tab)) {
		if (restart_table_alloc(meta_tab) != 0)
			return -EPROTO;
		restart_table_publish(meta_tab, 0);
	}
	meta = restart_table_rec(meta_tab, 0);
	return 0;
}

int restart_fuse_attach(struct fuse_session *se, int fd)
{
	int r;

	if (!restart_supervised())
		return 0;
	r = meta_open();
	if (r) {
		log_err("restart: meta table: %s", strerror(-r));
		return r;
	}
	if (fuse_session_custom_io(se, &rs_io, sizeof(rs_io), fd))
		return -EIO;
	return restart_put(SUP_TAG(SUP_K_DEVFUSE, 0), fd);
}

int restart_fuse_adopt(struct fuse_session *se)
{
	struct {
		struct fuse_in_header h;
		uint8_t arg[sizeof(meta->init_in)];
	} init = { .h = { .opcode = FUSE_INIT, .unique = RS_SYNTH_INIT_UNIQUE } };
	struct fuse_buf fb = { .mem = &init };
	uint32_t len;
	int fd, r;

	r = meta_open();
	if (r) {
		log_err("restart: meta table: %s", strerror(-r));
		return r == -EPROTO ? -EPROTONOSUPPORT : r;	/* another layout */
	}
	fd = restart_take(SUP_TAG(SUP_K_DEVFUSE, 0));
	if (fd < 0)
		return fd;
	if (fuse_session_custom_io(se, &rs_io, sizeof(rs_io), fd)) {
		close(fd);
		return -EIO;
	}
	len = atomic_load_explicit((_Atomic uint32_t *)&meta->init_in_len, memory_order_acquire);
	if (!len) {	/* the kernel's INIT was never read: it is still queued */
		log_notice("restart: no INIT recorded: the kernel's comes next");
		meta->restarts++;
		return fd;
	}
	memcpy(init.arg, meta->init_in, len);
	init.h.len = sizeof(init.h) + len;
	fb.size = init.h.len;
	fuse_session_process_buf(se, &fb);
	if (fuse_session_exited(se)) {
		log_err("restart: the recorded INIT was refused");
		return -EPROTO;
	}
	if (!init_out_matches())
		return -EPROTONOSUPPORT;	/* @se keeps @fd: closed with it */
	meta->restarts++;
	return fd;
}

int restart_fuse_resend(int fd)
{
	struct fuse_out_header h = { .len = sizeof(h), .error = RS_NOTIFY_RESEND };

	if (write(fd, &h, sizeof(h)) != sizeof(h))
		return -errno;
	return 0;
}

void restart_stats(struct restart_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->supervised = restart_supervised();
	out->restartable = restart_supervised();	/* off without FUSE_HAS_RESEND */
	out->prev_exit = restart_prev_exit();
	out->generation = restart_generation();
	if (!meta)
		return;
	out->restarts = meta->restarts;
	out->last_blackout_ms = meta->last_blackout_ns / 1e6;
}
