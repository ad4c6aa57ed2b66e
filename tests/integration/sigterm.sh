#!/bin/bash
# SIGTERM with changed data: the daemon commits everything, unmounts and exits 0, even
# while a process still has a changed file open and mapped.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
backing_dir "$S" 64M
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no
require_passthrough

random_file "$T/a" 2M
cp "$T/a" "$M/a"			# closed: at most a kicked commit
random_file "$S/b" 1M
cp "$S/b" "$T/b"
# A process that keeps b open and mapped after storing into it.
"$HELPER" hold-mmapwrite "$M/b" 4096 500000 11 30 >"$T/holder.out" 2>&1 &
holder=$!
"$HELPER" pwrite "$T/b" 4096 500000 11 >/dev/null
wait_for 10 cmp -s "$M/b" "$T/b" || true
cmp -s "$M/b" "$T/b" || fail "stores not visible through the mount"
cmp -s "$S/b" "$T/b" && fail "backing already has the stores (no flush was asked for): test is void"

rc=0
term_rdmafs || rc=$?
[ $rc = 0 ] || fail "daemon exit code $rc after SIGTERM"
is_mounted "$M" && fail "still mounted after SIGTERM"
same_file "$S/a" "$T/a"
same_file "$S/b" "$T/b"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
check_daemon_log
