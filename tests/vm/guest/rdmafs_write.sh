# The rdmafs daemon under real RDMA (Soft-RoCE), backing on ext4 (a loop device):
# - ibv_reg_mr of a mapped rdmafs file succeeds; of its backing ext4 file, EFAULT;
# - a peer RDMA-writes 64 MiB of random data into the mapped file, the target fsyncs
#   (its COMMIT): the backing file equals the source before the unmount and after it;
# - the same with no fsync and no close (flush_interval=1): the periodic flush alone
#   brings the backing file to the source while the region stays registered.
. "$RDMAFS_LIB"

rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 320M
rdmafs_up $S $M -o flush_interval=0,flush_on_close=no

log "ibv_reg_mr: the rdmafs mapping is accepted, its backing ext4 file refused"
"$REGPROBE" --size 4M --expect ok $M/probe || fail "reg_mr of a mapped rdmafs file failed"
[ "$(stat -c %s $S/probe)" = $((4 << 20)) ] || fail "the backing file of $M/probe is not 4 MiB"
"$REGPROBE" --expect EFAULT $S/probe || fail "reg_mr of the backing ext4 file was not EFAULT"

log "64 MiB of random data, RDMA WRITE into the mapped rdmafs file, commit = fsync"
head -c 64M /dev/urandom >/tmp/src1.dat
want=$(xxh3 /tmp/src1.dat)
bg /tmp/target1.log "$TARGET" --size 64M $M/fsync.dat
target=$BG_PID
wait_for_line /tmp/target1.log 'listening on' || fail "rdma_target did not start"
"$WRITER" --file /tmp/src1.dat "$RXE_ADDR" >/tmp/writer1.log 2>&1 ||
	{ cat /tmp/writer1.log /tmp/target1.log; fail "rdma_writer failed"; }
cat /tmp/writer1.log
[ "$(result_field /tmp/writer1.log xxh3)" = "$want" ] || fail "rdma_writer wrote other data"
wait "$target" || { cat /tmp/target1.log; fail "rdma_target failed"; }
cat /tmp/target1.log
grep -q 'status=0 ' /tmp/target1.log || fail "the target's fsync failed"
# flush_interval=0, flush_on_close=no: only the fsync can have put it there.
cmp /tmp/src1.dat $S/fsync.dat || fail "after the fsync, the backing file differs from the source"
log "after fsync, before unmount: backing xxh3 $(xxh3 $S/fsync.dat) = source"
rdmafs_down $M || fail "rdmafs exited $?"
got=$(xxh3 $S/fsync.dat)
[ "$got" = "$want" ] || fail "after unmount: backing xxh3 $got, source $want"
log "after unmount: backing xxh3 $got = source"

log "64 MiB, no fsync, no close: the periodic flush (flush_interval=1) commits it"
rdmafs_up $S $M -o flush_interval=1,flush_on_close=no
head -c 64M /dev/urandom >/tmp/src2.dat
want=$(xxh3 /tmp/src2.dat)
# Serves until killed: the file stays open, mapped and registered during the check.
bg /tmp/target2.log "$TARGET" --size 64M --no-fsync --clients 0 $M/periodic.dat
target=$BG_PID
wait_for_line /tmp/target2.log 'listening on' || fail "rdma_target did not start"
"$WRITER" --file /tmp/src2.dat "$RXE_ADDR" >/tmp/writer2.log 2>&1 ||
	{ cat /tmp/writer2.log /tmp/target2.log; fail "rdma_writer failed"; }
cat /tmp/writer2.log
t0=$(cut -d' ' -f1 /proc/uptime)
n=300
until cmp -s /tmp/src2.dat $S/periodic.dat; do
	[ $n -gt 0 ] || fail "backing file not equal to the source 30 s after the writes (flush_interval=1)"
	sleep 0.1
	n=$((n - 1))
done
t1=$(cut -d' ' -f1 /proc/uptime)
kill -0 "$target" 2>/dev/null || fail "rdma_target exited: the commit may come from its close"
log "backing equals the source $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s after the writes, target still registered"
kill "$target"
wait "$target"
cat /tmp/target2.log
rdmafs_down $M || fail "rdmafs exited $?"
got=$(xxh3 $S/periodic.dat)
[ "$got" = "$want" ] || fail "after unmount: backing xxh3 $got, source $want"
log "after unmount: backing xxh3 $got = source"
log "PASS"
