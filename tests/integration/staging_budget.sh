#!/bin/bash
# staging_budget: an open that does not fit is served unstaged, and no open or writably
# mapped file is evicted for it; once the mapping goes the file is dropped and the next
# open is staged. (LRU order and the dirty and leased cases: tests/unit/staging_modes.c.)
. "$(dirname "$0")/lib.sh"
require_mount_env
MAPCHECK=$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck
M=$T/mnt S=$T/src
mkdir -p "$S"
head -c 40M /dev/urandom >"$S/a"
head -c 40M /dev/urandom >"$S/b"
mount_rdmafs "$S" "$M" -o staging_budget=64M,log_level=debug,flush_interval=1
staged() { grep -c "staged ino=$(stat -c %i "$S/$1") " "$DAEMON_LOG" || true; }

exec 3<>"$M/a"
[ "$(staged a)" = 1 ] || fail "a not staged"
exec 4<>"$M/b"
[ "$(staged b)" = 0 ] || fail "b staged over the budget"
grep -q "staging_budget reached, not staged" "$DAEMON_LOG" || fail "no budget log line"
grep -q "evicted ino" "$DAEMON_LOG" && fail "an open file was evicted"
printf 'xyz' >&3
exec 3>&- 4>&-

# a writable mapping left after the close keeps a staged and unevictable
sleep 1.5
"$MAPCHECK" --write 0x11 --close --hold 4 "$M/a" >/dev/null &
mpid=$!
sleep 1.5
exec 4<>"$M/b"
grep -q "evicted ino" "$DAEMON_LOG" && fail "a writably mapped file was evicted"
exec 4>&-
wait "$mpid" || fail "mapcheck failed"
for i in $(seq 150); do
	[ "$(grep -c "dropped ino=$(stat -c %i "$S/a")" "$DAEMON_LOG")" -ge 2 ] && break
	sleep 0.1
done
n=$(staged b)
exec 4<>"$M/b"
[ "$(staged b)" -gt "$n" ] || fail "b not staged once a was dropped"
exec 4>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
[ "$(od -An -tx1 -j 4096 -N1 "$S/a" | tr -d ' ')" = 11 ] || fail "mapped write to a lost"
check_daemon_log
