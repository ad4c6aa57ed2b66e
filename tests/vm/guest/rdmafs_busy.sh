# The rdmafs daemon under load from real RDMA (Soft-RoCE), backing on ext4:
# - a registered region under continuous RDMA writes (every pass other data) while the
#   periodic flush (flush_interval=1) commits it again and again; after the writes stop
#   and a final flush (rdmafsctl flush, the region still registered), backing equals
#   memory and the last pass;
# - perftest's ib_write_bw with its buffer an mmap of a file on rdmafs (--mmap).
. "$RDMAFS_LIB"

rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 192M
rdmafs_up $S $M -o flush_interval=1,flush_on_close=no,log_level=debug
CTL=$RDMAFS_BUILD/tools/rdmafsctl

log "continuous RDMA writes (32 MiB region, every pass other data) while flushes run"
bg /tmp/target.log "$TARGET" --size 32M --no-fsync --clients 0 $M/busy.dat
target=$BG_PID
wait_for_line /tmp/target.log 'listening on' || fail "rdma_target did not start"
c0=$(commits_logged)
"$WRITER" --size 32M --seed 11 --vary --duration 8 "$RXE_ADDR" >/tmp/writer.log 2>&1 ||
	{ cat /tmp/writer.log /tmp/target.log; fail "rdma_writer failed"; }
cat /tmp/writer.log
c1=$(commits_logged)
passes=$(result_field /tmp/writer.log passes)
log "$passes passes, $((c1 - c0)) commits by the periodic flush during the writes"
[ "$passes" -ge 2 ] || fail "only $passes pass: the region did not keep changing"
[ $((c1 - c0)) -ge 2 ] || fail "only $((c1 - c0)) commits during the writes: no race was tested"
kill -0 "$target" 2>/dev/null || fail "rdma_target exited"
"$CTL" flush $M/busy.dat || fail "rdmafsctl flush failed"
cmp $S/busy.dat $M/busy.dat || fail "after the writes and a final flush, backing != memory"
want=$(result_field /tmp/writer.log xxh3)
got=$(xxh3 $S/busy.dat)
[ "$got" = "$want" ] || fail "backing xxh3 $got, the writer's last pass $want"
log "after rdmafsctl flush (region still registered): backing = memory = last pass ($got)"
kill "$target"
wait "$target"

log "ib_write_bw, the server's buffer an mmap of a file on rdmafs (--mmap)"
truncate -s 64M $M/perftest.dat
bg /tmp/bw_server.log ib_write_bw -d "$RXE_DEV" -x "$RXE_GID_INDEX" -F -s 65536 -D 3 \
	--mmap=$M/perftest.dat
srv=$BG_PID
retry 30 timeout 90 ib_write_bw -d "$RXE_DEV" -x "$RXE_GID_INDEX" -F -s 65536 -D 3 \
	"$RXE_ADDR" >/tmp/bw_client.log 2>&1 &
cli=$!
# While it runs: the server's buffer is the rdmafs file.
n=300
until grep -q " $M/perftest.dat\$" /proc/$srv/maps 2>/dev/null; do
	[ $n -gt 0 ] || { cat /tmp/bw_server.log; fail "ib_write_bw server never mapped $M/perftest.dat"; }
	sleep 0.1
	n=$((n - 1))
done
grep " $M/perftest.dat\$" /proc/$srv/maps | head -n1
wait $cli || { cat /tmp/bw_client.log /tmp/bw_server.log; fail "ib_write_bw client failed"; }
wait $srv || { cat /tmp/bw_server.log; fail "ib_write_bw server (on rdmafs) failed"; }
cat /tmp/bw_server.log /tmp/bw_client.log
# The result row follows the header "#bytes #iterations BW peak[MB/sec] BW average...".
bw=$(awk '/BW average/ { getline; print $4; exit }' /tmp/bw_client.log)
awk -v b="$bw" 'BEGIN { exit !(b + 0 > 0) }' || fail "ib_write_bw: no bandwidth measured"
log "ib_write_bw into an rdmafs mapping: $bw MB/sec average"
rdmafs_down $M || fail "rdmafs exited $?"
log "PASS"
