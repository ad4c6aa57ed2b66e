#!/bin/bash
# staging_budget and growth through write(2), which the daemon does not see (issue 11, 4):
# thp staging lives on a private tmpfs of the budget's size, so the kernel refuses the
# writer with ENOSPC; shmem staging (memfds, sealable) cannot refuse it: the growth is
# noticed within a second, charged and logged naming the file.
. "$(dirname "$0")/lib.sh"
require_mount_env
M=$T/mnt S=$T/src
mkdir -p "$S"
staged() {
	"$RDMAFSCTL" stat --json "$M" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["staged_bytes"])'
}

SHMEM_KNOB=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [ -r $SHMEM_KNOB ] && ! grep -q '\[deny\]' $SHMEM_KNOB; then
	mount_rdmafs "$S" "$M" -o staging=thp,staging_budget=64M,flush_interval=0
	require_passthrough
	rc=0
	dd if=/dev/zero of="$M/big" bs=1M count=128 status=none 2>"$T/dd.err" || rc=$?
	[ $rc != 0 ] && grep -q "No space left" "$T/dd.err" ||
		fail "thp: a 128 MiB write(2) with staging_budget=64M: rc=$rc $(cat "$T/dd.err")"
	s=$(staged)
	[ "$s" -le $((64 << 20)) ] || fail "thp: $s bytes staged over a 64 MiB budget"
	unmount_rdmafs "$M" || fail "thp: daemon exit code $?"
	note "thp: write(2) past the budget refused with ENOSPC, $s bytes staged"
fi

mount_rdmafs "$S" "$M" -o staging=shmem,staging_budget=64M,flush_interval=0
require_passthrough
exec 3<>"$M/big2"
dd if=/dev/zero of="$M/big2" bs=1M count=96 conv=notrunc status=none
over() { [ "$(staged)" -gt $((64 << 20)) ] && grep -q "big2 grew to" "$DAEMON_LOG"; }
wait_for 10 over || fail "shmem: growth past the budget not charged or not logged: $(staged)"
exec 3>&-
rc=0
truncate -s 200M "$M/big3" 2>"$T/tr.err" || rc=$?
[ $rc != 0 ] || fail "shmem: truncate over the budget succeeded"
grep -q "truncate ino=.* refused, staging_budget" "$DAEMON_LOG" || fail "truncate over budget not logged"
unmount_rdmafs "$M" || fail "shmem: daemon exit code $?"
check_daemon_log
