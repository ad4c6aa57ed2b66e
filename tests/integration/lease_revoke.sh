#!/bin/bash
# lease_expire=revoke: a holder that keeps its pin past lease_break_time gets SIGBUS and
# the truncate proceeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=1,lease_break_time=1,lease_expire=revoke
M=$T/mnt

make_file "$M/f" $((1 << 20))
start_holder "$M/f" --ignore

timed truncate -s 4096 "$M/f"
[ "$RC" = 0 ] || fail "truncate failed under revoke: $(cat "$T/timed.err")"
between "$ELAPSED" 0.9 5 || fail "truncate took ${ELAPSED}s, not lease_break_time"
rc=0
wait_holder || rc=$?
[ $rc = 42 ] || fail "holder exit $rc, not SIGBUS: $(cat "$T/holder.out")"
holder_said sigbus || fail "holder saw no SIGBUS"
[ "$(stat_field "$M" lease_stats.revokes)" = 1 ] || fail "revoke not counted"
[ "$(stat -c %s "$M/f")" = 4096 ] || fail "size $(stat -c %s "$M/f")"
unmount_rdmafs "$T/mnt" || fail "daemon exit code $?"
check_daemon_log
