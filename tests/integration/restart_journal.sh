#!/bin/bash
# The journal of non-idempotent requests (issue 15, doc/restart.md 3.6): the daemon dies
# in the middle of MKDIR, CREATE (O_CREAT|O_EXCL), UNLINK, RMDIR, RENAME, SYMLINK, LINK and
# SETXATTR(XATTR_CREATE), OPEN and OPENDIR, through the fault-injection knob of test builds
# (RDMAFS_TEST_DIE, src/fuse_journal.c): after the system call and before the reply,
# once with the record not yet done ("after": the resent request is done again and its
# "already done" error is success) and once with it done ("done": the recorded reply is
# sent again); for MKDIR and CREATE also before the system call ("before"). Each time the
# supervisor starts the next generation, the kernel resends the request, and the
# application sees success exactly once (mkdir returns 0, the O_EXCL create returns an fd
# that reads back what it wrote); the backing directory holds the result. A CREATE leaks
# no handle: the mount's open count is one more while the
# application holds it and as before after its close (`rdmafsctl stat --json MNT` opens).
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
KNOB=$T/die
mkdir -p "$S"
: >"$KNOB"
export RDMAFS_TEST_DIE=$KNOB
mount_rdmafs "$S" "$M" -o flush_interval=0
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"

stat_json() { "$RDMAFSCTL" stat --json --no-scan "$M"; }
restarts() { stat_json | sed -n 's/.*"restarts":\([0-9]*\).*/\1/p'; }
restarts_are() { [ "$(restarts)" = "$1" ]; }
DEATHS=0

# die_in OP POINT CMD...: arm the knob for OP at POINT, run CMD (the application's
# call); it must succeed, and the daemon must have died in it and been restarted.
die_in() {
	local op=$1 point=$2 before out
	shift 2
	before=$(restarts)
	echo "$op $point" >"$KNOB"
	out=$("$@" 2>&1) || fail "$op ($point): the application saw a failure: $out"
	[ ! -s "$KNOB" ] || fail "$op ($point): the daemon did not die in it"
	wait_for 30 restarts_are $((before + 1)) ||
		fail "$op ($point): restarts $(restarts), expected $((before + 1))"
	DEATHS=$((DEATHS + 1))
}

# create_excl POINT NAME: O_EXCL create through a death at POINT; no handle leaks: the
# mount's open count (opens of staged files; a file's own stat would count its own open)
# is one more while the application holds the file, as before after its close.
opens() { stat_json | sed -n 's/.*"opens":\([0-9]*\).*/\1/p'; }
opens_are() { [ "$(opens)" = "$1" ]; }
create_excl() {
	local point=$1 f=$M/$2 before line opens0
	before=$(restarts)
	opens0=$(opens)
	echo "create $point" >"$KNOB"
	coproc CR { "$HELPER" create-excl "$f" 2>&1; }
	read -r -t 60 line <&"${CR[0]}" || fail "create ($point): no answer from the helper"
	[ "$line" = ok ] || fail "create ($point): $line"
	[ ! -s "$KNOB" ] || fail "create ($point): the daemon did not die in it"
	wait_for 30 restarts_are $((before + 1)) || fail "create ($point): restarts $(restarts)"
	[ "$(opens)" = $((opens0 + 1)) ] ||
		fail "create ($point): $(opens) opens while the application holds one (before: $opens0)"
	echo close >&"${CR[1]}"
	read -r -t 60 line <&"${CR[0]}" || fail "create ($point): no close from the helper"
	[ "$line" = ok ] || fail "create ($point): close: $line"
	wait "$CR_PID" || fail "create ($point): helper exit $?"
	# Released: the kernel's RELEASE is asynchronous (sent after close returns).
	wait_for 30 opens_are "$opens0" ||
		fail "create ($point): $(opens) opens after the close, $opens0 before: a handle leaked"
	[ "$("$HELPER" fsync "$f")" = ok ] || fail "create ($point): fsync"
	[ "$(head -c 7 "$S/$2")" = journal ] || fail "create ($point): backing file content"
	DEATHS=$((DEATHS + 1))
}

# MKDIR
die_in mkdir after mkdir "$M/d1"
die_in mkdir done mkdir "$M/d2"
die_in mkdir before mkdir "$M/d3"
for d in d1 d2 d3; do [ -d "$S/$d" ] || fail "mkdir $d: not in the backing directory"; done
stat "$M/d1" "$M/d2" "$M/d3" >/dev/null || fail "the new directories do not stat"

# CREATE with O_EXCL
create_excl after c1
create_excl done c2
create_excl before c3

