#!/bin/bash
# POSIX operations through the mount land in the backing folder, and back.
. "$(dirname "$0")/lib.sh"
require_mount_env
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=1

M=$T/mnt S=$T/src
echo hello >"$M/f"
[ "$(cat "$S/f")" = hello ] || fail "write+close not in backing"
mkdir "$M/d"; [ -d "$S/d" ] || fail mkdir
mv "$M/f" "$M/d/g"; [ -f "$S/d/g" ] && [ ! -e "$S/f" ] || fail rename
ln -s g "$M/d/l"; [ "$(readlink "$S/d/l")" = g ] || fail symlink
ln "$M/d/g" "$M/d/h"; [ "$(stat -c %h "$S/d/g")" = 2 ] || fail link
chmod 640 "$M/d/g"; [ "$(stat -c %a "$S/d/g")" = 640 ] || fail chmod
touch -d '2001-02-03 04:05:06' "$M/d/g"; [ "$(stat -c %Y "$S/d/g")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail utimens
setfattr -n user.k -v v "$M/d/g" 2>/dev/null && { [ "$(getfattr --only-values -n user.k "$S/d/g")" = v ] || fail xattr; }
[ "$(ls "$M/d" | sort | tr '\n' ' ')" = "g h l " ] || fail "readdir: $(ls "$M/d")"
truncate -s 100000 "$M/d/g"; [ "$(stat -c %s "$S/d/g")" = 100000 ] || fail "truncate up"
truncate -s 3 "$M/d/g"; [ "$(stat -c %s "$S/d/g")" = 3 ] || fail "truncate down"
rm "$M/d/h" "$M/d/l"; rm "$M/d/g"; rmdir "$M/d"; [ ! -e "$S/d" ] || fail rmdir
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
