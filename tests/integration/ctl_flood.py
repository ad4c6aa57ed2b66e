#!/usr/bin/env python3
# Hostile clients of a control socket (the sec_* tests run it as an unprivileged user).
#   ctl_flood.py SOCK conns N          N idle connections; prints "alive=K" (K of them answer
#                                      a mount stat) and holds them until stdin closes
#   ctl_flood.py SOCK leases N FILE    N leases on FILE (opened O_RDWR), one per connection;
#                                      prints "granted=K refused=ERRNO..." and holds them
#                                      until stdin closes
import array, errno, os, socket, struct, sys, time

MAGIC, VER = 0x464d4452, 1
STAT, LEASE = 2, 5
STAT_MOUNT, STAT_NOSCAN = 1, 2


def req(op, flags=0, arg=0, seq=1):
    return struct.pack("<IHHII", MAGIC, VER, op, 48, seq) + struct.pack("<Ii", flags, arg) + \
        b"\0" * 24


def xact(s, data, fds=()):
    """The reply's error (0, -errno), or the transport errno as a positive number."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    try:
        s.sendmsg([data], anc)
        msg = s.recv(16384)
    except OSError as e:
        return e.errno
    if len(msg) < 24:
        return errno.ECONNRESET
    return struct.unpack("<IHHIIiI", msg[:24])[5]


def connect(path):
    """A connection, retried while the listen backlog is full; None if refused."""
    for _ in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.01)
        except OSError:
            s.close()
            return None
    return None


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3])
    held = []
    if cmd == "conns":
        socks = [connect(path) for _ in range(n)]
        alive = 0
        for s in socks:
            if s and xact(s, req(STAT, STAT_MOUNT | STAT_NOSCAN)) == 0:
                alive += 1
                held.append(s)
        print(f"alive={alive}", flush=True)
    elif cmd == "leases":
        fd = os.open(sys.argv[4], os.O_RDWR)
        granted, refused = 0, {}
        for _ in range(n):
            s = connect(path)
            r = xact(s, req(LEASE), [fd]) if s else errno.ECONNREFUSED
            if r == 0:
                granted += 1
                held.append(s)
            else:
                name = errno.errorcode.get(abs(r), str(r))
                refused[name] = refused.get(name, 0) + 1
                if s:
                    s.close()
        print(f"granted={granted} " + " ".join(f"{k}={v}" for k, v in sorted(refused.items())),
              flush=True)
    else:
        sys.exit(f"unknown command {cmd}")
    sys.stdin.read()


main()
