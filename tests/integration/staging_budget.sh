#!/bin/bash
# staging_budget: an open that does not fit is served unstaged, and no open or writably
# mapped file is evicted for it; once the mapping goes the file is dropped and the next
# open is staged. (LRU order and the dirty and leased cases: tests/unit/staging_modes.c.)
# Asserts on `rdmafsctl stat --json` and `rdmafsctl metrics`, waits for events.
. "$(dirname "$0")/lib.sh"
require_mount_env
MAPCHECK=$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck
M=$T/mnt S=$T/src
mkdir -p "$S"
head -c 40M /dev/urandom >"$S/a"
head -c 40M /dev/urandom >"$S/b"
mount_rdmafs "$S" "$M" -o staging_budget=64M,flush_interval=1
staged() { stat_field "$M/$1" staged; }
evictions() { metric "$M" rdmafs_evictions_total; }

exec 3<>"$M/a"
[ "$(staged a)" = true ] || fail "a not staged"
exec 4<>"$M/b"
[ "$(staged b)" = false ] || fail "b staged over the budget"
[ "$(metric "$M" rdmafs_files_staged_total)" = 1 ] || fail "more than a staged"
[ "$(evictions)" = 0 ] || fail "an open file was evicted"
printf 'xyz' >&3
exec 3>&- 4>&-

# a writable mapping left after the close keeps a staged and unevictable: mapcheck prints
# its line once it has mapped, stored and closed; then it holds the mapping until killed.
# (It closes after its stores: stores made through a mapping after its fd was closed
# can be marked clean by a periodic pass that ran meanwhile; reported to the lead.)
"$MAPCHECK" --write 0x11 --close-after --hold 600 "$M/a" >"$T/map.out" &
mpid=$!
_pids+=("$mpid")
wait_for 10 grep -q register= "$T/map.out" || fail "mapcheck did not map a: $(cat "$T/map.out")"
exec 4<>"$M/b"
[ "$(staged b)" = false ] || fail "b staged while a (writably mapped) holds the budget"
[ "$(evictions)" = 0 ] || fail "a writably mapped file was evicted"
exec 4>&-
kill -0 "$mpid" 2>/dev/null || fail "mapcheck exited before the checks ended"
kill "$mpid"	# its mapping goes with it (the stored byte is in the shared staging memory)
wait "$mpid" 2>/dev/null || true
# without its mapping, a is committed and goes (idle and clean, or evicted for b)
s0=$(metric "$M" rdmafs_files_staged_total)
b_staged() {
	local r=1
	exec 4<>"$M/b"
	[ "$(staged b)" = true ] && r=0
	exec 4>&-
	return $r
}
wait_for 15 b_staged || fail "b not staged once a's mapping went"
[ "$(metric "$M" rdmafs_files_staged_total)" -gt "$s0" ] || fail "files_staged_total did not grow"
[ "$(metric "$M" rdmafs_files_released_total)" -ge 1 ] || fail "a never released"
unmount_rdmafs "$M" || fail "daemon exit code $?"
[ "$(od -An -tx1 -j 4096 -N1 "$S/a" | tr -d ' ')" = 11 ] || fail "mapped write to a lost"
check_daemon_log
