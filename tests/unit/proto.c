// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of the control protocol codec (lib/proto.c) and the socket name escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "rdmafs/proto.h"

static int decode(const struct rdmafs_req *r, size_t len, unsigned nfds, struct rdmafs_proto_req *out)
{
	return rdmafs_proto_decode_req(r, len, nfds, 0, out);
}

static void test_roundtrip(void **state)
{
	struct rdmafs_req r;
	struct rdmafs_proto_req d;
	size_t len = rdmafs_proto_encode_req(&r, RDMAFS_OP_MAP, 42, 0, RDMAFS_MAP_READ);

	assert_int_equal(len, sizeof(r));
	assert_int_equal(decode(&r, len, 1, &d), 0);
	assert_int_equal(d.op, RDMAFS_OP_MAP);
	assert_int_equal(d.seq, 42);
	assert_int_equal(d.arg, RDMAFS_MAP_READ);
	assert_int_equal(d.nfds, 1);
}

static void test_every_op_fd_rules(void **state)
{
	static const struct { uint16_t op; uint32_t flags; int32_t arg; unsigned fds; int want; } c[] = {
		{ RDMAFS_OP_FLUSH, 0, 0, 1, 0 },
		{ RDMAFS_OP_FLUSH, 0, 0, 0, -EBADF },
		{ RDMAFS_OP_FLUSH, RDMAFS_FLUSH_ALL, 0, 0, 0 },
		{ RDMAFS_OP_FLUSH, RDMAFS_FLUSH_ALL, 0, 1, -EBADF },
		{ RDMAFS_OP_FLUSH, 0, 0, 2, -EBADF },
		{ RDMAFS_OP_FLUSH, 0, 1, 1, -EINVAL },
		{ RDMAFS_OP_STAT, RDMAFS_STAT_MOUNT | RDMAFS_STAT_NOSCAN, 0, 0, 0 },
		{ RDMAFS_OP_STAT, RDMAFS_STAT_NOSCAN, 0, 1, 0 },
		{ RDMAFS_OP_STAT, 0x100, 0, 1, -EINVAL },
		{ RDMAFS_OP_MAP, 0, RDMAFS_MAP_READ | RDMAFS_MAP_WRITE, 1, 0 },
		{ RDMAFS_OP_MAP, 0, 0, 1, -EINVAL },
		{ RDMAFS_OP_MAP, 0, 4, 1, -EINVAL },
		{ RDMAFS_OP_MAP, 1, RDMAFS_MAP_READ, 1, -EINVAL },
		{ RDMAFS_OP_EVICT, 0, 0, 0, 0 },
		{ RDMAFS_OP_EVICT, 0, 0, 1, -EBADF },
		{ RDMAFS_OP_LEASE, 0, 10, 1, 0 },
		{ RDMAFS_OP_LEASE, 0, -1, 1, -EINVAL },
		{ RDMAFS_OP_LEASE, 0, 65, 1, -EINVAL },
		{ RDMAFS_OP_LEASE_LIST, 0, 3, 0, 0 },
		{ RDMAFS_OP_LEASE_LIST, 0, 0, 1, 0 },
		{ RDMAFS_OP_LEASE_LIST, 0, -3, 0, -EINVAL },
		{ RDMAFS_OP_LEASE_BREAK, 0, 0, 1, 0 },
		{ RDMAFS_OP_LEASE_BREAK, 0, 0, 0, -EBADF },
		{ RDMAFS_OP_FLUSH, RDMAFS_FLUSH_PROGRESS, 0, 1, 0 },
		{ RDMAFS_OP_FLUSH, RDMAFS_FLUSH_PROGRESS | RDMAFS_FLUSH_ALL, 0, 0, 0 },
		{ RDMAFS_OP_FLUSH, 0x4, 0, 1, -EINVAL },
		{ RDMAFS_OP_METRICS, 0, 0, 0, 0 },
		{ RDMAFS_OP_METRICS, RDMAFS_METRICS_NOSCAN, 0, 0, 0 },
		{ RDMAFS_OP_METRICS, 0, 0, 1, -EBADF },
		{ RDMAFS_OP_METRICS, 0, 1, 0, -EINVAL },
		{ RDMAFS_OP_METRICS, 0x1, 0, 0, -EINVAL },
		{ RDMAFS_OP_FILES, RDMAFS_METRICS_NOSCAN, 52, 0, 0 },
		{ RDMAFS_OP_FILES, 0, 0, 1, -EBADF },
		{ RDMAFS_OP_FILES, 0, -1, 0, -EINVAL },
		{ RDMAFS_OP_FILES, 0x8, 0, 0, -EINVAL },
		{ RDMAFS_OP_FILES + 1, 0, 0, 0, -EOPNOTSUPP },
		{ RDMAFS_OP_PROGRESS, 0, 0, 0, -EOPNOTSUPP },
		{ RDMAFS_OP_LEASE_BREAK_NOTICE, 0, 0, 0, -EOPNOTSUPP },
		{ 0, 0, 0, 0, -EOPNOTSUPP },
		{ RDMAFS_OP_STAT | RDMAFS_REPLY_FLAG, 1, 0, 0, -EOPNOTSUPP },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rdmafs_req r;
		struct rdmafs_proto_req d;
		size_t len = rdmafs_proto_encode_req(&r, c[i].op, 1, c[i].flags, c[i].arg);

		if (decode(&r, len, c[i].fds, &d) != c[i].want)
			fail_msg("case %zu: op %u flags %#x arg %d fds %u: got %d want %d", i,
				 c[i].op, c[i].flags, c[i].arg, c[i].fds, decode(&r, len, c[i].fds, &d),
				 c[i].want);
	}
}

