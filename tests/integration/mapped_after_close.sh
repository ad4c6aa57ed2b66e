#!/bin/bash
# Stores through a writable mapping that outlived its descriptor's close reach the backing
# file within flush_interval, like any other change (DESIGN.md: periodic write-back bounds
# the data at risk). With FUSE passthrough the kernel sends RELEASE at close(2) although
# the mapping stays, so the daemon must not take "no open" for "no writer".
# The daemon learns it from a write lease probe on the staging file (staging_open_elsewhere).
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S"
head -c 1M /dev/zero >"$S/f"
mount_rdmafs "$S" "$M" -o flush_interval=1
require_passthrough

# The holder maps f writable, closes the fd (no dup, unlike python's mmap module), stores
# one byte when told and keeps the mapping until killed.
python3 - "$M/f" "$T/ready" "$T/go" <<'PY' &
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
fd = os.open(sys.argv[1], os.O_RDWR)
addr = libc.mmap(None, 1 << 20, 3, 1, fd, 0)	# PROT_READ|PROT_WRITE, MAP_SHARED
if addr in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap: " + os.strerror(ctypes.get_errno()))
os.close(fd)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
(ctypes.c_ubyte * (1 << 20)).from_address(addr)[4096] = 0x77
open(sys.argv[2], "a").write("stored\n")
time.sleep(600)
PY
holder=$!
_pids+=("$holder")
wait_for 10 test -e "$T/ready" || fail "the holder did not map the file"
# The writable open made it "maybe dirty": the next periodic pass scans it (1 MiB) and,
# seeing no open, marks it clean. Wait for that pass, then store.
s0=$(metric "$M" rdmafs_scanned_bytes_total)
scanned() { [ "$(metric "$M" rdmafs_scanned_bytes_total)" -ge $((s0 + (1 << 20))) ]; }
wait_for 10 scanned || fail "no periodic pass scanned the file"
touch "$T/go"
wait_for 10 grep -q stored "$T/ready" || fail "the holder did not store"
at_backing() { [ "$(od -An -tx1 -j 4096 -N1 "$S/f" | tr -d ' ')" = 77 ]; }
wait_for 5 at_backing || fail "a store through a mapping kept after close(2) was not committed within 5 flush intervals"
kill "$holder"
wait "$holder" 2>/dev/null || true
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
