#!/bin/bash
# A node id the resumed inode table does not know (a record lost: test knob
# RDMAFS_TEST_LOSE_INO leaves one out at resume) is answered ESTALE, and the daemon keeps
# serving: before, every op on it dereferenced a NULL inode, so the daemon died at the
# first request for it, and so did each next generation resumed from the same table.
# A process holds the file open across a SIGKILL of the daemon, so the kernel keeps using
# the old node id: fstat (GETATTR), fsetxattr, open by /proc/self/fd (OPEN of that node)
# and a create in a directory held the same way (its parent's node) must each fail with
# ESTALE, another file must stay readable, and no restart may follow.
# Skips (77) without FUSE_NOTIFY_RESEND.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S/dir"
echo lost >"$S/lost"
echo other >"$S/other"
ino=$(stat -c %i "$S/lost")
dino=$(stat -c %i "$S/dir")
# Both records are left out by every resume (the first generation does not resume).
RDMAFS_TEST_LOSE_INO=$ino,$dino mount_rdmafs "$S" "$M"
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"

timeout 60 python3 - "$M" "$SUPERVISOR_PID" "$RDMAFSCTL" <<'PY' || fail "see above (without the fix: the daemon dies at each request for the node, ASan SEGV in inode_fd)"
import errno, os, subprocess, sys, time
m, sup, ctl = sys.argv[1:4]
fd = os.open(f"{m}/lost", os.O_RDONLY)
dfd = os.open(f"{m}/dir", os.O_RDONLY | os.O_DIRECTORY)
os.fstat(fd)
def restarts():
    out = subprocess.run([ctl, "stat", "--json", m], capture_output=True, text=True)
    import json
    return json.loads(out.stdout)[0]["restarts"] if out.returncode == 0 else None
pid = int(subprocess.run(["pgrep", "-P", sup, "-n"], capture_output=True, text=True).stdout)
os.kill(pid, 9)
while os.path.exists(f"/proc/{pid}/status") and "zombie" not in open(f"/proc/{pid}/status").read():
    time.sleep(0.002)
deadline = time.time() + 60
while restarts() != 1:
    if time.time() > deadline:
        sys.exit("no generation resumed after the kill")
    time.sleep(0.05)
# The attribute timeout (1 s) must pass for fstat to ask the daemon.
def estale(what, fn):
    deadline = time.time() + 10
    while True:
        try:
            fn()
        except OSError as e:
            if e.errno != errno.ESTALE:
                sys.exit(f"{what}: {e} (expected ESTALE)")
            return
        if time.time() > deadline:
            sys.exit(f"{what}: succeeded on a node id the daemon does not know")
        time.sleep(0.1)
estale("fstat", lambda: os.stat(fd))
estale("fsetxattr", lambda: os.setxattr(fd, "user.t", b"1"))
estale("open /proc/self/fd", lambda: os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)))
estale("create in the lost directory",
       lambda: os.close(os.open("new", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=dfd)))
if open(f"{m}/other").read() != "other\n":
    sys.exit("another file is not readable")
if restarts() != 1:
    sys.exit(f"the daemon died again: restarts {restarts()}")
os.close(fd)
os.close(dfd)
# A lookup by name makes a new node: the file is reachable again.
if open(f"{m}/lost").read() != "lost\n":
    sys.exit("the file is not reachable by name after its node was lost")
open(f"{m}/dir/new2", "w").write("x")
PY
[ -e "$S/dir/new" ] && fail "a create in the lost directory made a file"
[ "$(cat "$M/dir/new2")" = x ] || fail "the directory is not usable by name after its node was lost"
[ "$(stat_field "$M" restarts)" = 1 ] || fail "restarts $(stat_field "$M" restarts), want 1"
grep -q "node id the inode table does not know" "$DAEMON_LOG" ||
	fail "the unknown node id was not logged"
note "ESTALE on a lost node id; the daemon kept serving (1 restart)"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log 'node id the inode table does not know'
