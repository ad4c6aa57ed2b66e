#!/bin/bash
# Another filesystem mounted below the source is not served (issue 12, item 6): its inode
# numbers collide with the source's, and a client's fd on it resolved to another file's
# staging (a user mapped root's 0600 staged file through their own file). Runs in a
# private mount namespace.
if [ -z "${RDMAFS_IN_NS:-}" ]; then
	command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
	RDMAFS_IN_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
require_mount_env
U=rdmafs-test
id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
	skip "cannot create user $U"
CLIENT=$RDMAFS_BUILD/tests/ctl-client
as_user() { runuser -u "$U" -- "$@"; }
as_user test -x "$RDMAFSCTL" || skip "$U cannot run the build's binaries"
chmod 755 "$T"
S=$T/src M=$T/mnt
mkdir -p "$S"
# Two fresh tmpfs number their inodes alike: a (first file of the source) and b (first
# file of the nested one) get the same inode number.
mount -t tmpfs -o mode=755 src "$S"
printf SECRET >"$S/a"; chmod 600 "$S/a"
mkdir "$S/sub"
mount -t tmpfs -o mode=755 nested "$S/sub"
_loops+=("$S/sub" "$S")
printf userfile >"$S/sub/b"; chown "$U" "$S/sub/b"
[ "$(stat -c %i "$S/a")" = "$(stat -c %i "$S/sub/b")" ] || skip "tmpfs inode numbers differ"
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no

exec 3<>"$M/a"	# root's file, staged with an uncommitted change
printf X >&3
# The mount point is listed but not served: no lookup, so no fd of the other filesystem.
ls "$M" | grep -qx sub || fail "the mount point is no longer listed"
stat "$M/sub" 2>/dev/null && fail "a mount point below the source is served"
# The attack: the user's own file b (same inode number as a) used as proof of access.
out=$(as_user "$CLIENT" map "$M/sub/b" r r || true)
[ "$out" = "err open EOPNOTSUPP" ] || fail "user map through the nested file: $out"
as_user "$RDMAFSCTL" stat "$M/sub/b" >/dev/null 2>&1 && fail "user stat through the nested file"
as_user "$RDMAFSCTL" flush "$M/sub/b" 2>/dev/null && fail "user flush through the nested file"
# Nothing changed: a keeps its uncommitted change, b is untouched.
[ "$(cat "$S/a")" = SECRET ] || fail "root's file was committed"
[ "$(cat "$M/a")" = XECRET ] || fail "root's staged file changed"
[ "$(cat "$S/sub/b")" = userfile ] || fail "the nested file changed"
# Objects of the source itself still resolve (same filesystem, by device and inode).
[ "$("$CLIENT" map "$M/a" r r)" = "ok len=4096 first=88" ] || fail "root's own map of a"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