# OPEN of a staged file (its opens are counted): the recorded reply with its backing id
# again, or the orphan handle freed and the open done again.
for point in after done; do
	before=$(restarts)
	opens0=$(opens)
	echo "open $point" >"$KNOB"
	exec 8<"$M/c1" || fail "open ($point) failed"
	[ ! -s "$KNOB" ] || fail "open ($point): the daemon did not die in it"
	wait_for 30 restarts_are $((before + 1)) || fail "open ($point): restarts $(restarts)"
	[ "$(opens)" = $((opens0 + 1)) ] || fail "open ($point): $(opens) opens, $opens0 before"
	[ "$(head -c 7 <&8)" = journal ] || fail "open ($point): read through the fd"
	exec 8<&-
	wait_for 30 opens_are "$opens0" ||
		fail "open ($point): $(opens) opens after the close, $opens0 before: a handle leaked"
	DEATHS=$((DEATHS + 1))
done

# OPENDIR
die_in opendir after ls "$M/d1"
die_in opendir done ls "$M/d2"

# UNLINK
for f in u1 u2; do echo x >"$S/$f"; stat "$M/$f" >/dev/null; done
die_in unlink after rm "$M/u1"
die_in unlink done rm "$M/u2"
[ ! -e "$S/u1" ] && [ ! -e "$S/u2" ] || fail "unlink: a file is still in the backing directory"

# RMDIR
mkdir "$S/r1" "$S/r2"
stat "$M/r1" "$M/r2" >/dev/null
die_in rmdir after rmdir "$M/r1"
die_in rmdir done rmdir "$M/r2"
[ ! -e "$S/r1" ] && [ ! -e "$S/r2" ] || fail "rmdir: a directory is still in the backing directory"

# RENAME
for f in n1 n2; do echo "$f" >"$S/$f"; stat "$M/$f" >/dev/null; done
die_in rename after mv "$M/n1" "$M/m1"
die_in rename done mv "$M/n2" "$M/m2"
for f in 1 2; do
	[ ! -e "$S/n$f" ] && [ "$(cat "$S/m$f")" = "n$f" ] || fail "rename n$f: backing directory"
	[ "$(cat "$M/m$f")" = "n$f" ] || fail "rename n$f: not under its new name in the mount"
done

# SYMLINK
die_in symlink after ln -s target1 "$M/s1"
die_in symlink done ln -s target2 "$M/s2"
[ "$(readlink "$S/s1")" = target1 ] && [ "$(readlink "$S/s2")" = target2 ] ||
	fail "symlink: backing directory"
[ "$(readlink "$M/s2")" = target2 ] || fail "symlink: readlink through the mount"

# LINK
echo linked >"$S/l0"
stat "$M/l0" >/dev/null
die_in link after ln "$M/l0" "$M/l1"
die_in link done ln "$M/l0" "$M/l2"
[ "$(stat -c %i "$S/l1")" = "$(stat -c %i "$S/l0")" ] &&
	[ "$(stat -c %i "$S/l2")" = "$(stat -c %i "$S/l0")" ] || fail "link: backing directory"
[ "$(stat -c %h "$M/l0")" = 3 ] || fail "link: $(stat -c %h "$M/l0") links through the mount"

# SETXATTR with XATTR_CREATE (when the backing filesystem has user xattrs)
echo x >"$S/x1"
if setfattr -n user.probe -v 1 "$S/x1" 2>/dev/null; then
	stat "$M/x1" >/dev/null
	die_in setxattr after "$HELPER" setxattr-create "$M/x1" user.j1 v1
	die_in setxattr done "$HELPER" setxattr-create "$M/x1" user.j2 v2
	[ "$(getfattr --only-values -n user.j1 "$S/x1")" = v1 ] &&
		[ "$(getfattr --only-values -n user.j2 "$S/x1")" = v2 ] || fail "setxattr: backing file"
	# a real EEXIST still is one
	[ "$("$HELPER" setxattr-create "$M/x1" user.j1 v9 2>/dev/null)" != ok ] ||
		fail "setxattr XATTR_CREATE of an existing name succeeded"
else
	note "backing filesystem without user xattrs: SETXATTR not tried"
fi

# Not resent, nothing changes: a second mkdir of a name that exists still fails.
! mkdir "$M/d1" 2>/dev/null || fail "mkdir of an existing name succeeded"
[ "$(restarts)" = "$DEATHS" ] || fail "restarts $(restarts), deaths $DEATHS"
note "$DEATHS deaths in journaled requests, each answered once"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
