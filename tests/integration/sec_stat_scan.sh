#!/bin/bash
# Issue 12 item 5: a user's stat does not hash others' staged files under their commit
# locks: a mount-wide stat or one through a read-only open answers without a scan
# (changed bytes unknown); root and writers still get the scan.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src
chmod 755 "$S"
head -c 32M /dev/urandom >"$S/big"; chmod 644 "$S/big"
echo mine >"$S/mine"; chown "$U" "$S/mine"; chmod 644 "$S/mine"
exec 3<>"$M/big"
echo changed >&3
cp "$S/big" "$T/before"
known=0x8	# RDMAFS_ST_CHANGED_KNOWN
scanned() { (( $(sed -n 's/.*flags=\(0x[0-9a-f]*\).*/\1/p') & known )); }

as_user "$CLIENT" mount-stat "$M" >"$T/o" || fail "user mount stat: $(cat "$T/o")"
scanned <"$T/o" && fail "a user's mount stat scanned: $(cat "$T/o")"
as_user "$CLIENT" stat "$M/big" r >"$T/o" || fail "user stat: $(cat "$T/o")"
scanned <"$T/o" && fail "a user's stat through a read-only fd scanned: $(cat "$T/o")"
as_user "$RDMAFSCTL" stat --json "$M" | grep -q '"changed_bytes":null' ||
	fail "rdmafsctl stat as user shows scanned figures"
# nothing changed: no commit, staging as it was
cmp -s "$S/big" "$T/before" || fail "backing file changed"
# root, and a user on a file they may write, still get the scan
"$CLIENT" mount-stat "$M" >"$T/o"
scanned <"$T/o" || fail "root's mount stat did not scan: $(cat "$T/o")"
as_user sh -c "echo more >>'$M/mine'"
as_user "$CLIENT" stat "$M/mine" w >"$T/o"
scanned <"$T/o" || fail "owner's stat of their file did not scan: $(cat "$T/o")"

exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
