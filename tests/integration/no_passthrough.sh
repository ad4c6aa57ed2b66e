#!/bin/bash
# passthrough=off: the daemon serves read and write from staging itself; the data is
# still right, it says once that mappings cannot be pinned, and pins are refused.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S"
random_file "$S/old" 700K
cp "$S/old" "$T/old"
mount_rdmafs "$S" "$M" -o passthrough=off,flush_interval=0,flush_on_close=no
[ "$(grep -c 'passthrough disabled by config' "$DAEMON_LOG")" = 1 ] ||
	fail "no single log line saying passthrough is off"
grep -q "cannot be pinned" "$DAEMON_LOG" || fail "log does not say mappings cannot be pinned"

exec 3<>"$M/old"
random_file "$T/a" 3M
cp "$T/a" "$M/a" || fail "write through the daemon"
cmp -s "$M/a" "$T/a" || fail "read back through the daemon differs"
"$HELPER" pwrite "$M/old" 12345 100000 4 >/dev/null || fail "pwrite"
"$HELPER" pwrite "$T/old" 12345 100000 4 >/dev/null
"$HELPER" pwrite "$M/old" 800000 1000 5 >/dev/null || fail "pwrite past EOF"
"$HELPER" pwrite "$T/old" 800000 1000 5 >/dev/null
cmp -s /dev/fd/3 "$T/old" || fail "another open reads other bytes"
[ "$("$HELPER" fsync "$M/old")" = ok ] || fail "fsync"
same_file "$S/old" "$T/old"
# Mapped stores go through the page cache and FUSE writes; fsync writes them back first.
"$HELPER" mmapwrite "$M/old" 300000 200000 6 >/dev/null || fail "mmap stores"
"$HELPER" mmapwrite "$T/old" 300000 200000 6 >/dev/null
[ "$("$HELPER" fsync "$M/old")" = ok ] || fail "fsync after mmap stores"
same_file "$S/old" "$T/old"
truncate -s 5000 "$M/old"; truncate -s 5000 "$T/old"
cmp -s "$M/old" "$T/old" || fail "truncate"
rc=0; "$PINWRITE" --probe --size 64K "$M/probe" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "pin without passthrough: exit $rc, expected 2 (refused)"
exec 3>&-

unmount_rdmafs "$M" || fail "daemon exit code $?"
same_file "$S/a" "$T/a"
same_file "$S/old" "$T/old"
check_daemon_log
