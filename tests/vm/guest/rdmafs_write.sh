# The rdmafs daemon under real RDMA (Soft-RoCE), backing on ext4 (a loop device):
# - ibv_reg_mr of a mapped rdmafs file succeeds; of its backing ext4 file, EFAULT;
# - a peer RDMA-writes 64 MiB of (pseudo-)random data into the mapped file, the target
#   fsyncs (its COMMIT): the backing file's XXH3 equals the source's before the unmount
#   (nothing else commits: flush_interval=0, flush_on_close=no) and after it;
# - the same with no fsync and no close (flush_interval=1): the periodic flush alone
#   brings the backing file to the source while the region stays registered.
. "$RDMAFS_LIB"

rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 192M
rdmafs_up $S $M -o flush_interval=0,flush_on_close=no

log "ibv_reg_mr: the rdmafs mapping is accepted, its backing ext4 file refused"
"$REGPROBE" --size 4M --expect ok $M/probe || fail "reg_mr of a mapped rdmafs file failed"
[ "$(stat -c %s $S/probe)" = $((4 << 20)) ] || fail "the backing file of $M/probe is not 4 MiB"
"$REGPROBE" --expect EFAULT $S/probe || fail "reg_mr of the backing ext4 file was not EFAULT"

# write_64m NAME SEED [TARGET OPTIONS]: rdma_target on $M/NAME, rdma_writer writes 64 MiB
# generated from SEED and checks the target's XXH3 of its memory; sets want (the
# source's XXH3) and target (its pid: with --clients 0 it is still serving).
write_64m() {
	_name=$1 _seed=$2
	shift 2
	bg /tmp/target.$_name.log "$TARGET" --size 64M "$@" $M/$_name
	target=$BG_PID
	wait_for_line /tmp/target.$_name.log 'listening on' || fail "rdma_target did not start"
	"$WRITER" --size 64M --seed $_seed "$RXE_ADDR" >/tmp/writer.$_name.log 2>&1 ||
		{ cat /tmp/writer.$_name.log /tmp/target.$_name.log; fail "rdma_writer failed"; }
	cat /tmp/writer.$_name.log
	want=$(result_field /tmp/writer.$_name.log xxh3)
	[ -n "$want" ] || fail "no checksum from rdma_writer"
}

log "64 MiB RDMA WRITE into the mapped rdmafs file, commit = fsync"
write_64m fsync.dat 101
wait "$target" || { cat /tmp/target.fsync.dat.log; fail "rdma_target failed"; }
cat /tmp/target.fsync.dat.log
grep -q 'status=0 ' /tmp/target.fsync.dat.log || fail "the target's fsync failed"
got=$(xxh3 $S/fsync.dat)
[ "$got" = "$want" ] || fail "after the fsync: backing xxh3 $got, source $want"
log "after fsync, before unmount: backing xxh3 $got = source"
rdmafs_down $M || fail "rdmafs exited $?"
got=$(xxh3 $S/fsync.dat)
[ "$got" = "$want" ] || fail "after unmount: backing xxh3 $got, source $want"
log "after unmount: backing xxh3 $got = source"

log "64 MiB, no fsync, no close: the periodic flush (flush_interval=1) commits it"
rdmafs_up $S $M -o flush_interval=1,flush_on_close=no
# Serves until killed: the file stays open, mapped and registered during the check.
write_64m periodic.dat 202 --no-fsync --clients 0
t0=$(cut -d' ' -f1 /proc/uptime)
n=30
until [ "$(xxh3 $S/periodic.dat)" = "$want" ]; do
	[ $n -gt 0 ] || fail "backing file not equal to the source 30 s after the writes (flush_interval=1)"
	sleep 1
	n=$((n - 1))
done
t1=$(cut -d' ' -f1 /proc/uptime)
kill -0 "$target" 2>/dev/null || fail "rdma_target exited: the commit may come from its close"
log "backing xxh3 = source $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s after the writes, target still registered"
kill "$target"
wait "$target"
cat /tmp/target.periodic.dat.log
rdmafs_down $M || fail "rdmafs exited $?"
got=$(xxh3 $S/periodic.dat)
[ "$got" = "$want" ] || fail "after unmount: backing xxh3 $got, source $want"
log "after unmount: backing xxh3 $got = source"
log "PASS"
