#!/bin/bash
# staging_budget: an open that would exceed it is served unstaged, with a log line, not
# refused; the data still arrives. Files that fit are staged as usual.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S"
random_file "$S/big" 3M
random_file "$S/small" 100K
cp "$S/big" "$T/big"
mount_rdmafs "$S" "$M" -o staging_budget=1M,flush_interval=1
require_passthrough

exec 3<>"$M/small"	# staged (fits), stays open
exec 4<>"$M/big"	# over the budget: not staged, but opens
[ "$(stat_field "$M/small" staged)" = true ] || fail "the file that fits is not staged"
[ "$(stat_field "$M/big" staged)" = false ] || fail "the file over the budget is staged"
"$HELPER" pwrite "$M/big" 100000 50000 3 >/dev/null || fail "write to the unstaged file"
"$HELPER" pwrite "$T/big" 100000 50000 3 >/dev/null
cmp -s "$M/big" "$T/big" || fail "unstaged file reads differ"
[ "$("$HELPER" fsync "$M/big")" = ok ] || fail "fsync of the unstaged file"
same_file "$S/big" "$T/big"
# The unstaged file's mapping cannot be pinned; the staged one's can.
"$PINWRITE" --probe --size 64K "$M/small" >/dev/null 2>&1 || fail "pin of the staged file refused"
rc=0; "$PINWRITE" --probe --size 64K "$M/big" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "pin of an unstaged file: exit $rc, expected 2 (refused)"
exec 3>&- 4>&-

unmount_rdmafs "$M" || fail "daemon exit code $?"
same_file "$S/big" "$T/big"
check_daemon_log
