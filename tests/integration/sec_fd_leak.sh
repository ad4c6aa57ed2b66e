#!/bin/bash
# Issue 12 item 4: "lease list FILE" on a file that is not staged must not leak a
# descriptor in the daemon; at EMFILE the accept loop backs off (it neither spins nor
# floods the log) and serves again once descriptors are free.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0
M=$T/mnt S=$T/src
chmod 755 "$S"
echo hello >"$S/u"; chmod 644 "$S/u"	# never opened for writing: not staged
nfds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
as_user "$RDMAFSCTL" lease list "$M/u" >/dev/null || fail "user lease list of a readable file"
n0=$(nfds)
for i in $(seq 200); do as_user "$RDMAFSCTL" lease list "$M/u" >/dev/null; done
# A leak keeps one fd per request (200); the fd cache of inodes and the closer child that
# closes received fds asynchronously may hold a few for a moment: wait for them to settle.
settled() { [ $(($(nfds) - n0)) -lt 10 ]; }
wait_for 10 settled || fail "daemon descriptors grew from $n0 to $(nfds) over 200 lease lists"
n1=$(nfds)

# EMFILE: the daemon's limit just above what it holds, then a flood of connections.
hard=$(prlimit --pid "$DAEMON_PID" --nofile --raw --noheadings -o HARD)
prlimit --pid "$DAEMON_PID" --nofile=$((n1 + 3)):"$hard"
ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
t0=$(ticks)
coproc FL { as_user "$PY" "$FLOOD" "$(ctl_sock)" conns 40; }
fl_out=${FL[0]} fl_in=${FL[1]} fl_pid=$FL_PID
read -r -t 60 line <&"$fl_out" || fail "connection flood did not answer"
wait_for 10 grep -q "ctl: accept: Too many open files" "$DAEMON_LOG" || fail "EMFILE never reached"
sleep 2	# what is measured is how busy the daemon stays while the limit is hit
t1=$(ticks)
hz=$(getconf CLK_TCK)
[ $((t1 - t0)) -lt $((hz / 2)) ] || fail "daemon used $((t1 - t0)) ticks in about 2 s at EMFILE"
n=$(grep -c "ctl: accept" "$DAEMON_LOG")
[ "$n" -le 2 ] || fail "$n accept lines logged"
exec {fl_in}>&-
wait "$fl_pid" || true
prlimit --pid "$DAEMON_PID" --nofile="$hard":"$hard"
wait_for 10 "$RDMAFSCTL" stat "$M" >/dev/null || fail "root's stat fails after EMFILE"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
