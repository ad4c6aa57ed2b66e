#!/bin/bash
# What cannot be survived is detected and shown (issue 15, doc/restart.md 5): a kernel
# without FUSE_NOTIFY_RESEND (Linux < 6.9) would leave requests the dead daemon had read
# unanswered forever, so the daemon does not keep the mount for a next generation. The
# test knob RDMAFS_TEST_NO_RESEND (builds with tests only) masks FUSE_HAS_RESEND in the
# kernel's INIT. Then `rdmafsctl stat --json` shows restartable=false and no supervisor,
# `rdmafsctl restart` refuses, and a SIGKILL of the daemon ends the mount (ENOTCONN) and
# the supervisor. Without the knob, the same mount shows restartable=true.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S"
echo data >"$S/f"

# The same mount first as it normally runs: restartable.
mount_rdmafs "$S" "$M"
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
[ "$(stat_field "$M" restartable)" = true ] || fail "a supervised mount is not restartable"
[ "$(stat_field "$M" supervisor_pid)" = "$SUPERVISOR_PID" ] || fail "supervisor_pid"
unmount_rdmafs "$M" || fail "daemon exit code $?"

export RDMAFS_TEST_NO_RESEND=1
mount_rdmafs "$S" "$M"
unset RDMAFS_TEST_NO_RESEND
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"
[ "$(stat_field "$M" restartable)" = false ] || fail "restartable without FUSE_HAS_RESEND"
[ "$(stat_field "$M" supervisor_pid)" = 0 ] || fail "a supervisor_pid without FUSE_HAS_RESEND"
if "$RDMAFSCTL" restart "$M" >"$T/restart.out" 2>&1; then
	fail "rdmafsctl restart succeeded on a mount that cannot restart"
fi
[ "$(cat "$M/f")" = data ] || fail "read before the kill"

kill -9 "$DAEMON_PID"
rc=0
wait "$SUPERVISOR_PID" || rc=$?
[ $rc != 0 ] || fail "the supervisor exited 0 after its daemon was killed"
err=$(cat "$M/f" 2>&1 >/dev/null) && fail "the mount still answers after the daemon's death"
case $err in
*"Transport endpoint is not connected"*) ;;
*) fail "after the death: '$err', want ENOTCONN" ;;
esac
umount "$M" 2>/dev/null || umount -l "$M"
note "without FUSE_HAS_RESEND: restartable=false, rdmafsctl restart refused ($(head -1 "$T/restart.out" | cut -c1-60)...), a death ends the mount (ENOTCONN), supervisor exit $rc"
check_daemon_log
