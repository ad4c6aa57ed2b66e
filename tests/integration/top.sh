#!/bin/bash
# rdmafsctl top: in batch mode (stdout not a terminal, or -b) it prints -n COUNT frames
# -d DELAY apart, the file being written first; on a terminal it redraws in place.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=1,flush_on_close=no

# Two quiet staged files (open, committed) and one that a writer keeps changing.
exec 6<>"$M/idle1" 7<>"$M/idle2"
for f in idle1 idle2; do
	head -c 3M /dev/urandom >"$M/$f"
	"$RDMAFSCTL" flush "$M/$f"
done
exec 5<>"$M/busy"
( while [ ! -e "$T/stop" ]; do dd if=/dev/urandom of="$M/busy" bs=1M count=2 conv=notrunc status=none; done ) &
WPID=$!
_pids+=("$WPID")
wait_for 10 bash -c "'$RDMAFSCTL' stat --json '$M/busy' | grep -q '\"commits\":[1-9]'" ||
	fail "the busy file was never committed"

"$RDMAFSCTL" top -n 3 -d 1 "$M" >"$T/top.out" || fail "top: exit $?"
cat "$T/top.out"
[ "$(grep -c '^rdmafsctl top - ' "$T/top.out")" = 3 ] || fail "not 3 frames for -n 3"
grep -q $'\033' "$T/top.out" && fail "escape sequences in batch output"
# First file row of the last frame (after its column header).
first=$(awk '/^INO /{getline; row=$NF} END {print row}' "$T/top.out")
[ "$first" = busy ] || fail "busiest file is '$first', expected busy"
awk '/^INO /{n=0; next} /^[0-9]/{n++} END {exit n != 3}' "$T/top.out" || fail "not 3 file rows"
grep -Eq '^[0-9]+ +3\.0M +0B .* idle1$' "$T/top.out" || fail "idle1 row (size 3.0M, dirty 0B)"

# -b forces batch on a terminal too; without it a terminal gets clear+home per frame.
script -qec "'$RDMAFSCTL' top -n 2 -d 0.2 '$M'" /dev/null >"$T/tty.out" </dev/null ||
	fail "top on a pty"
[ "$(grep -o $'\033\\[H\033\\[2J' "$T/tty.out" | wc -l)" = 2 ] || fail "no in-place redraw on a tty"
script -qec "'$RDMAFSCTL' top -b -n 1 '$M'" /dev/null >"$T/tty.out" </dev/null || fail "top -b"
grep -q $'\033' "$T/tty.out" && fail "escape sequences with -b"

# Bad arguments are usage errors; a user who is not the mount's owner gets EPERM.
rc=0; "$RDMAFSCTL" top -n 0 "$M" 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "-n 0: exit $rc"
rc=0; "$RDMAFSCTL" top -d x "$M" 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "-d x: exit $rc"
chmod 755 "$T" "$S"	# the user can reach the mount: the daemon must say no
id rdmafs-test >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin rdmafs-test
out=$(setpriv --reuid=rdmafs-test --regid=rdmafs-test --clear-groups "$RDMAFSCTL" top -n 1 "$M" 2>&1) &&
	fail "top as another user succeeded"
[[ $out == *"Operation not permitted"* ]] || fail "top as another user: $out"

touch "$T/stop"
wait "$WPID" || fail "writer"

# The file list comes in pages (51 files a reply): 120 more open files, all in one frame.
coproc HOLD { python3 -c '
import os, sys
fds = [os.open("%s/many%03d" % (sys.argv[1], i), os.O_RDWR | os.O_CREAT) for i in range(120)]
print("ready", flush=True)
sys.stdin.read()' "$M"; }
hold_out=${HOLD[0]} hold_in=${HOLD[1]} hold_pid=$HOLD_PID
read -r -t 60 line <&"$hold_out" && [ "$line" = ready ] || fail "opening 120 files"
"$RDMAFSCTL" top -b -n 1 "$M" >"$T/many.out" || fail "top with 123 files"
rows=$(awk '/^INO /{n=0; next} /^[0-9]/{n++} END {print n}' "$T/many.out")
[ "$rows" = 123 ] || fail "$rows file rows, not 123"
[ "$(awk '/^[0-9]/ {print $1}' "$T/many.out" | sort -u | wc -l)" = 123 ] ||
	fail "a file listed twice"
exec {hold_in}>&-
wait "$hold_pid" || fail "file holder"
exec 5>&- 6>&- 7>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
