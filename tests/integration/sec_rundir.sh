#!/bin/bash
# Issue 12 item 11: /run/rdmafs is not trusted as found. In a private mount namespace
# (a tmpfs on /run; the real one is untouched): a missing directory is created root 0755;
# one a user owns, a symlink to a user's directory, or a world-writable one gets no
# socket from the daemon, and clients do not talk to a socket a user planted there.
if [ -z "${RDMAFS_IN_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP sec_rundir: needs root"; exit 77; }
	exec env RDMAFS_IN_NS=1 unshare -m --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount -t tmpfs -o mode=0755 rdmafs-test-run /run || skip "cannot mount a tmpfs on /run"
R=/run/rdmafs M=$T/mnt S=$T/src
mkdir -p "$S"; chmod 755 "$S"
echo data >"$S/f"; chmod 644 "$S/f"

# The user plants a listener at the socket path clients of the next mount will use.
plant() {
	"${AS_USER[@]}" "$PY" - "$M" "$1" >"$T/fake.out" 2>&1 <<'PY' &
import os, re, socket, sys, time
mnt, d = sys.argv[1], sys.argv[2]
def esc(p):	# rdmafs_proto_sock_name()
    p, name = p.lstrip("/"), ""
    for i, c in enumerate(p):
        if c == "/":
            name += "-" if i + 1 < len(p) and p[i + 1] != "/" else ""
        elif re.match(r"[A-Za-z0-9_]", c) or (c == "." and name):
            name += c
        else:
            name += "\\x%02x" % ord(c)
    return name
for _ in range(200):	# the mount's device, once it is there
    devs = [l.split()[2] for l in open("/proc/self/mountinfo") if l.split()[4] == mnt]
    if devs:
        break
    time.sleep(0.05)
path = os.path.join(d, esc(mnt) + "@" + devs[-1] + ".sock")
print(path, flush=True)
if d == "-":
    sys.exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
s.listen(8)
s.settimeout(4)
print("listening", flush=True)
try:
    s.accept()
    print("got a client")
except socket.timeout:
    print("no client")
PY
	fake=$!
}
# missing: created, root's, 0755, and it works
mount_rdmafs "$S" "$M" -o flush_interval=0
[ "$(stat -c '%U %a %F' "$R")" = "root 755 directory" ] || fail "created $R: $(stat -c '%U %a %F' "$R")"
"$RDMAFSCTL" stat "$M/f" >/dev/null || fail "stat with a good $R"
plant -
wait "$fake"
[ "$(head -1 "$T/fake.out")" = "$(ctl_sock | sed 's|^/run/rdmafs|-|')" ] ||
	fail "the planted path is not the socket's: $(head -1 "$T/fake.out") vs $(ctl_sock)"
unmount_rdmafs "$M" || fail "daemon exit $?"

try_dir() {	# $1: what, $2: where the user listens
	plant "$2"
	mount_rdmafs "$S" "$M" -o flush_interval=0
	wait_for 10 grep -q listening "$T/fake.out" || fail "$1: fake listener: $(cat "$T/fake.out")"
	ls -la "$2" >"$T/ls.out"
	grep -q "^s.* root " "$T/ls.out" && fail "$1: daemon made a socket there: $(cat "$T/ls.out")"
	"$RDMAFSCTL" stat "$M/f" >/dev/null 2>&1 && fail "$1: rdmafsctl talked to the directory"
	wait "$fake" || true
	grep -q "no client" "$T/fake.out" || fail "$1: $(cat "$T/fake.out")"
	cat "$M/f" >/dev/null	# the mount itself works
	unmount_rdmafs "$M" || fail "$1: daemon exit $?"
}
# owned by the user
rm -rf "$R"; mkdir -m 0755 "$R"; chown "$U" "$R"
try_dir "user-owned $R" "$R"
# a symlink to a user's directory
rm -rf "$R"; mkdir -m 0755 "$T/userdir"; chown "$U" "$T/userdir"; ln -s "$T/userdir" "$R"
try_dir "$R -> user's directory" "$T/userdir"
# root's but world-writable (no sticky bit protects a socket name from being taken first)
rm -f "$R"; mkdir -m 0777 "$R"
try_dir "world-writable $R" "$R"
grep -q "not a directory of uid 0 that only it can write" "$DAEMON_LOG" || fail "refusal not logged"
check_daemon_log 'not a directory of uid 0|ctl: socket .*Operation not permitted'
