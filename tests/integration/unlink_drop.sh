#!/bin/bash
# A staged file that loses its last name with nothing left to reach it (no open, lease or
# writable map fd) drops its staging at once, uncommitted; a file with another link, or
# still open, keeps it and its bytes.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=0
staged() { metric "$M" rdmafs_staged_files; }

printf 'gone' >"$M/a"
printf 'kept' >"$M/b"
ln "$M/b" "$M/c"
printf 'open' >"$M/d"
[ "$(staged)" = 3 ] || fail "3 files staged expected, $(staged)"

rm "$M/b"	# c still names it
exec 5<"$M/d"
rm "$M/d"	# still open
rm "$M/a"
wait_for 10 sh -c "[ \"\$(\"$RDMAFSCTL\" metrics --no-scan '$M' |
	awk 'index(\$1, \"rdmafs_staged_files{\") == 1 { print \$2 }')\" = 2 ]" ||
	fail "the unlinked, unused file is still staged: $(staged) files"
[ "$(stat_field "$M/c" staged)" = true ] || fail "a file with another link lost its staging"
[ "$(cat "$M/c")" = kept ] || fail "c reads $(cat "$M/c")"
[ "$(cat <&5)" = open ] || fail "the open unlinked file reads wrong"
exec 5<&-

# Renamed over: the replaced file goes the same way.
printf 'old' >"$M/e"
printf 'new' >"$M/f"
mv "$M/f" "$M/e"
wait_for 10 sh -c "[ \"\$(\"$RDMAFSCTL\" metrics --no-scan '$M' |
	awk 'index(\$1, \"rdmafs_staged_files{\") == 1 { print \$2 }')\" -le 3 ]" ||
	fail "the file renamed over is still staged: $(staged) files"
"$RDMAFSCTL" flush "$M/c" "$M/e" || fail "flush"
[ "$(cat "$S/c")" = kept ] || fail "backing c: $(cat "$S/c")"
[ "$(cat "$S/e")" = new ] || fail "backing e: $(cat "$S/e")"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
