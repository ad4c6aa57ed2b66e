#!/bin/bash
# staging=thp: a 64 MiB file mapped through the mount gets 2 MiB pages (ShmemPmdMapped or
# FilePmdMapped in smaps), can be pinned, and its writes are committed. A file whose
# writable mapping outlives its last close stays staged until the mapping goes.
# Asserts on `rdmafsctl stat --json` and `rdmafsctl metrics`, waits for events.
. "$(dirname "$0")/lib.sh"
require_mount_env
MAPCHECK=$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck
SHMEM_KNOB=/sys/kernel/mm/transparent_hugepage/shmem_enabled
[ -r $SHMEM_KNOB ] || skip "kernel without transparent huge pages"
grep -q '\[deny\]' $SHMEM_KNOB && skip "shmem huge pages denied ($SHMEM_KNOB)"
M=$T/mnt S=$T/src
mkdir -p "$S"
head -c 64M /dev/urandom >"$S/f.bin"
mount_rdmafs "$S" "$M" -o staging=thp,flush_interval=1
ls "$M" >/dev/null; require_passthrough

out=$("$MAPCHECK" --write 0x5a --register "$M/f.bin") || fail "mapcheck: $out"
note "thp: $out"
pmd=$(sed -n 's/.*pmd_kb=\([0-9-]*\).*/\1/p' <<<"$out")
[ "${pmd:-0}" -gt 0 ] || fail "no huge page mapping of a 64 MiB thp-staged file: $out"
grep -q "register=ok" <<<"$out" || fail "long-term pin refused: $out"
[ "$(stat_field "$M/f.bin" staging)" = thp ] || fail "not staged as thp"
[ "$(stat_field "$M/f.bin" page_size)" = 2097152 ] || fail "thp staging without 2 MiB pages"
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$M/f.bin"
[ "$(od -An -tx1 -j 8192 -N1 "$S/f.bin" | tr -d ' ')" = 5a ] || fail "write not committed"

# rdmafs_map of a thp file: 2 MiB mappings too (the kernel aligns a tmpfs mapping)
MAPTEST=$RDMAFS_BUILD/tests/helpers/rdmafs-maptest
[ -x "$MAPTEST" ] || fail "$MAPTEST not built"
exec 3<>"$M/f.bin"
out=$("$MAPTEST" "$M/f.bin" 2048) || fail "rdmafs_map: $out"
note "$out"
[ "$(dd if="$S/f.bin" bs=4096 skip=3 count=1 status=none | tr -d M | wc -c)" = 0 ] ||
	fail "write through rdmafs_map not committed"
exec 3>&-

# The freeze check: staging stays resident after the last close; rdmafsctl evict drops
# every staging so far once idle ...
released() { metric "$M" rdmafs_files_released_total; }
idle() {
	"$RDMAFSCTL" evict "$M" >/dev/null
	[ "$(metric "$M" rdmafs_files_staged_total)" = "$(released)" ]
}
wait_for 10 idle || fail "idle clean thp file never dropped"
n0=$(released)
# ... but not while a writable mapping of it is left after the close (mapcheck prints its
# line once it has mapped, stored and closed; then it holds the mapping until killed;
# it closes after its stores, see staging_budget.sh).
"$MAPCHECK" --write 0x33 --close-after --hold 600 "$M/f.bin" >"$T/map.out" &
mpid=$!
_pids+=("$mpid")
wait_for 10 grep -q register= "$T/map.out" || fail "mapcheck did not map: $(cat "$T/map.out")"
"$RDMAFSCTL" evict "$M" >/dev/null
[ "$(released)" = "$n0" ] || fail "dropped while writably mapped"
[ "$(stat_field "$M/f.bin" sealed)" = false ] || fail "frozen while writably mapped"
kill -0 "$mpid" 2>/dev/null || fail "mapcheck exited before the checks ended"
kill "$mpid"	# its mapping goes with it (the stored byte is in the shared staging memory)
wait "$mpid" 2>/dev/null || true
dropped() { "$RDMAFSCTL" evict "$M" >/dev/null; [ "$(released)" -gt "$n0" ]; }
wait_for 15 dropped || fail "not dropped after the mapping went"
[ "$(od -An -tx1 -j 8192 -N1 "$S/f.bin" | tr -d ' ')" = 33 ] || fail "mapped write not committed"

# shmem for comparison (not asserted: shmem_enabled decides there).
unmount_rdmafs "$M" || fail "daemon exit code $?"
mount_rdmafs "$S" "$M" -o staging=shmem
note "shmem: $("$MAPCHECK" --register "$M/f.bin")"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
