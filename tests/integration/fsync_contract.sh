#!/bin/bash
# The fsync contract: every byte in a file's staging when fsync begins is in the backing
# file when fsync returns; so is the flush ioctl's. Nothing else commits here
# (flush_interval=0, flush_on_close=no, the file stays open).
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
backing_dir "$S" 64M
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no,chunk_size=4K
require_passthrough
: >"$T/a"
: >"$M/f"
exec 3<>"$M/f"
for round in 1 2 3 4 5; do
	off=$((RANDOM * 97 % (5 << 20)))
	len=$((1 + RANDOM % 300000))
	"$HELPER" mmapwrite "$M/f" $off $len $round >/dev/null
	"$HELPER" mmapwrite "$T/a" $off $len $round >/dev/null
	"$HELPER" pwrite "$M/f" $((off / 3)) 777 $round >/dev/null
	"$HELPER" pwrite "$T/a" $((off / 3)) 777 $round >/dev/null
	cmp -s "$M/f" "$T/a" || fail "round $round: staging != reference"
	cmp -s "$S/f" "$T/a" && fail "round $round: backing equal before fsync: test is void"
	[ "$("$HELPER" fsync "$M/f")" = ok ] || fail "round $round: fsync"
	same_file "$S/f" "$T/a"
done
# fdatasync is the same commit.
"$HELPER" pwrite "$M/f" 0 4096 9 >/dev/null
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.fdatasync(fd)' "$M/f" ||
	fail "fdatasync"
cmp -s "$S/f" "$M/f" || fail "backing != staging after fdatasync"
# The flush ioctl (librdmafs' flush) is the same durability point, from a read-only fd.
"$HELPER" pwrite "$M/f" 70000 12345 10 >/dev/null
"$HELPER" pwrite "$T/a" 70000 12345 10 >/dev/null
"$HELPER" pwrite "$M/f" 0 4096 9 >/dev/null	# as above, for the reference
"$HELPER" pwrite "$T/a" 0 4096 9 >/dev/null
cmp -s "$S/f" "$T/a" && fail "backing equal before the ioctl: test is void"
[ "$("$HELPER" ioctl-flush "$M/f")" = ok ] || fail "RDMAFS_IOC_FLUSH"
same_file "$S/f" "$T/a"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
