#!/bin/bash
# fallocate punch-hole and zero-range free staged pages: like a truncate they wait for the
# holder to unpin, then succeed and read back as zeros (staging and backing file).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=1,lease_break_time=10
M=$T/mnt

make_file "$M/f" $((2 << 20))
cp "$T/ref" "$T/expect"
for mode in -p -z; do
	start_holder "$M/f" --signo 10 --delay-ms 400
	off=$([ "$mode" = -p ] && echo 65536 || echo 524288)
	timed fallocate "$mode" -o $off -l 131072 "$M/f"
	[ "$RC" = 0 ] || fail "fallocate $mode: $(cat "$T/timed.err")"
	between "$ELAPSED" 0.35 8 || fail "fallocate $mode took ${ELAPSED}s: it did not wait"
	wait_holder || fail "holder exit $?: $(cat "$T/holder.out")"
	holder_said released || fail "holder did not release"
	dd if=/dev/zero of="$T/expect" bs=1 seek=$off count=131072 conv=notrunc status=none
	cmp -s "$T/expect" "$M/f" || fail "content after fallocate $mode"
	note "fallocate $mode waited ${ELAPSED}s for the holder"
done
[ "$(stat_field "$M" lease_stats.breaks)" = 2 ] || fail "the punch and zero-range breaks not counted"
unmount_rdmafs "$T/mnt" || fail "daemon exit code $?"
cmp -s "$T/expect" "$T/src/f" || fail "backing file content"
check_daemon_log
