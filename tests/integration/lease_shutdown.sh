#!/bin/bash
# Daemon shutdown (SIGTERM) breaks leases: the holder is notified and releases, the daemon
# commits and exits without waiting lease_break_time.
. "$(dirname "$0")/lib.sh"
# The holder still has the file open at SIGTERM, as in sigterm.sh: its handle's RELEASE
# never comes, so that struct handle is still allocated at exit.
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=0,lease_break_time=30
M=$T/mnt

make_file "$M/f" $((1 << 20))
start_holder "$M/f" --signo 10
t0=$(date +%s.%N)
kill -TERM "$DAEMON_PID"
rc=0
wait "$SUPERVISOR_PID" || rc=$?
elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
# SIGTERM is a clean stop: exit 0 says the final commit succeeded (1 if it did not).
[ $rc = 0 ] || fail "daemon exit code $rc"
between "$elapsed" 0 10 || fail "shutdown took ${elapsed}s"
wait_holder || true	# its close may see the connection gone
holder_said notice || fail "holder got no notice at shutdown: $(cat "$T/holder.out")"
umount "$T/mnt" 2>/dev/null || true
cmp -s "$T/ref" "$T/src/f" || fail "backing file differs after shutdown"
note "shutdown with a leased file took ${elapsed}s"
check_daemon_log
