#!/bin/bash
# staging=hugetlb: read and write through the mount (served by the daemon) see the same
# bytes; a direct mapping of the staging memfd has 2 MiB pages, can be pinned, and what is
# written through it is read through the mount and committed to the backing file by fsync.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hugetlb_lib.sh"
require_mount_env
MAPCHECK=$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck
MAPTEST=$RDMAFS_BUILD/tests/helpers/rdmafs-maptest
reserve_hugepages 24
M=$T/mnt S=$T/src
mkdir -p "$S"
head -c 10000000 /dev/urandom >"$S/h.dat"
cp "$S/h.dat" "$T/expect"
mount_rdmafs "$S" "$M" -o staging=hugetlb,hugetlb_fallback=no,flush_interval=1
exec 3<>"$M/h.dat"	# keeps it staged
[ "$(stat_field "$M/h.dat" staging)" = hugetlb ] || fail "not staged in hugetlb"
[ "$(stat -c %s "$M/h.dat")" = 10000000 ] || fail "size is not the logical size: $(stat -c %s "$M/h.dat")"
cmp -s "$M/h.dat" "$T/expect" || fail "read through the mount differs"

# write through the mount, growing the file past its page
printf 'HELLO' | dd of="$M/h.dat" bs=1 seek=9999998 conv=notrunc status=none
printf 'HELLO' | dd of="$T/expect" bs=1 seek=9999998 conv=notrunc status=none
[ "$(stat -c %s "$M/h.dat")" = 10000003 ] || fail "size after a write past EOF"
cmp -s "$M/h.dat" "$T/expect" || fail "write through the mount not read back"
dd if=/dev/urandom of="$T/blk" bs=1M count=3 status=none
dd if="$T/blk" of="$M/h.dat" bs=1M seek=1 conv=notrunc status=none
dd if="$T/blk" of="$T/expect" bs=1M seek=1 conv=notrunc status=none
cmp -s "$M/h.dat" "$T/expect" || fail "3 MiB write across pages not read back"

# direct mapping of the staging memfd (what rdmafs_map hands out)
mfd=$(ls -l /proc/$DAEMON_PID/fd | awk '/memfd:rdmafs-staging/ {print $9}' | head -1)
[ -n "$mfd" ] || fail "no staging memfd in the daemon"
out=$("$MAPCHECK" --write 0x42 --register /proc/$DAEMON_PID/fd/$mfd) || fail "mapcheck: $out"
note "memfd: $out"
grep -q "kernel_page_kb=2048" <<<"$out" || fail "memfd mapping without 2 MiB pages: $out"
grep -q "register=ok" <<<"$out" || fail "pin of the hugetlb mapping refused: $out"
python3 - "$T/expect" <<'PY'
import sys
f = open(sys.argv[1], 'r+b'); n = 10000003
for off in range(0, n, 4096):
    f.seek(off); f.write(b'\x42')
PY
cmp -s "$M/h.dat" "$T/expect" || fail "writes through the direct mapping not read through the mount"
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$M/h.dat"
cmp -s "$S/h.dat" "$T/expect" || fail "fsync did not commit to the backing file"

# librdmafs' rdmafs_map, where the library is built
[ -x "$MAPTEST" ] || fail "$MAPTEST not built"
out=$("$MAPTEST" "$M/h.dat" 2048) || fail "rdmafs_map: $out"
note "$out"
printf 'M%.0s' $(seq 4096) | dd of="$T/expect" bs=4096 seek=3 conv=notrunc status=none
cmp -s "$M/h.dat" "$T/expect" || fail "write through rdmafs_map not read through the mount"
cmp -s "$S/h.dat" "$T/expect" || fail "write through rdmafs_map not committed by fsync"
# A plain mmap through the mount cannot be pinned: the daemon serves this file.
note "plain mmap through the mount: $("$MAPCHECK" --register "$M/h.dat" 2>&1 | tail -1)"
[ "$(stat_field "$M/h.dat" staging)" = hugetlb ] || fail "stat does not show the hugetlb mode"
[ "$(stat_field "$M/h.dat" page_size)" = 2097152 ] || fail "stat does not show the page size"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
cmp -s "$S/h.dat" "$T/expect" || fail "backing file differs after unmount"
check_daemon_log
