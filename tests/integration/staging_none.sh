#!/bin/bash
# staging_paths mode none (issue 14): matching files are never staged; reads, writes and
# mmap go to the backing file itself, so they land there at once (flush_interval=0, no
# fsync, nothing staged per `rdmafsctl stat --json`, staging budget untouched); fsync
# reaches the backing device; a writable long-term pin of a mapping fails (EFAULT: the
# backing filesystem's pages) and leases/maps are refused with EOPNOTSUPP. Other paths
# still stage. A file staged when a rule would apply keeps its staging until evicted; a
# file open unstaged is not staged by a writable open through another name. Permissions
# are the backing files' (the writes run as an unprivileged user).
. "$(dirname "$0")/lib.sh"
require_mount_env
MAPCHECK=$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck
U=rdmafs-test
id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
	skip "cannot create user $U"
as_user() { runuser -u "$U" -- "$@"; }
chmod 755 "$T"
S=$T/src M=$T/mnt
backing_dir "$S" 96M ext4	# a device of its own: fsync is seen in its image
chmod 755 "$S"
mkdir -m 777 "$S/plain" "$S/staged"
mount_rdmafs "$S" "$M" -o "flush_interval=0,staging_budget=64M,staging_paths=/plain/*:none;*.raw:none"
require_passthrough

staged() { stat_field "$1" staged; }
bytes() { od -An -tx1 -j "$2" -N1 "$1" | tr -d ' '; }
staged_total() { metric "$M" rdmafs_files_staged_total; }
py() { as_user python3 -c "$@"; }

# A bad mode is a clear error naming the item, before anything is mounted.
out=$("$RDMAFS" "$S" "$T/nomnt" -f -o 'staging_paths=*.x:pasthrough' 2>&1) &&
	fail "unknown staging_paths mode accepted"
grep -q "unknown mode 'pasthrough'" <<<"$out" || fail "unclear error for a bad mode: $out"

# 1. A new file and an existing one through a matching path: in the backing file at once.
as_user sh -c "printf hello >'$M/plain/a'" || fail "user could not create plain/a"
[ "$(cat "$S/plain/a")" = hello ] || fail "write to plain/a not in the backing file"
[ "$(staged "$M/plain/a")" = false ] || fail "plain/a staged"
[ "$(stat_field "$M/plain/a" staging)" = none ] || fail "plain/a: staging not none"
[ "$(staged_total)" = 0 ] || fail "a file was staged"
head -c 8M /dev/zero >"$S/plain/big"
chown "$U" "$S/plain/big"
py "
import os, sys
fd = os.open('$M/plain/big', os.O_RDWR)
os.pwrite(fd, b'\x11' * 4096, 1 << 20)
assert os.pread(fd, 1, 1 << 20) == b'\x11'
os.ftruncate(fd, 4 << 20)
os.close(fd)
fd = os.open('$M/plain/big', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'\x22' * 100)
os.write(fd, b'\x33' * 100)
os.close(fd)
" || fail "writes through plain/big failed"
[ "$(stat -c %s "$S/plain/big")" = $(((4 << 20) + 200)) ] || fail "truncate/append size wrong"
[ "$(bytes "$S/plain/big" $((1 << 20)))" = 11 ] || fail "pwrite not in the backing file"
[ "$(bytes "$S/plain/big" $((4 << 20)))" = 22 ] || fail "first O_APPEND write misplaced"
[ "$(bytes "$S/plain/big" $(((4 << 20) + 100)))" = 33 ] || fail "second O_APPEND write misplaced"
[ "$(staged "$M/plain/big")" = false ] || fail "plain/big staged"

# 2. mmap: stores reach the backing file with no msync or fsync; a writable long-term pin
# of the backing filesystem's pages is refused by the kernel (documented, expected).
out=$(as_user "$MAPCHECK" --write 0x5a --register "$M/plain/big") || fail "mapcheck: $out"
note "mapcheck plain/big: $out"
grep -q "register=EFAULT" <<<"$out" || fail "writable pin of a none file not refused: $out"
[ "$(bytes "$S/plain/big" 8192)" = 5a ] || fail "mapped store not in the backing file"
[ "$(staged_total)" = 0 ] || fail "mmap staged a none file"

# 3. Leases and maps: refused with a clear error, nothing staged.
out=$(as_user "$RDMAFSCTL" lease hold "$M/plain/big" 2>&1) && fail "lease on a none file"
grep -q "never staged" <<<"$out" || fail "unclear lease error: $out"

# 4. fsync reaches the backing device: a marker written through the mount is in the ext4
# image once fsync returns (the image is read through the host's page cache).
marker=rdmafs-none-fsync-$$-$RANDOM
py "
import os
fd = os.open('$M/plain/sync.raw', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, ('$marker' * 200).encode())
os.fsync(fd)
os.close(fd)
" || fail "fsync through a none file failed"
if [ -f "$T/ext4.img" ]; then
	grep -qa "$marker" "$T/ext4.img" || fail "fsync returned before the data reached the device"
