# Leases with a real memory region (Soft-RoCE): rdma_target --lease takes an rdmafs
# lease on its file before ibv_reg_mr; a peer writes the region and keeps the connection
# (the registration) up. A shrinking truncate from another process breaks the lease: the
# target deregisters, unmaps and releases, the truncate waits for that and then
# succeeds; the bytes before the truncate point are intact. Then the same for a hole
# punch (fallocate -p).
. "$RDMAFS_LIB"

rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 128M
rdmafs_up $S $M -o flush_interval=0,flush_on_close=no,lease_break_time=30,lease_expire=deny
CTL=$RDMAFS_BUILD/tools/rdmafsctl
head -c 16M /dev/urandom >/tmp/src.dat

# leased_region NAME: rdma_target --lease on $M/NAME, rdma_writer has written /tmp/src.dat
# into it and holds the connection. Sets target, writer.
leased_region() {
	bg /tmp/target.$1.log "$TARGET" --lease --size 16M $M/$1
	target=$BG_PID
	wait_for_line /tmp/target.$1.log 'listening on' || fail "rdma_target did not start"
	grep -q "^lease held on $M/$1" /tmp/target.$1.log || fail "rdma_target holds no lease"
	bg /tmp/writer.$1.log "$WRITER" --file /tmp/src.dat --hold 120 "$RXE_ADDR"
	writer=$BG_PID
	wait_for_line /tmp/writer.$1.log '^result ' 60 || fail "rdma_writer did not finish writing"
	[ "$(result_field /tmp/writer.$1.log match)" = 1 ] || fail "rdma_writer: checksum mismatch"
	kill -0 $writer 2>/dev/null || fail "rdma_writer did not hold the connection"
	"$CTL" lease list $M/$1 >/tmp/leases.log || fail "rdmafsctl lease list failed"
	cat /tmp/leases.log
	grep -q "^$target .*held" /tmp/leases.log || fail "the target's lease is not listed as held"
}

# released NAME: the target let go (exit 0, its log says so), the writer saw it go.
released() {
	grep -q '^lease broken' /tmp/target.$1.log || fail "rdma_target saw no lease break"
	wait $target || { cat /tmp/target.$1.log; fail "rdma_target exited $?"; }
	cat /tmp/target.$1.log
	grep -q '^lease released' /tmp/target.$1.log || fail "rdma_target did not release"
	wait $writer || { cat /tmp/writer.$1.log; fail "rdma_writer exited $?"; }
	grep -q '^target disconnected' /tmp/writer.$1.log ||
		fail "rdma_writer did not see the target disconnect"
	"$CTL" lease list $M/$1 | grep -q held && fail "a lease is still listed after the release"
	return 0
}

log "truncate to 4 MiB of a file registered with a lease"
leased_region trunc.dat
t0=$(cut -d' ' -f1 /proc/uptime)
truncate -s 4M $M/trunc.dat || fail "truncate failed (the lease was not released in time?)"
t1=$(cut -d' ' -f1 /proc/uptime)
log "truncate returned after $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }') s"
released trunc.dat
grep -q 'lease break ino=.* for truncate: released after' "$DAEMON_LOG" ||
	{ cat "$DAEMON_LOG"; fail "the daemon did not wait for the release"; }
grep 'lease break ino=' "$DAEMON_LOG"
[ "$(stat -c %s $M/trunc.dat)" = $((4 << 20)) ] || fail "size after truncate $(stat -c %s $M/trunc.dat)"
head -c 4M /tmp/src.dat >/tmp/src4.dat
cmp /tmp/src4.dat $M/trunc.dat || fail "the bytes before the truncate point changed"

log "hole punch 4 MiB at 8 MiB of a file registered with a lease"
leased_region punch.dat
fallocate -p -o 8M -l 4M $M/punch.dat || fail "fallocate punch failed"
released punch.dat
grep -q 'lease break ino=.* for punch hole: released after' "$DAEMON_LOG" ||
	fail "the daemon did not wait for the release before punching"
cp /tmp/src.dat /tmp/punched.dat
dd if=/dev/zero of=/tmp/punched.dat bs=1M seek=8 count=4 conv=notrunc status=none
cmp /tmp/punched.dat $M/punch.dat || fail "after the punch: not the source with a 4 MiB hole"

rdmafs_down $M || fail "rdmafs exited $?"
cmp /tmp/src4.dat $S/trunc.dat || fail "backing of the truncated file differs"
cmp /tmp/punched.dat $S/punch.dat || fail "backing of the punched file differs"
log "backing files: the first 4 MiB, and the source with the hole"
log "PASS"
