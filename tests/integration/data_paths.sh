#!/bin/bash
# write(2) and mmap stores reach the backing file at fsync (and not before: periodic and
# close commits are off); every open sees the same bytes; truncate up and down.
. "$(dirname "$0")/lib.sh"
require_mount_env
backing_dir "$T/src" 64M
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no,chunk_size=4K
require_passthrough
M=$T/mnt S=$T/src

random_file "$T/a" 3M
random_file "$T/b" 1M
: >"$M/f"
exec 3<>"$M/f"		# keeps the file open (and staged): no last-close commit

# write(2), then fsync.
dd if="$T/a" of="$M/f" bs=1M conv=notrunc status=none
cmp -s "$M/f" "$T/a" || fail "read after write differs"
[ "$(stat -c %s "$M/f")" = $((3 << 20)) ] || fail "staged size not reported: $(stat -c %s "$M/f")"
cmp -s "$S/f" "$T/a" && fail "backing already equal before fsync (flush_interval=0, no close): test is void"
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync failed"
same_file "$S/f" "$T/a"

# mmap stores (no msync), then fsync.
"$HELPER" mmapwrite "$M/f" 1000000 300000 7 >/dev/null || fail "mmap stores"
"$HELPER" pwrite "$T/a" 1000000 300000 7 >/dev/null	# the same bytes into the reference
cmp -s "$M/f" "$T/a" || fail "mapped stores not seen by read"
cmp -s "$S/f" "$T/a" && fail "backing has mapped stores before fsync"
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync after mmap stores"
same_file "$S/f" "$T/a"

# Two opens (one writing, one reading, one mapping) see the same bytes.
exec 4<>"$M/f"
dd if="$T/b" of=/dev/fd/4 bs=64K seek=2 oflag=seek_bytes conv=notrunc status=none
dd if="$T/b" of="$T/a" bs=64K seek=2 oflag=seek_bytes conv=notrunc status=none
cmp -s /dev/fd/3 "$T/a" || fail "the reading open does not see the writing open's bytes"
cmp -s "$M/f" "$T/a" || fail "a new open does not see the writing open's bytes"
exec 4>&-
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync"
same_file "$S/f" "$T/a"

# Truncate down (not on a chunk boundary) and up: contents kept below, zeros above.
truncate -s 1234567 "$M/f"
head -c 1234567 "$T/a" >"$T/a2"
cmp -s "$M/f" "$T/a2" || fail "truncate down: content"
[ "$(stat -c %s "$S/f")" = 1234567 ] || fail "truncate down: backing size"
truncate -s 2000000 "$M/f"
truncate -s 2000000 "$T/a2"
cmp -s "$M/f" "$T/a2" || fail "truncate up: not zeros above the old size"
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync after truncates"
same_file "$S/f" "$T/a2"
# Write past EOF (the kernel grows staging), then fsync commits the new size.
"$HELPER" pwrite "$M/f" 2500000 5000 9 >/dev/null
"$HELPER" pwrite "$T/a2" 2500000 5000 9 >/dev/null
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync after write past EOF"
same_file "$S/f" "$T/a2"
# fallocate: allocate past EOF (grows), KEEP_SIZE (does not), punch hole, zero range; the
# backing filesystem gets the same calls (xfs, btrfs: RDMAFS_BACKING_FS).
fallocate -o 2600000 -l 100000 "$M/f" || fail "fallocate (grow)"
truncate -s 2700000 "$T/a2"
fallocate -n -o 2700000 -l 300000 "$M/f" || fail "fallocate --keep-size"
[ "$(stat -c %s "$M/f")" = 2700000 ] || fail "fallocate --keep-size changed the size"
fallocate -p -o 8192 -l 20000 "$M/f" || fail "fallocate --punch-hole"
dd if=/dev/zero of="$T/a2" bs=64K seek=8192 count=20000 iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
fallocate -z -o 100000 -l 70000 "$M/f" || fail "fallocate --zero-range"
dd if=/dev/zero of="$T/a2" bs=64K seek=100000 count=70000 iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
cmp -s "$M/f" "$T/a2" || fail "content after fallocate"
[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "fsync after fallocate"
same_file "$S/f" "$T/a2"
# Where the backing filesystem takes O_DIRECT (statx DIOALIGN, at most page alignment:
# ext4, xfs with 4 KiB sectors), the daemon commits through an O_DIRECT descriptor.
if [ -n "${RDMAFS_BACKING_FS:-}" ] &&
	python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT))' "$S/f" 2>/dev/null; then
	direct=0
	for fd in /proc/"$DAEMON_PID"/fd/*; do
		[ "$(readlink "$fd")" = "$S/f" ] || continue
		flags=$(awk '/^flags:/ {print $2}' /proc/"$DAEMON_PID"/fdinfo/"${fd##*/}")
		(( 8#$flags & 8#40000 )) && direct=1
	done
	[ $direct = 1 ] && note "commits use O_DIRECT on $RDMAFS_BACKING_FS" ||
		note "no O_DIRECT descriptor on $RDMAFS_BACKING_FS (statx DIOALIGN says no or stricter than a page)"
fi
exec 3<&-

# A read-only open of an unstaged file first, then a writer: both see the same bytes.
random_file "$S/r" 200K
exec 5<"$M/r"
"$HELPER" pwrite "$M/r" 4096 4096 3 >/dev/null
cp "$S/r" "$T/r"
cmp -s /dev/fd/5 "$M/r" || fail "reader-first: opens disagree"
exec 5<&-

unmount_rdmafs "$M" || fail "daemon exit code $?"
same_file "$S/f" "$T/a2"
check_daemon_log
