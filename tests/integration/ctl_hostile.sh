#!/bin/bash
# Hostile control messages: truncated, oversized, wrong version/magic/op, reserved bytes,
# missing, extra and foreign fds. Each gets an error reply on a connection that keeps
# working, the daemon keeps serving other clients, and nothing changes.
. "$(dirname "$0")/lib.sh"
require_mount_env
CLIENT=$RDMAFS_BUILD/tests/ctl-client
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src
head -c 100000 /dev/urandom >"$S/f"
exec 3<>"$M/f"
echo change >&3
before=$("$CLIENT" stat "$M/f")
cp "$S/f" "$T/backing.before"
SOCK=$(sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" | tail -1)
[ -S "$SOCK" ] || fail "control socket not found (log: $SOCK)"

python3 - "$SOCK" "$M" <<'PY' || fail "hostile input"
import array, errno, os, socket, struct, sys
sock_path, mnt = sys.argv[1], sys.argv[2]
MAGIC, VER = 0x464d4452, 1
def req(op, flags=0, arg=0, ver=VER, magic=MAGIC, length=48, reserved=b"\0" * 24, seq=7):
    return struct.pack("<IHHII", magic, ver, op, length, seq) + struct.pack("<Ii", flags, arg) + reserved
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(sock_path)
    return s
def xact(s, data, fds=()):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([data], anc)
    msg, anc, flags, _ = s.recvmsg(16384, socket.CMSG_SPACE(16))
    for lvl, typ, d in anc:
        for fd in array.array("i", d[:len(d) - len(d) % 4]):
            os.close(fd)
    magic, ver, op, length, seq, err, count = struct.unpack("<IHHIIiI", msg[:24])
    assert magic == MAGIC and ver == VER and length == len(msg), msg
    return err, op, seq
fails = 0
def expect(name, data, want, fds=(), s=None):
    global fails
    s = s or main
    err, op, seq = xact(s, data, fds)
    ok = err == -want
    print(("ok  " if ok else "BAD ") + f"{name}: {errno.errorcode.get(-err, err)}")
    fails += not ok
main = conn()
f_rw = os.open(os.path.join(mnt, "f"), os.O_RDWR)
f_path = os.open(os.path.join(mnt, "f"), os.O_PATH)
d_fd = os.open(mnt, os.O_RDONLY)
foreign = os.open("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd", os.O_RDONLY)
r, w = os.pipe()
FLUSH, STAT, MAP, EVICT, LEASE = 1, 2, 3, 4, 5
expect("truncated (10 bytes)", req(STAT, 1)[:10], errno.EBADMSG)
expect("header only", req(STAT, 1, length=16)[:16], errno.EBADMSG)
expect("short body", req(STAT, 1, length=40)[:40], errno.EBADMSG)
expect("oversized (20000 bytes)", req(STAT, 1, length=20000) + b"\0" * (20000 - 48), errno.EMSGSIZE)
expect("too long (64 bytes)", req(STAT, 1, length=64) + b"\0" * 16, errno.EMSGSIZE)
expect("length field lies", req(STAT, 1, length=4096), errno.EBADMSG)
expect("wrong version", req(STAT, 1, ver=2), errno.EPROTONOSUPPORT)
expect("version 0", req(STAT, 1, ver=0), errno.EPROTONOSUPPORT)
expect("bad magic", req(STAT, 1, magic=0xdeadbeef), errno.EPROTO)
expect("garbage", os.urandom(48), errno.EPROTO)
expect("unknown op", req(999), errno.EOPNOTSUPP)
expect("reply op as request", req(0x8002, 1), errno.EOPNOTSUPP)
expect("reserved bytes set", req(STAT, 1, reserved=b"\1" + b"\0" * 23), errno.EINVAL)
expect("unknown flags", req(STAT, 0x80), errno.EINVAL)
expect("arg where none is allowed", req(FLUSH, 1, arg=5), errno.EINVAL)
expect("map prot 0", req(MAP, arg=0), errno.EINVAL, [f_rw])
expect("lease signo 1000", req(LEASE, arg=1000), errno.EINVAL, [f_rw])
expect("flush without fd", req(FLUSH), errno.EBADF)
expect("flush with two fds", req(FLUSH), errno.EMSGSIZE, [f_rw, f_rw])
expect("stat with five fds", req(STAT), errno.EMSGSIZE, [f_rw, d_fd, r, w, foreign])
expect("mount stat with an fd", req(STAT, 1), errno.EBADF, [f_rw])
expect("evict with an fd", req(EVICT), errno.EBADF, [f_rw])
expect("fd of another filesystem", req(FLUSH), errno.EXDEV, [foreign])
expect("pipe fd", req(STAT), errno.EXDEV, [r])
expect("O_PATH fd", req(FLUSH), errno.EBADF, [f_path])
expect("directory fd", req(STAT), errno.EISDIR, [d_fd])
expect("socket fd", req(STAT), errno.EXDEV, [main.fileno()])
# the connection still works, and so does another one while this one stalls mid-way
expect("valid mount stat after all that", req(STAT, 1 | 2), 0)
stalled = conn()
other = conn()
expect("another client while one stalls", req(STAT, 1), 0, s=other)
# more clients than the daemon accepts: the extra ones are dropped, others still served
many = []
for i in range(300):
    try:
        many.append(conn())
    except OSError:
        break
print(f"# flood: {len(many)} connections opened")
for c in many: c.close()
import time
for i in range(100):  # the daemon drains its accept queue
    try:
        after = conn()
        break
    except BlockingIOError:
        time.sleep(0.05)
expect("served after a connection flood", req(STAT, 1 | 2), 0, s=after)
# a reply-op check: seq is echoed
err, op, seq = xact(main, req(STAT, 3, seq=12345))
assert err == 0 and op == 0x8002 and seq == 12345, (err, op, seq)
sys.exit(1 if fails else 0)
PY

# nothing changed: backing untouched, staging still holds the same change
cmp -s "$S/f" "$T/backing.before" || fail "backing file changed"
[ "$("$CLIENT" stat "$M/f")" = "$before" ] || fail "staging state changed"
"$CLIENT" mount-stat "$M" | grep -q '^ok' || fail "daemon stopped serving"
kill -0 "$DAEMON_PID" || fail "daemon died"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
