#!/bin/bash
# Issue 12 item 9: descriptors a user sends to the control socket from their own FUSE
# mount, whose server never answers FLUSH, pin no daemon thread: root is still served,
# the user is refused once 8 of their closes hang (for over a second), and SIGTERM still
# commits everything and exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
HANG=${RDMAFS_HANGFLUSH:-$RDMAFS_BUILD/tests/helpers/rdmafs-hangflush}
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src
head -c 1M /dev/urandom >"$T/data"
exec 3<>"$M/f"
cat "$T/data" >&3	# staged, not committed while open
cmp -s "$T/data" "$S/f" && fail "committed before the test: void"

# The user's FUSE mount (fusermount3), whose server never answers FLUSH.
mkdir "$T/hung"; chown "$U" "$T/hung"
# (3>&-: no process of the test may hold a file of the rdmafs mount, or its exit would
# wait on rdmafs while rdmafs's closer waits on it.)
"${AS_USER[@]}" "$HANG" "$T/hung" 2>"$T/hang.log" 3>&- & hang=$!
_pids+=("$hang")
hung_dev=
# Abort the hung connection (fusectl), which ends every FLUSH waiting on it.
hung_cleanup() {
	if [ -n "$hung_dev" ]; then	# fusectl mounted in a private namespace if need be
		unshare -m --propagation private sh -c "mountpoint -q /sys/fs/fuse/connections ||
			mount -t fusectl fusectl /sys/fs/fuse/connections; echo 1 >/sys/fs/fuse/connections/$hung_dev/abort" \
			2>/dev/null || true
		hung_dev=
	fi
	umount -l "$T/hung" 2>/dev/null || true
	kill -9 "$hang" 2>/dev/null || true
}
trap 'r=$?; hung_cleanup; set +e; (exit $r); _cleanup' EXIT
wait_for 10 grep -q mounted "$T/hang.log" || skip "cannot mount a FUSE file system as $U: $(cat "$T/hang.log")"
wait_for 10 is_mounted "$T/hung" || fail "hung mount not there"
hung_dev=$(awk -v m="$T/hung" '$5 == m {split($3, d, ":"); print d[1] * 1048576 + d[2]}' /proc/self/mountinfo)

# The attack: 12 requests, each with a descriptor of the hung file; the daemon answers
# with an error (not a file of its mount) and must then close it.
"${AS_USER[@]}" "$PY" - "$(ctl_sock)" "$T/hung/f" >"$T/attack.out" 2>&1 3>&- <<'PY' & attacker=$!
import array, os, socket, struct, sys, time
path, hung = sys.argv[1], sys.argv[2]
fd = os.open(hung, os.O_RDONLY)
req = struct.pack("<IHHII", 0x464d4452, 1, 2, 48, 1) + struct.pack("<Ii", 0, 0) + b"\0" * 24
res = []
for i in range(12):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendmsg([req], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        m = s.recv(100)
        res.append(str(struct.unpack("<i", m[16:20])[0]) if len(m) >= 24 else "closed")
    except OSError as e:
        res.append("refused")
    time.sleep(1.5 if i == 7 else 0.05)	# after 8: their closes count as stuck (> 1 s)
print(" ".join(res), flush=True)
time.sleep(600)	# exiting would close our own descriptor: FLUSH, stuck
PY
_pids+=("$attacker")
wait_for 60 test -s "$T/attack.out" || fail "attack did not finish"
read -r -a res <"$T/attack.out"
note "attack replies: ${res[*]}"
# root may not even stat a user's FUSE file (no allow_other): EACCES, else EXDEV
[[ ${res[0]} == -13 || ${res[0]} == -18 ]] || fail "first request: ${res[*]} (want an error)"
[ "${res[11]}" = refused ] || [ "${res[11]}" = closed ] || fail "12th request served: ${res[*]}"
grep -c "FLUSH received" "$T/hang.log" | grep -qv '^0$' || fail "no FLUSH reached the hung server"

uid=$(id -u "$U")
grep -q "uid $uid refused: its descriptors are still closing" "$DAEMON_LOG" || fail "refusal not logged"
# root is still served, the file is as it was
timeout 20 "$RDMAFSCTL" stat "$M/f" >/dev/null || fail "root's stat hangs or fails after the attack"
cmp -s "$T/data" "$S/f" && fail "committed by the attack?"
# SIGTERM: final commit, exit 0, mount gone, in bounded time
kill -TERM "$DAEMON_PID"
gone() { [ ! -e "/proc/$DAEMON_PID" ] || grep -q '^[0-9]* (.*) Z' "/proc/$DAEMON_PID/stat"; }
wait_for 30 gone || fail "daemon did not exit within 30 s of SIGTERM"
rc=0; wait "$SUPERVISOR_PID" || rc=$?
[ $rc = 0 ] || fail "daemon exit $rc"
same_file "$T/data" "$S/f"
is_mounted "$M" && fail "still mounted"
hung_cleanup
kill "$attacker" 2>/dev/null || true
check_daemon_log
