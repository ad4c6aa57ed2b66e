#!/bin/bash
# POSIX operations through the mount land in the backing folder, and back.
. "$(dirname "$0")/lib.sh"
require_mount_env
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=1,flush_on_close=yes	# close commits: checked below

M=$T/mnt S=$T/src
echo hello >"$M/f"
[ "$(cat "$S/f")" = hello ] || fail "write+close not in backing"
mkdir "$M/d"; [ -d "$S/d" ] || fail mkdir
mv "$M/f" "$M/d/g"; [ -f "$S/d/g" ] && [ ! -e "$S/f" ] || fail rename
ln -s g "$M/d/l"; [ "$(readlink "$S/d/l")" = g ] || fail symlink
[ "$(readlink "$M/d/l")" = g ] || fail readlink
ln "$M/d/g" "$M/d/h"; [ "$(stat -c %h "$S/d/g")" = 2 ] || fail link
chmod 640 "$M/d/g"; [ "$(stat -c %a "$S/d/g")" = 640 ] || fail chmod
chown 12:34 "$M/d/g"; [ "$(stat -c %u:%g "$S/d/g")" = 12:34 ] || fail chown
touch -d '2001-02-03 04:05:06' "$M/d/g"; [ "$(stat -c %Y "$S/d/g")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail utimens
[ "$(stat -c %Y "$M/d/g")" = "$(stat -c %Y "$S/d/g")" ] || fail "mtime through the mount"

# xattrs: set, get, list, remove, both ways.
command -v setfattr >/dev/null || fail "setfattr missing (scripts/setup installs attr)"
setfattr -n user.k -v v "$M/d/g" || fail "setxattr"
[ "$(getfattr --only-values -n user.k "$S/d/g")" = v ] || fail "xattr not in backing"
setfattr -n user.b -v w "$S/d/g"
[ "$(getfattr --only-values -n user.b "$M/d/g")" = w ] || fail "getxattr through the mount"
getfattr -d "$M/d/g" 2>/dev/null | grep -q '^user.b="w"' || fail "listxattr"
setfattr -x user.k "$M/d/g" || fail removexattr
getfattr -n user.k "$S/d/g" >/dev/null 2>&1 && fail "removexattr did not reach backing"
out=$(getfattr -n user.nope "$M/d/g" 2>&1 || true)
[[ $out == *"No such attribute"* ]] || fail "missing xattr: wrong error: $out"

[ "$(ls "$M/d" | sort | tr '\n' ' ')" = "g h l " ] || fail "readdir: $(ls "$M/d")"
[ "$(ls -l "$M/d" | grep -c '^-')" = 2 ] || fail "readdirplus types"
truncate -s 100000 "$M/d/g"; [ "$(stat -c %s "$S/d/g")" = 100000 ] || fail "truncate up"
truncate -s 3 "$M/d/g"; [ "$(stat -c %s "$S/d/g")" = 3 ] || fail "truncate down"

# Modes of new objects are the caller's, masked by the caller's umask only.
(umask 0; touch "$M/m0"; mkdir "$M/md0"; mkfifo "$M/mf0")
(umask 077; touch "$M/m1"; mkdir "$M/md1")
[ "$(stat -c %a "$S/m0" "$S/md0" "$S/mf0" "$S/m1" "$S/md1" | tr '\n' ' ')" = "666 777 666 600 700 " ] ||
	fail "modes under umask 0 / 077: $(stat -c %a "$S/m0" "$S/md0" "$S/mf0" "$S/m1" "$S/md1" | tr '\n' ' ')"

# O_CREAT|O_TRUNC over a file the kernel believes absent (created in the backing folder
# behind a cached negative entry) truncates it.
ls "$M/nf" >/dev/null 2>&1 && fail "nf exists"
echo "long long content" >"$S/nf"
echo x >"$M/nf"
[ "$(cat "$S/nf")" = x ] || fail "create+O_TRUNC of an existing file did not truncate: $(cat "$S/nf")"
[ "$(stat -c %s "$M/nf")" = 2 ] || fail "size after create+O_TRUNC: $(stat -c %s "$M/nf")"

# Symlinks: times, owner and hard links act on the link, not its target.
ln -s nf "$M/sl"
touch -h -d '2001-01-01' "$M/sl"
[ "$(stat -c %Y "$S/sl")" = "$(date -d 2001-01-01 +%s)" ] || fail "touch -h on a symlink"
[ "$(stat -c %Y "$S/nf")" != "$(date -d 2001-01-01 +%s)" ] || fail "touch -h changed the target"
chown -h 5:6 "$M/sl"; [ "$(stat -c %u:%g "$S/sl")/$(stat -c %u "$S/nf")" = 5:6/0 ] || fail "chown -h"
ln "$M/sl" "$M/sl2"; [ -L "$S/sl2" ] || fail "hard link of a symlink is not a symlink"

# rename flags: RENAME_NOREPLACE refuses an existing target, RENAME_EXCHANGE swaps.
echo one >"$M/a"; echo two >"$M/b"
[ "$("$HELPER" rename noreplace "$M/a" "$M/b" 2>/dev/null)" = "EEXIST File exists" ] ||
	fail "RENAME_NOREPLACE onto an existing file did not fail with EEXIST"
[ "$(cat "$S/a")/$(cat "$S/b")" = one/two ] || fail "failed NOREPLACE changed files"
"$HELPER" rename exchange "$M/a" "$M/b" >/dev/null || fail "RENAME_EXCHANGE"
[ "$(cat "$S/a")/$(cat "$S/b")" = two/one ] || fail "EXCHANGE not in backing"
[ "$(cat "$M/a")/$(cat "$M/b")" = two/one ] || fail "EXCHANGE not seen through the mount"
"$HELPER" rename noreplace "$M/a" "$M/c" >/dev/null || fail "RENAME_NOREPLACE to a new name"
[ -e "$S/c" ] && [ ! -e "$S/a" ] || fail "NOREPLACE rename not in backing"

# mknod: a fifo works through the mount.
mkfifo "$M/fifo" || fail mkfifo
[ -p "$S/fifo" ] || fail "fifo not in backing"
(echo through >"$M/fifo") &
fifo_pid=$!
[ "$(timeout 10 cat "$M/fifo")" = through ] || fail "fifo data"
wait $fifo_pid

# statfs is the backing filesystem's.
[ "$(stat -f -c '%b %S' "$M")" = "$(stat -f -c '%b %S' "$S")" ] || fail "statfs differs"

# flock: a second exclusive lock on another open conflicts.
"$HELPER" flock "$M/b" >/dev/null || fail "flock"

# Objects created by a user belong to that user (default_permissions, allow_other).
chmod 755 "$T"
mkdir -m 1777 "$M/pub"
mkdir -m 755 "$M/priv"
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
command -v setpriv >/dev/null || fail "setpriv missing (scripts/setup installs util-linux)"
as_user sh -c "echo x >'$M/pub/file' && mkdir '$M/pub/dir' && ln -s file '$M/pub/sl' && mkfifo '$M/pub/ff'" ||
	fail "unprivileged create in a 1777 folder"
for o in file dir sl ff; do
	[ "$(stat -c %u:%g "$S/pub/$o")" = 65534:65534 ] ||
		fail "pub/$o belongs to $(stat -c %u:%g "$S/pub/$o"), not the caller 65534:65534"
done
[ "$(as_user cat "$M/pub/file")" = x ] || fail "user cannot read own file"
as_user sh -c "echo y >'$M/priv/file'" 2>/dev/null && fail "user wrote into a 755 root folder"
[ ! -e "$S/priv/file" ] || fail "denied create left a file"
chmod 600 "$M/b"
as_user cat "$M/b" >/dev/null 2>&1 && fail "user read a 600 root file"

rm "$M/d/h" "$M/d/l"; rm "$M/d/g"; rmdir "$M/d"; [ ! -e "$S/d" ] || fail rmdir
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
