#!/bin/bash
# A holder killed with SIGKILL releases its lease: a truncate waiting for it proceeds at
# once, long before lease_break_time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=1,lease_break_time=30
M=$T/mnt

make_file "$M/f" $((1 << 20))
start_holder "$M/f" --ignore

truncate -s 8192 "$M/f" 2>"$T/trunc.err" &
tpid=$!
# the holder (--ignore) prints 'notice' when the break reaches it, and keeps its pin
wait_for 10 holder_said notice || fail "holder got no notice: $(cat "$T/holder.out")"
kill -0 "$tpid" 2>/dev/null || fail "truncate did not wait for the holder"
t0=$(date +%s.%N)
kill -9 "$HOLDER_PID"
rc=0
wait "$tpid" || rc=$?
elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
[ $rc = 0 ] || fail "truncate failed after the holder died: $(cat "$T/trunc.err")"
between "$elapsed" 0 5 || fail "truncate went on ${elapsed}s after the holder died"
[ "$(stat -c %s "$M/f")" = 8192 ] || fail "size $(stat -c %s "$M/f")"
cmp -s -n 8192 "$T/ref" "$M/f" || fail "bytes before the cut changed"
note "truncate proceeded ${elapsed}s after SIGKILL of the holder"
unmount_rdmafs "$T/mnt" || fail "daemon exit code $?"
check_daemon_log
