#!/bin/bash
# flock(2) locks survive daemon deaths (issue 15, doc/restart.md 3.3): the daemon takes a
# client's flock on its own backing fd of the handle, which the supervisor's store keeps
# (FLOCK) from the first lock to the release. Two holders (this shell): a read-only open
# of a plain file and a writable open of a staged file, each with `flock -x`. The serving
# daemon is killed with SIGKILL 3 times; after each death a second locker (`flock -n`,
# another process, another open) must still be refused (EWOULDBLOCK). Then each holder
# unlocks (`flock -u`: the resumed handle must unlock the same open file description) and
# the second locker gets the lock; a holder that closes its file without unlocking also
# lets it go.
# Skips (77) without passthrough or FUSE_NOTIFY_RESEND.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S"
echo plain >"$S/f"
mount_rdmafs "$S" "$M" -o flush_interval=1
require_passthrough
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"
restarts() { stat_field "$M" restarts; }
# locked FILE: 0 when another process cannot take FILE's flock now (EWOULDBLOCK)
locked() {
	local rc=0
	flock -n -x -E 99 "$1" true || rc=$?
	[ $rc = 99 ] && return 0
	[ $rc = 0 ] && return 1
	fail "flock -n $1: exit $rc"
}

exec 7<"$M/f"
exec 8>>"$M/s"
echo staged >&8
flock -x 7 || fail "flock -x of the plain file"
flock -x 8 || fail "flock -x of the staged file"
[ "$(stat_field "$M/s" staged)" = true ] || fail "$M/s is not staged"
locked "$M/f" || fail "plain file: a second locker got the lock before any death"
locked "$M/s" || fail "staged file: a second locker got the lock before any death"

for i in 1 2 3; do
	pid=$(serving_pid "$SUPERVISOR_PID")
	[ "$pid" != "$SUPERVISOR_PID" ] || fail "kill $i: no daemon generation serves"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
	wait_for 60 test "$(restarts 2>/dev/null)" = "$i" || fail "kill $i: restarts $(restarts)"
	locked "$M/f" || fail "kill $i: plain file: the flock went with the daemon"
	locked "$M/s" || fail "kill $i: staged file: the flock went with the daemon"
done

flock -u 7 || fail "flock -u of the plain file after the kills"
locked "$M/f" && fail "plain file: still locked after its holder unlocked"
flock -u 8 || fail "flock -u of the staged file after the kills"
locked "$M/s" && fail "staged file: still locked after its holder unlocked"

# Locked again by a resumed handle, then a death, then a close without unlocking.
flock -x 7 || fail "flock -x again"
pid=$(serving_pid "$SUPERVISOR_PID")
kill -9 "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
wait_for 60 test "$(restarts 2>/dev/null)" = 4 || fail "kill 4: restarts $(restarts)"
locked "$M/f" || fail "kill 4: the flock went with the daemon"
exec 7<&-
wait_for 10 sh -c "flock -n -x '$M/f' true" || fail "closing the holder did not let the flock go"
exec 8>&-
"$RDMAFSCTL" flush "$M/s" || fail "flush"
[ "$(cat "$S/s")" = staged ] || fail "staged content not committed"
note "flocks kept through 4 kills; unlocks and a close after them let them go"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