static void test_malformed(void **state)
{
	struct rdmafs_req r;
	struct rdmafs_proto_req d;
	char big[RDMAFS_MSG_MAX + 16] = { 0 };

	rdmafs_proto_encode_req(&r, RDMAFS_OP_STAT, 9, RDMAFS_STAT_MOUNT, 0);
	for (size_t len = 0; len < sizeof(struct rdmafs_msg_hdr); len++)
		assert_int_equal(decode(&r, len, 0, &d), -EBADMSG);
	/* a short body with an honest length field is still short */
	r.hdr.len = 40;
	assert_int_equal(decode(&r, 40, 0, &d), -EBADMSG);
	assert_int_equal(d.seq, 9);	/* errors echo the seq once the header was read */
	r.hdr.len = 47;
	assert_int_equal(decode(&r, 48, 0, &d), -EBADMSG);
	/* longer than a request, within the limit */
	memcpy(big, &r, sizeof(r));
	((struct rdmafs_req *)big)->hdr.len = 64;
	assert_int_equal(decode((void *)big, 64, 0, &d), -EMSGSIZE);
	/* over the limit, or cut by the kernel */
	((struct rdmafs_req *)big)->hdr.len = sizeof(big);
	assert_int_equal(rdmafs_proto_decode_req(big, sizeof(big), 0, 0, &d), -EMSGSIZE);
	rdmafs_proto_encode_req(&r, RDMAFS_OP_STAT, 9, RDMAFS_STAT_MOUNT, 0);
	assert_int_equal(rdmafs_proto_decode_req(&r, sizeof(r), 0, 1, &d), -EMSGSIZE);
	/* magic, version, reserved */
	r.hdr.magic ^= 1;
	assert_int_equal(decode(&r, sizeof(r), 0, &d), -EPROTO);
	r.hdr.magic ^= 1;
	r.hdr.version = 2;
	assert_int_equal(decode(&r, sizeof(r), 0, &d), -EPROTONOSUPPORT);
	r.hdr.version = RDMAFS_PROTO_VERSION;
	for (size_t i = 0; i < sizeof(r.reserved); i++) {
		r.reserved[i] = 0x80;
		assert_int_equal(decode(&r, sizeof(r), 0, &d), -EINVAL);
		r.reserved[i] = 0;
	}
	assert_int_equal(decode(&r, sizeof(r), 0, &d), 0);
}

static void test_reply(void **state)
{
	struct {
		struct rdmafs_reply rep;
		struct rdmafs_wire_stat st;
	} m;
	size_t len = rdmafs_proto_encode_reply(&m.rep, RDMAFS_OP_STAT, 5, 0, 1, sizeof(m.st));

	assert_int_equal(len, sizeof(m));
	assert_int_equal(m.rep.hdr.op, RDMAFS_OP_STAT | RDMAFS_REPLY_FLAG);
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_STAT, sizeof(m.st)), 0);
	/* a reply to another op, a wrong record count, a cut message, a positive error */
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_FLUSH, sizeof(m.st)), -EBADMSG);
	assert_int_equal(rdmafs_proto_check_reply(&m, len - 1, RDMAFS_OP_STAT, sizeof(m.st)),
			 -EBADMSG);
	m.rep.count = 2;
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_STAT, sizeof(m.st)), -EBADMSG);
	m.rep.count = 1;
	m.rep.error = 5;
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_STAT, sizeof(m.st)), -EBADMSG);
	/* an error reply carries no records */
	len = rdmafs_proto_encode_reply(&m.rep, RDMAFS_OP_STAT, 5, -EPERM, 0, sizeof(m.st));
	assert_int_equal(len, sizeof(m.rep));
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_STAT, sizeof(m.st)), 0);
	/* notices keep their op */
	len = rdmafs_proto_encode_reply(&m.rep, RDMAFS_OP_LEASE_BREAK_NOTICE, 0, 0, 0, 0);
	assert_int_equal(m.rep.hdr.op, RDMAFS_OP_LEASE_BREAK_NOTICE);
	assert_int_equal(rdmafs_proto_check_reply(&m, len, RDMAFS_OP_LEASE_BREAK_NOTICE, 0), 0);
	assert_true(RDMAFS_LEASE_PER_MSG * sizeof(struct rdmafs_wire_lease) +
		    sizeof(struct rdmafs_reply) <= RDMAFS_MSG_MAX);
	assert_int_equal(rdmafs_proto_rec_size(RDMAFS_OP_MAP), sizeof(struct rdmafs_wire_map));
	assert_int_equal(rdmafs_proto_rec_size(77), -1);
}

static void test_sock_name(void **state)
{
	char buf[128], longp[300];

	assert_int_equal(rdmafs_proto_sock_name("/mnt/data", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "mnt-data");
	assert_int_equal(rdmafs_proto_sock_name("/", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "-");
	assert_int_equal(rdmafs_proto_sock_name("/a-b/c d/.x", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a\\x2db-c\\x20d-.x");
	assert_int_equal(rdmafs_proto_sock_name("/.hidden", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\\x2ehidden");
	/* long paths hash into a bounded name, different paths differ */
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(rdmafs_proto_sock_name(longp, buf, sizeof(buf)), 0);
	assert_int_equal(strncmp(buf, "h-", 2), 0);
	assert_int_equal(strlen(buf), 18);
	char other[128];

	longp[100] = 'b';
	rdmafs_proto_sock_name(longp, other, sizeof(other));
	assert_string_not_equal(buf, other);
	assert_int_equal(rdmafs_proto_sock_name("/mnt/data", buf, 4), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_every_op_fd_rules),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_sock_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
