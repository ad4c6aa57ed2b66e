#!/bin/bash
# Issue 12 item 3: one user's idle connections cannot lock others out of the control
# socket. 300 connections of one user: at most 128 are kept, and root's stat and flush
# still work (room is kept for root and the mount's owner); the refusal names the uid.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src
head -c 1M /dev/urandom >"$S/f"
exec 3<>"$M/f"
echo changed >&3
cp "$S/f" "$T/before"
SOCK=$(ctl_sock)

coproc FL { as_user "$PY" "$FLOOD" "$SOCK" conns 300; }
fl_out=${FL[0]} fl_in=${FL[1]} fl_pid=$FL_PID
read -r -t 60 line <&"$fl_out" || fail "connection flood did not answer"
alive=${line#alive=}
[ "$alive" -le 128 ] && [ "$alive" -ge 64 ] || fail "user kept $alive connections"
# nothing of theirs changed the file; root still gets through
cmp -s "$S/f" "$T/before" || fail "backing file changed by the flood"
"$RDMAFSCTL" stat "$M/f" >/dev/null || fail "root's stat refused during the flood"
"$RDMAFSCTL" stat --json "$M" >/dev/null || fail "root's mount stat refused during the flood"
"$RDMAFSCTL" flush "$M/f" || fail "root's flush refused during the flood"
same_file "$M/f" "$S/f"
uid=$(id -u "$U")
grep -q "uid $uid refused" "$DAEMON_LOG" || fail "refusal does not name uid $uid"
exec {fl_in}>&-
wait "$fl_pid" || true

exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
