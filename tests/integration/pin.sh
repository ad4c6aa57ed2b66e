#!/bin/bash
# The point of rdmafs: a long-term writable pin (io_uring_register_buffers, the pin
# ibv_reg_mr takes) of a mapped rdmafs file succeeds, while the same pin of a file on the
# backing ext4 is refused with EFAULT; kernel writes through the pin reach the backing
# file at fsync.
. "$(dirname "$0")/lib.sh"
require_mount_env
loop_fs 64M ext4 "$T/src"
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
require_passthrough
M=$T/mnt S=$T/src

# The pin is refused on the ext4 file itself ...
random_file "$S/plain" 1M
rc=0
out=$("$PINWRITE" --probe "$S/plain" 2>&1) || rc=$?
[ $rc = 2 ] || fail "pin of an ext4 mapping: exit $rc, expected 2 (refused): $out"
[[ $out == *"Bad address"* ]] || fail "pin of an ext4 mapping refused, but not with EFAULT: $out"
# ... and accepted on the same file through rdmafs.
"$PINWRITE" --probe "$M/plain" >/dev/null 2>"$T/probe.err" ||
	fail "pin of a mapped rdmafs file refused: $(cat "$T/probe.err")"

# A peer writes 8 MiB through the pin at an offset; fsync; the backing file has it.
random_file "$T/peer" 8M
out=$("$PINWRITE" --from "$T/peer" --offset 12288 --quiet "$M/pinned") ||
	fail "pinwrite: $out"
want=$(printf '%s' "$out" | sed -n 's/^xxh3=//p')
[ -n "$want" ] || fail "no checksum from pinwrite: $out"
[ "$(stat -c %s "$S/pinned")" = $((12288 + (8 << 20))) ] || fail "backing size $(stat -c %s "$S/pinned")"
cmp -s -i 12288:0 "$S/pinned" "$T/peer" || fail "backing file does not hold the peer's bytes"
cmp -s -n 12288 "$S/pinned" /dev/zero || fail "bytes before the pinned range changed"

command -v xxhsum >/dev/null || fail "xxhsum missing (scripts/setup installs xxhash)"
[ "$(xxh3 "$T/peer")" = "$want" ] || fail "pinwrite's checksum is not the peer's data"

# Pinned writes in rounds over a file that already has content (1M: it grows), then fsync.
out=$("$PINWRITE" --size 4M --seed 5 --rounds 3 --quiet "$M/plain") || fail "pinwrite rounds: $out"
head -c 4M "$S/plain" >"$T/plain4"
[ "$(xxh3 "$T/plain4")" = "${out#xxh3=}" ] || fail "after pinned rounds + fsync, backing != last round"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
