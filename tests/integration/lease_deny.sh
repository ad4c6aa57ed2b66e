#!/bin/bash
# lease_expire=deny: a holder that keeps its pin past lease_break_time makes the truncate,
# hole punch and zero range fail with EBUSY, and the bytes stay intact; once the holder is
# gone the truncate works.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=1,lease_break_time=1,lease_expire=deny
M=$T/mnt

make_file "$M/f" $((1 << 20))
start_holder "$M/f" --signo 10 --ignore

timed truncate -s 0 "$M/f"
[ "$RC" != 0 ] || fail "truncate succeeded while the holder kept its pin"
grep -qi "busy" "$T/timed.err" || fail "truncate failed, but not with EBUSY: $(cat "$T/timed.err")"
between "$ELAPSED" 0.9 5 || fail "truncate failed after ${ELAPSED}s, not after lease_break_time"
cmp -s "$T/ref" "$M/f" || fail "bytes changed by a denied truncate"
for mode in -p -z; do
	timed fallocate "$mode" -o 4096 -l 65536 "$M/f"
	[ "$RC" != 0 ] || fail "fallocate $mode succeeded while the holder kept its pin"
	grep -qi "busy" "$T/timed.err" || fail "fallocate $mode: not EBUSY: $(cat "$T/timed.err")"
	cmp -s "$T/ref" "$M/f" || fail "bytes changed by a denied fallocate $mode"
done
kill -0 "$HOLDER_PID" 2>/dev/null || fail "deny must not hurt the holder"
holder_said notice || fail "holder got no notice"
[ "$(stat_field "$M" lease_stats.denies)" = 3 ] || fail "the 3 denied breaks not counted"

kill -9 "$HOLDER_PID"
wait_holder || true
timed truncate -s 0 "$M/f"
[ "$RC" = 0 ] || fail "truncate after the holder died: $(cat "$T/timed.err")"
unmount_rdmafs "$T/mnt" || fail "daemon exit code $?"
[ "$(stat -c %s "$T/src/f")" = 0 ] || fail "backing size $(stat -c %s "$T/src/f")"
check_daemon_log
