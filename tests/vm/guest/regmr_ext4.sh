# The pin the project exists for: a writable long-term registration (ibv_reg_mr for remote
# writes) of a MAP_SHARED mapping of an ext4 file is refused with EFAULT, while shared
# memory (memfd, tmpfs) and anonymous memory register. A read-only pin of the ext4 file is
# allowed.
. "$RDMAFS_LIB"

rxe_up
modprobe -a loop ext4 || fail "modprobe loop ext4 failed"
truncate -s 128M /tmp/ext4.img
mkfs.ext4 -q -F /tmp/ext4.img || fail "mkfs.ext4 failed"
mkdir -p /tmp/ext4
mount -o loop /tmp/ext4.img /tmp/ext4 || fail "cannot mount the ext4 image"
trap 'umount /tmp/ext4 2>/dev/null; _lib_exit' EXIT

"$REGPROBE" --size 4M --expect EFAULT /tmp/ext4/data || fail "reg_mr on ext4 did not fail with EFAULT"
"$REGPROBE" --read-only --expect ok /tmp/ext4/data || fail "read-only reg_mr on ext4 failed"
"$REGPROBE" --memfd --size 4M --expect ok || fail "reg_mr on a memfd failed"
"$REGPROBE" --size 4M --expect ok /dev/shm/data || fail "reg_mr on a tmpfs file failed"
"$REGPROBE" --anon --size 4M --expect ok || fail "reg_mr on anonymous memory failed"

# rdma_target on the ext4 file: the registration fails when a client connects, and says so.
bg /tmp/target.log "$TARGET" --size 4M /tmp/ext4/data
target=$BG_PID
wait_for_line /tmp/target.log 'listening on' || fail "rdma_target did not start"
"$WRITER" --size 1M --wait 0 "$RXE_ADDR" && fail "rdma_writer succeeded against an ext4 mapping"
wait "$target" && fail "rdma_target succeeded on an ext4 mapping"
cat /tmp/target.log
grep -q 'ibv_reg_mr failed: Bad address' /tmp/target.log || fail "rdma_target did not report EFAULT"
log "PASS"
