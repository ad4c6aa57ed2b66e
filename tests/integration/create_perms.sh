#!/bin/bash
# CREATE over a file that exists (issue 12, item 7): with a stale negative dentry the kernel
# sends CREATE and skips its own permission check of the existing file. The daemon must
# open it as the caller: a user cannot truncate or write root's 0644 file that way, but
# can their own; files created by a user are theirs.
. "$(dirname "$0")/lib.sh"
require_mount_env
U=rdmafs-test
id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
	skip "cannot create user $U"
as_user() { runuser -u "$U" -- "$@"; }
chmod 755 "$T"
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=yes
chmod 755 "$S"
mkdir -m 777 "$S/d"
SYNC=$T/sync
mkdir -m 777 "$SYNC"

# stale NAME OWNER DATA: the user caches a negative dentry for d/NAME (a lookup of a
# missing name, kept for entry_timeout), root creates d/NAME in the backing directory,
# the user opens it O_CREAT|O_TRUNC|O_WRONLY through the mount right away. Prints the
# shell's error, if any.
stale() {
	local name=$1 owner=$2 data=$3
	as_user sh -c "test -e '$M/d/$name'; touch '$SYNC/$name';
		while [ ! -e '$S/d/$name' ]; do :; done; printf %s '$data' >'$M/d/$name'" 2>&1 &
	local pid=$!
	wait_for 10 test -e "$SYNC/$name" || fail "the user's lookup did not happen"
	printf '%s' "$owner-data" >"$S/d/$name.tmp"
	chown "$owner" "$S/d/$name.tmp"; chmod 644 "$S/d/$name.tmp"
	mv "$S/d/$name.tmp" "$S/d/$name"
	wait $pid
}

# The attack: root's 0644 file.
out=$(stale victim root pwned) && fail "user opened root's 0644 file for writing via CREATE"
echo "$out" | grep -q "Permission denied" || fail "unexpected error: $out"
[ "$(cat "$S/d/victim")" = root-data ] || fail "root's file changed: $(cat "$S/d/victim")"
[ "$(stat -c '%U %a %s' "$S/d/victim")" = "root 644 9" ] || fail "root's file metadata changed"
# (the stale negative dentry may still hide it for up to entry_timeout)
wait_for 5 grep -qx root-data "$M/d/victim" || fail "root's file reads changed through the mount"

# Their own file through the same path: allowed, truncated and rewritten.
stale own "$U" mine || fail "user could not open their own file via CREATE"
[ "$(cat "$S/d/own")" = mine ] || fail "own file: $(cat "$S/d/own")"

# A plain create belongs to the caller; a set-gid directory gives its group.
as_user sh -c "echo new >'$M/d/new'" || fail "user create"
[ "$(stat -c %U "$S/d/new")" = "$U" ] || fail "created file not owned by the user"
mkdir -m 2777 "$S/g"; chgrp daemon "$S/g"
as_user sh -c "echo new >'$M/g/new'" || fail "user create in a set-gid directory"
[ "$(stat -c '%U %G' "$S/g/new")" = "$U daemon" ] || fail "set-gid directory group not inherited"
# mkdir, symlink and mknod are made as the caller too (no chown by name afterwards):
# owned by the user, group and set-gid bit from the set-gid directory, and a user cannot
# make a device node (CAP_MKNOD is not theirs).
as_user sh -c "mkdir '$M/g/dir' && ln -s new '$M/g/sl' && mkfifo '$M/g/ff'" ||
	fail "user mkdir/symlink/mkfifo in a set-gid directory"
for o in dir sl ff; do
	[ "$(stat -c '%U %G' "$S/g/$o")" = "$U daemon" ] ||
		fail "$o: $(stat -c '%U %G' "$S/g/$o"), expected $U daemon"
done
[ -g "$S/g/dir" ] || fail "a directory made in a set-gid directory lost the set-gid bit"
as_user mknod "$M/g/null" c 1 3 2>/dev/null && fail "a user made a device node"
[ ! -e "$S/g/null" ] || fail "a refused mknod left $S/g/null"
# O_EXCL on an existing file still fails.
as_user sh -c "set -C; echo x >'$M/d/new'" 2>/dev/null && fail "O_EXCL create of an existing file"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
