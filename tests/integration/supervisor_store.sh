#!/bin/bash
# Issue 15, step 1 of doc/restart.md: the supervisor's descriptor store, alone (not yet
# wired into rdmafs). A stand-in daemon (tests/helpers/supclient.c) PUTs a memfd and a
# file carrying an OFD lock, then dies by SIGKILL; the next generation gets the same open
# file descriptions back (content, offset, the lock still held), bad requests are refused
# without changing the store, a replaced descriptor and a dropped one (the lock goes) work,
# a handover starts the next generation, which pages through 300 more and churns 20,000
# pipelined PUTs and DROPs (replies and the LIST after checked against a model); the third crash
# within 10 s before SUP_READY delays the next start by a second, a crash after it does
# not; SIGTERM reaches the daemon and the supervisor exits 0 with it.
. "$(dirname "$0")/lib.sh"
SUP=${RDMAFS_SUPERVISOR:-$RDMAFS_BUILD/src/rdmafs-supervisor}
CLIENT=${RDMAFS_SUPCLIENT:-$RDMAFS_BUILD/tests/helpers/rdmafs-supclient}
"$SUP" -- "$CLIENT" "$T" 2>"$T/sup.log" &
sup=$!
_pids+=("$sup")
wait_for 30 grep -q '^ready=1' "$T/gen5" 2>/dev/null ||
	{ cat "$T/sup.log" "$T"/gen* >&2 || true; fail "generation 5 not ready"; }
for g in 0 1 2 3 4 5; do sed "s/^/# gen$g: /" "$T/gen$g"; done
want() {	# want GEN KEY=VALUE
	grep -qx "$2" "$T/gen$1" || fail "generation $1: want $2, got: $(grep "^${2%%=*}=" "$T/gen$1" || echo nothing)"
}
want 0 put=0
want 1 listed=2
want 1 memfd_content_kept=1
want 1 file_offset_kept=1
want 1 lock_kept=1
want 1 bad_magic_status=-71	# -EPROTO
want 1 bad_version_status=-93	# -EPROTONOSUPPORT
want 1 list_with_fd_status=-22	# -EINVAL
want 1 bad_op_status=-95	# -EOPNOTSUPP
want 1 oversized_status=-90	# -EMSGSIZE
want 1 bad_fd_closed=1
want 1 put_count_mismatch=-22	# -EINVAL
want 1 put_extra=0
want 1 drop_unknown=-2		# -ENOENT: one tag was not held; the one held is dropped
want 1 store_unchanged=1
want 1 replace=0
want 1 drop=0
want 1 lock_released=1
want 2 handover_kept=1
want 2 'paged_list=301 pages=2'
want 2 paging_ok=1
want 2 churn_ok=1	# pipelined requests, each reply as a model of the store says
want 4 ready_status=0
want 5 kept=1
want 2 backoff_ms=0
want 3 backoff_ms=0
want 4 backoff_ms=1000	# the third death within 10 s before SUP_READY
want 5 backoff_ms=0	# generation 4 was ready
for g in 1 2 3 4 5; do
	note "generation $g started $(sed -n 's/^since_death_ms=//p' "$T/gen$g") ms after the" \
		"supervisor saw generation $((g - 1)) exit"
done
kill -TERM "$sup"
rc=0
wait "$sup" || rc=$?
[ $rc -eq 0 ] || { cat "$T/sup.log" >&2; fail "supervisor exited $rc after SIGTERM"; }
exit 0
