#!/bin/bash
# An unprivileged user cannot flush, stat or map a file they cannot open, cannot flush
# through a read-only open, and cannot use mount-wide operations; they can act on their own.
. "$(dirname "$0")/lib.sh"
require_mount_env
U=rdmafs-test
id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
	skip "cannot create user $U"
CLIENT=$RDMAFS_BUILD/tests/ctl-client
as_user() { runuser -u "$U" -- "$@"; }
as_user test -x "$RDMAFSCTL" || skip "$U cannot run the build's binaries"
chmod 755 "$T"
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src
chmod 755 "$S"

echo secret >"$S/secret"; chmod 600 "$S/secret"
echo public >"$S/pub"; chmod 644 "$S/pub"
echo mine >"$S/mine"; chown "$U" "$S/mine"; chmod 644 "$S/mine"
exec 3<>"$M/secret" 4<>"$M/pub"	# staged, with uncommitted changes
echo changed >&3
echo changed >&4

# a file they cannot open: nothing works (they cannot get an fd to prove access)
as_user "$RDMAFSCTL" stat "$M/secret" 2>/dev/null && fail "user stat of a 0600 file"
as_user "$RDMAFSCTL" flush "$M/secret" 2>/dev/null && fail "user flush of a 0600 file"
[[ $(as_user "$CLIENT" map "$M/secret" r r) == "err open EACCES" ]] || fail "user map of 0600"
# a file they can only read: stat and a read-only map, but no flush and no writable map
as_user "$RDMAFSCTL" stat "$M/pub" >/dev/null || fail "user stat of a readable file"
[ "$(as_user "$CLIENT" flush "$M/pub" r)" = "err EBADF" ] || fail "flush through a read-only fd"
as_user "$RDMAFSCTL" flush "$M/pub" 2>/dev/null && fail "user flush of a read-only file"
[[ $(as_user "$CLIENT" map "$M/pub" r r) == "ok len=4096 first=99" ]] || fail "user ro map"
[ "$(as_user "$CLIENT" map "$M/pub" r rw)" = "err EACCES" ] || fail "user rw map via ro fd"
[ "$(as_user "$CLIENT" lease-break "$M/pub")" = "err EPERM" ] || fail "user lease break"
# mount-wide operations: root or the mount owner only; stat of the mount is like df
[ "$(as_user "$CLIENT" flush-all "$M")" = "err EPERM" ] || fail "user flush --all"
as_user "$RDMAFSCTL" flush --all "$M" 2>/dev/null && fail "rdmafsctl flush --all as user"
[ "$(as_user "$CLIENT" evict "$M")" = "err EPERM" ] || fail "user evict"
as_user "$RDMAFSCTL" evict "$M" 2>/dev/null && fail "rdmafsctl evict as user"
[ "$(as_user "$CLIENT" lease-list "$M")" = "err EPERM" ] || fail "user mount lease list"
as_user "$CLIENT" mount-stat "$M" | grep -q '^ok' || fail "user mount stat"
# nothing of that committed anything
cmp -s "$M/secret" "$S/secret" && fail "secret committed by an unprivileged request"
cmp -s "$M/pub" "$S/pub" && fail "pub committed by an unprivileged request"
# their own file: flush works (rdmafsctl reopens it for writing)
as_user sh -c "echo mine2 >>'$M/mine'"
as_user "$RDMAFSCTL" flush "$M/mine" || fail "user flush of their own file"
same_file "$M/mine" "$S/mine"
[ "$(as_user "$CLIENT" flush "$M/mine" w)" = ok ] || fail "rdmafs_flush of own file"

exec 3>&- 4>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
