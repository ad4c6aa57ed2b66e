#!/bin/bash
# Periodic write-back (flush_interval=1): mmap stores and pinned kernel writes reach the
# backing file with no fsync, no close and no unmount, within a bounded wait.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=1,flush_on_close=no,chunk_size=16K
require_passthrough

# mmap stores, the mapping (and the file) stay open for the whole check.
random_file "$S/m" 2M
cp "$S/m" "$T/m"
"$HELPER" hold-mmapwrite "$M/m" 100000 700000 21 20 >/dev/null &
holder=$!
"$HELPER" pwrite "$T/m" 100000 700000 21 >/dev/null
wait_for 10 cmp -s "$S/m" "$T/m" || fail "mmap stores not in backing after 10 s (flush_interval=1)"
kill -0 $holder 2>/dev/null || fail "the holder exited early: the commit may come from its close"

# Pinned kernel writes (READ_FIXED into the pinned mapping), no fsync, pin held.
random_file "$T/peer" 3M
"$PINWRITE" --from "$T/peer" --no-fsync --hold 20 --quiet "$M/p" >"$T/pin.out" &
pinner=$!
wait_for 10 grep -q xxh3= "$T/pin.out" || fail "pinwrite did not finish writing"
kill -0 $pinner 2>/dev/null || fail "pinwrite exited early"
wait_for 10 cmp -s "$S/p" "$T/peer" || fail "pinned writes not in backing after 10 s (flush_interval=1)"

# A second change while still pinned is picked up by a later pass.
"$HELPER" pwrite "$M/p" 5 10 3 >/dev/null
"$HELPER" pwrite "$T/peer" 5 10 3 >/dev/null
wait_for 10 cmp -s "$S/p" "$T/peer" || fail "second change not in backing after 10 s"

kill $holder $pinner 2>/dev/null || true
wait $holder 2>/dev/null || true
wait $pinner 2>/dev/null || true
unmount_rdmafs "$M" || fail "daemon exit code $?"
same_file "$S/m" "$T/m"
same_file "$S/p" "$T/peer"
check_daemon_log
