#!/bin/bash
# A truncate that shrinks a leased, pinned file: the holder is notified (lease fd and its
# signal), the truncate waits while it unpins, then succeeds. Growing and writing do not
# break the lease.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
lease_mount flush_interval=1,lease_break_time=10
M=$T/mnt

make_file "$M/f" $((4 << 20))
start_holder "$M/f" --signo 10 --delay-ms 500

timed truncate -s $((8 << 20)) "$M/f"
[ "$RC" = 0 ] || fail "growing truncate failed: $(cat "$T/timed.err")"
between "$ELAPSED" 0 0.4 || fail "growing truncate took ${ELAPSED}s: it must not break leases"
timed dd if=/dev/zero of="$M/f" bs=4k count=1 seek=1000 conv=notrunc status=none
[ "$RC" = 0 ] || fail "write failed"
# a break happens inside the truncate or write that needs it: the count is final now
[ "$(stat_field "$M" lease_stats.breaks)" = 0 ] || fail "growing or writing broke the lease"
holder_said notice && fail "growing or writing sent the holder a notice"

timed truncate -s 4096 "$M/f"
[ "$RC" = 0 ] || fail "truncate failed: $(cat "$T/timed.err")"
between "$ELAPSED" 0.45 8 || fail "truncate took ${ELAPSED}s: it did not wait for the holder"
wait_holder || fail "holder exit $?: $(cat "$T/holder.out")"
holder_said notice || fail "holder got no notice"
holder_said released || fail "holder did not release"
[ "$(stat -c %s "$M/f")" = 4096 ] || fail "size $(stat -c %s "$M/f") after truncate"
cmp -s -n 4096 "$T/ref" "$M/f" || fail "bytes before the cut changed"
[ "$(stat_field "$M" lease_stats.breaks)" = 1 ] || fail "the truncate's break not counted"
note "truncate waited ${ELAPSED}s for the holder"

# open(O_TRUNC) reaches the daemon as a truncate: it breaks the lease too.
start_holder "$M/f" --signo 10 --delay-ms 300
timed sh -c ": >'$M/f'"
[ "$RC" = 0 ] || fail "O_TRUNC open failed: $(cat "$T/timed.err")"
between "$ELAPSED" 0.25 8 || fail "O_TRUNC open took ${ELAPSED}s: it did not wait for the holder"
wait_holder || fail "holder exit $?: $(cat "$T/holder.out")"
[ "$(stat -c %s "$M/f")" = 0 ] || fail "size $(stat -c %s "$M/f") after O_TRUNC"

unmount_rdmafs "$T/mnt" || fail "daemon exit code $?"
[ "$(stat -c %s "$T/src/f")" = 0 ] || fail "backing size $(stat -c %s "$T/src/f")"
check_daemon_log
