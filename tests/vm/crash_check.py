#!/usr/bin/env python3
"""Checks a file system state recovered after a (simulated) crash against the journal of
tests/helpers/crashload.c (the crash-consistency harness, tests/vm/guest/crash_*.sh).

    crash_check.py JOURNAL --mark NAME [--until NAME|cut] DIR [--mark ... DIR]...

Each (--mark, --until, DIR) is one recovered state: DIR is the mounted copy of the backing
file system replayed to the log position of mark NAME (--until absent) or to a point after
it and before mark --until (or before the power cut, --until cut). The contract checked:

- a file's durable state is its state when its last durability point (fsync, rdmafsctl
  flush of it or of the mount) before NAME returned; after it, until --until, it may
  have changed: every 4 KiB block of the file holds its durable bytes or bytes it held
  after that (old or new, zeros where it was a hole, punched or past the end), never
  anything else; its size is between the smallest and the largest it had in that window;
  at a mark that follows its own durability point this is exactly the durable content;
- its name is the one it had at the last fsync of the directory before NAME or one it
  had after it.

Prints one line per state with the blocks and bytes verified; exit 0 if all hold, 1 if not.
"""
import os
import re
import sys

BLK = 4096


def block(f, b, g):
    return b"".join(b"F%02d B%05d G%06d R%03d crash!!\n" % (f % 100, b % 100000, g % 1000000, r)
                    for r in range(BLK // 32))


ZERO = bytes(BLK)
REC = re.compile(rb"F(\d\d) B(\d{5}) G(\d{6}) R000 crash!!\n")


def classify(data, f, b):
    """0 for zeros, the generation for a whole valid block of (f, b), else None."""
    if data == ZERO:
        return 0
    m = REC.fullmatch(data[:32])
    if not m or int(m[1]) != f % 100 or int(m[2]) != b % 100000:
        return None
    g = int(m[3])
    return g if data == block(f, b, g) else None


def describe(data):
    if data == ZERO:
        return "zeros"
    m = REC.fullmatch(data[:32])
    if m:
        return "a block of file %s block %s generation %s%s" % (
            m[1].decode(), m[2].decode(), m[3].decode(),
            "" if data == block(int(m[1]), int(m[2]), int(m[3])) else " (torn)")
    return "garbage %r" % data[:32]


class State:
    def __init__(self):
        self.size = 0   # blocks
        self.vals = {}  # block -> generation (absent: zero)
        self.name = None

    def copy(self):
        s = State()
        s.size, s.vals, s.name = self.size, dict(self.vals), self.name
        return s


def load(path):
    """The journal as a list of (event, args); one model snapshot per file per event."""
    events = []
    with open(path) as j:
        for line in j:
            w = line.split()
            if w:
                events.append((w[0], w[1:]))
    return events


def check(events, mark, until, top):
    try:
        pos_m = events.index(("mark", [mark]))
    except ValueError:
        sys.exit("crash_check: no mark %s in the journal" % mark)
    if until is None:
        pos_e = pos_m
    elif until == "cut":
        pos_e = events.index(("cut", []))
    else:
        pos_e = events.index(("mark", [until]))
    if pos_e < pos_m:
        sys.exit("crash_check: --until is before --mark")

    # Walk the journal: per file, the states from its last durability point before the
    # mark through the window's end.
    files = {}      # id -> current State
    base = {}       # id -> index into hist[id] of the durable state
    hist = {}       # id -> list of states since the file's last durability point
    names_base = {}  # id -> names allowed since the last directory fsync
    dirsynced = {}
    for i, (ev, a) in enumerate(events[:pos_e + 1]):
        if ev == "file":
            f = int(a[0])
            files[f] = State()
            files[f].name = a[1]
            hist[f] = [files[f].copy()]
            dirsynced[f] = None
            names_base[f] = {a[1]}
            continue
        if ev in ("sync", "syncall"):
            if i < pos_m:
                for f in ([int(a[0])] if ev == "sync" else list(files)):
                    hist[f] = [files[f].copy()]
            continue
        if ev == "dirsync":
            if i < pos_m:
                for f in files:
                    names_base[f] = {files[f].name}
            continue
        if ev in ("mark", "cut", "drop_caches"):
            continue
        f = int(a[0])
        s = files[f]
        if ev == "size":
            n = int(a[1])
            for b in [b for b in s.vals if b >= n]:
                del s.vals[b]
            s.size = n
        elif ev == "write":
            s.vals[int(a[1])] = int(a[2])
        elif ev == "zero":
            s.vals.pop(int(a[1]), None)
        elif ev == "rename":
            s.name = a[1]
            names_base[f].add(a[1])
            continue
        else:
            sys.exit("crash_check: unknown journal line %s %s" % (ev, a))
        hist[f].append(s.copy())

    blocks = exact = 0
    errors = []
    for f in sorted(files):
        states = hist[f]
        found = [n for n in sorted(names_base[f]) if os.path.exists(os.path.join(top, n))]
        if len(found) != 1:
            errors.append("file %d: expected under one of %s, found %s" %
                          (f, sorted(names_base[f]), found or "none"))
            continue
        path = os.path.join(top, found[0])
        with open(path, "rb") as fh:
            data = fh.read()
        lo = min(s.size for s in states) * BLK
        hi = max(s.size for s in states) * BLK
        if len(data) % BLK or not lo <= len(data) <= hi:
            errors.append("%s (file %d): size %d, durable size %d%s" % (
                path, f, len(data), states[0].size * BLK,
                "" if lo == hi else ", allowed %d..%d" % (lo, hi)))
        for b in range(min(len(data), hi) // BLK):
            allowed = {s.vals.get(b, 0) if b < s.size else 0 for s in states}
            got = data[b * BLK:(b + 1) * BLK]
            g = classify(got, f, b)
            if g is None or g not in allowed:
                want = ", ".join("zeros" if x == 0 else "generation %d" % x
                                 for x in sorted(allowed))
                errors.append("%s (file %d) block %d: %s, expected %s" % (
                    path, f, b, describe(got), want))
                continue
            blocks += 1
            exact += len(allowed) == 1
    span = mark if until is None else "%s..%s" % (mark, until)
    print("check %s: %d files, %d blocks verified (%d exact), %d bytes verified, %d errors" %
          (span, len(files), blocks, exact, blocks * BLK, len(errors)))
    for e in errors[:20]:
        print("  ERROR " + e)
    if len(errors) > 20:
        print("  ... %d more errors" % (len(errors) - 20))
    return not errors


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    events = load(argv[1])
    ok = True
    i = 2
    while i < len(argv):
        if argv[i] != "--mark":
            sys.exit(__doc__)
        mark, i = argv[i + 1], i + 2
        until = None
        if argv[i] == "--until":
            until, i = argv[i + 1], i + 2
        ok = check(events, mark, until, argv[i]) and ok
        i += 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
