# RDMA WRITE into a mapped file end to end with the peer tools: rdma_target maps a tmpfs
# file, rdma_writer streams 64 MiB of random data into it (plain writes, then writes with
# immediate, then from a file), each time the target fsyncs and the checksums must match.
. "$RDMAFS_LIB"

rxe_up
dst=/dev/shm/target.dat
bg /tmp/target.log "$TARGET" --size 64M --clients 3 "$dst"
target=$BG_PID
wait_for_line /tmp/target.log 'listening on' || fail "rdma_target did not start"

log "64 MiB generated, RDMA WRITE"
"$WRITER" --size 64M --seed 42 "$RXE_ADDR" || fail "rdma_writer (generated data) failed"

log "64 MiB generated, RDMA WRITE_WITH_IMM naming the ranges"
"$WRITER" --size 64M --seed 7 --imm --chunk 256K --depth 16 "$RXE_ADDR" ||
	fail "rdma_writer --imm failed"

log "64 MiB from a file"
head -c 64M /dev/urandom >/tmp/src.dat
"$WRITER" --file /tmp/src.dat "$RXE_ADDR" | tee /tmp/writer.log
[ "$(result_field /tmp/writer.log match)" = 1 ] || fail "rdma_writer --file failed"

wait "$target" || { cat /tmp/target.log; fail "rdma_target failed"; }
cat /tmp/target.log
cmp /tmp/src.dat "$dst" || fail "the target file differs from the source"
# The tools' XXH3 is the reference one.
want=$(result_field /tmp/writer.log xxh3)
got=$(xxh3 "$dst")
[ "$got" = "$want" ] || fail "xxhsum of the target file $got, rdma_writer said $want"
log "target file xxh3 $got = rdma_writer's"
log "PASS"
