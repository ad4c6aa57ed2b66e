#!/bin/bash
# Issue 12 item 10: a second mount on the same mountpoint does not take the first one's
# control socket (sockets are named by the mount's device too, and a live socket is never
# unlinked); a mountpoint that is not a directory is refused, a source already served by
# rdmafs is warned about. A user holding a file of the covered mount still reaches its
# daemon.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount_rdmafs "$T/src1" "$T/mnt" -o flush_interval=0,flush_on_close=no
PID_A=$SUPERVISOR_PID M=$T/mnt
chmod 755 "$T/src1"
: >"$T/src1/mine"; chown "$U" "$T/src1/mine"
as_user sh -c "echo v1 >'$M/mine'"
"${AS_USER[@]}" sleep 600 3<>"$M/mine" & holder=$!
_pids+=("$holder")
nmounts() { awk -v m="$M" '$2 == m' /proc/mounts | wc -l; }

# the same source again: warned (the stager lock keeps them from staging one file)
mount_rdmafs "$T/src1" "$T/mnt2" -o flush_interval=0,flush_on_close=no
grep -q "src1 is already served by rdmafs on $M" "$DAEMON_LOG" || fail "no warning for the same source"
umount "$T/mnt2"; wait "$SUPERVISOR_PID" || fail "second daemon exit $?"
# a regular file as mountpoint: refused
: >"$T/file"
rc=0; timeout 20 "$RDMAFS" "$T/src1" "$T/file" -f >>"$DAEMON_LOG" 2>&1 || rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "mount on a regular file: exit $rc"
is_mounted "$T/file" && fail "mounted on a regular file"

# another source stacked on the same mountpoint: both keep their own socket
mkdir -p "$T/src2"
mount_rdmafs "$T/src2" "$M" -o flush_interval=0,flush_on_close=no
PID_B=$SUPERVISOR_PID
two_mounts() { [ "$(nmounts)" = 2 ]; }
wait_for 10 two_mounts || fail "stacked mount did not appear"
stat "$M" >/dev/null
two_socks() { [ "$(grep -o 'ctl: control socket .*-mnt@.*' "$DAEMON_LOG" | sort -u | wc -l)" = 2 ]; }
wait_for 10 two_socks || true
socks=$(grep -o 'ctl: control socket .*-mnt@.*' "$DAEMON_LOG" | sort -u | wc -l)
[ "$socks" = 2 ] || fail "$socks distinct control sockets for two mounts"
grep -o 'ctl: control socket .*-mnt@.*' "$DAEMON_LOG" | sed 's/ctl: control socket //' | while read -r s; do
	[ -S "$s" ] || fail "socket $s gone"
done
# the user flushes their file of the covered mount: its own daemon commits it
as_user sh -c "echo v2 >/proc/$holder/fd/3"
as_user "$RDMAFSCTL" flush "/proc/$holder/fd/3" || fail "flush of a file of the covered mount"
[ "$(cat "$T/src1/mine")" = v2 ] || fail "covered mount's file not committed: $(cat "$T/src1/mine")"

umount "$M"; wait "$PID_B" || fail "stacked daemon exit $?"
kill "$holder"; wait "$holder" 2>/dev/null || true
umount "$M"; wait "$PID_A" || fail "first daemon exit $?"
check_daemon_log