fi
# ... and so does the RDMAFS_IOC_FLUSH ioctl (_IO('R', 1)) on an unstaged open.
py "
import fcntl, os
fd = os.open('$M/plain/sync.raw', os.O_RDWR | os.O_APPEND)
os.write(fd, ('$marker-ioctl' * 200).encode())
fcntl.ioctl(fd, 0x5201)
os.close(fd)
" || fail "RDMAFS_IOC_FLUSH on a none file failed"
if [ -f "$T/ext4.img" ]; then
	grep -qa "$marker-ioctl" "$T/ext4.img" || fail "ioctl flush did not sync the backing file"
fi
[ "$(staged "$M/plain/sync.raw")" = false ] || fail "*.raw file staged"

# 5. Permissions are the backing file's: root's 0644 file cannot be written by the user.
printf root-data >"$S/plain/rootfile"
chmod 644 "$S/plain/rootfile"
as_user sh -c "printf pwned >'$M/plain/rootfile'" 2>/dev/null && fail "user wrote root's 0644 file"
as_user truncate -s 0 "$M/plain/rootfile" 2>/dev/null && fail "user truncated root's 0644 file"
[ "$(cat "$S/plain/rootfile")" = root-data ] || fail "root's file changed"
[ "$(as_user cat "$M/plain/rootfile")" = root-data ] || fail "user cannot read root's 0644 file"

# 6. Other paths still stage, and the budget is charged only for them.
used0=$(stat_field "$M" staged_bytes)
[ "$used0" = 0 ] || fail "staged bytes $used0 with only none files written"
printf old >"$S/staged/f"
chown "$U" "$S/staged/f"
exec 3<>"$M/staged/f"
printf new >&3
[ "$(staged "$M/staged/f")" = true ] || fail "staged/f not staged"
[ "$(stat_field "$M/staged/f" staging)" = shmem ] || fail "staged/f not shmem"
[ "$(cat "$S/staged/f")" = old ] || fail "staged write reached the backing file unflushed"
[ "$(stat_field "$M" staged_bytes)" = 4096 ] || fail "budget: $(stat_field "$M" staged_bytes)"

# 7. Rename into a matching path while staged: staging wins while it exists (one copy of
# the data), a writable open through the new name uses it; rdmafsctl evict drops it once
# clean, and the next open is served from the backing file.
mv "$M/staged/f" "$M/plain/f"
py "import os; os.pwrite(os.open('$M/plain/f', os.O_RDWR), b'N', 0)" ||
	fail "write through plain/f failed"
[ "$(staged "$M/plain/f")" = true ] || fail "staged file lost its staging on rename"
[ "$(cat "$M/plain/f")" = New ] || fail "opens of a staged file disagree: $(cat "$M/plain/f")"
python3 -c "import os; os.fsync(3)" 3<>"$M/plain/f"
exec 3>&-
[ "$(cat "$S/plain/f")" = New ] || fail "fsync did not commit plain/f"
evicted() { "$RDMAFSCTL" evict "$1" >/dev/null; [ "$(staged "$1")" = false ]; }
wait_for 10 evicted "$M/plain/f" || fail "plain/f never evicted"
n=$(staged_total)
as_user sh -c "printf x >>'$M/plain/f'"
[ "$(cat "$S/plain/f")" = Newx ] || fail "write after evict not in the backing file"
[ "$(staged_total)" = "$n" ] || fail "plain/f staged again"

# 8. Rename out of a matching path while open unstaged: a writable open through the new
# name must not stage it (the open descriptor writes the backing file): not staged until
# every open is closed.
exec 4<>"$M/plain/g"
mv "$M/plain/g" "$M/staged/g"
printf abc >"$M/staged/g"
[ "$(cat "$S/staged/g")" = abc ] || fail "write to staged/g while open unstaged was staged"
[ "$(staged_total)" = "$n" ] || fail "staged/g staged while open unstaged"
exec 4>&-
printf def >"$M/staged/g"
[ "$(staged "$M/staged/g")" = true ] || fail "staged/g not staged after the last close"

# 9. Hard links under two names with different rules: one inode, one mode; what one name
# writes the other reads (the rule of the name the daemon knows the inode by applies).
printf one >"$M/plain/h"
ln "$M/plain/h" "$M/staged/h"
printf two >"$M/staged/h"
[ "$(cat "$M/plain/h")" = two ] || fail "hard links disagree"
python3 -c "import os; os.fsync(3)" 3<>"$M/staged/h"
[ "$(cat "$S/plain/h")" = two ] || fail "hard link write not in the backing file after fsync"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
