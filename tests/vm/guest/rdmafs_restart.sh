# Issue 15 with a real memory registration (doc/restart.md step 8): rdma_target maps a
# file on rdmafs (restart=on: a supervisor keeps the mount and the staging) and registers
# it (ibv_reg_mr); rdma_writer keeps writing into it over Soft-RoCE (every pass other
# data) while the serving daemon generation is killed with SIGKILL at random moments,
# RESTART_KILLS times (default 10: under emulation a restart takes seconds, see the
# blackout it prints; the host test restart_staged does 20). The peer never sees an
# error (rdma_writer exits 0,
# the target keeps its registration), each next generation answers an open, and after a
# final `rdmafsctl flush` the backing file equals memory and the writer's last pass.
. "$RDMAFS_LIB"

KILLS=${RESTART_KILLS:-10}
rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 128M
rdmafs_up $S $M -o restart=on,flush_interval=1,flush_on_close=no
CTL=$RDMAFS_BUILD/tools/rdmafsctl
SUP=$DAEMON_PID
gen() { pgrep -P "$SUP" -n; }
[ -n "$(gen)" ] || fail "restart=on: no daemon generation under the supervisor"
echo probe >$M/probe

bg /tmp/target.log "$TARGET" --size 32M --no-fsync --clients 0 $M/busy.dat
target=$BG_PID
wait_for_line /tmp/target.log 'listening on' || fail "rdma_target did not start"
# Long enough for the kills (each waits for the next generation to answer: seconds here).
"$WRITER" --size 32M --seed 11 --vary --duration $((KILLS * 15 + 20)) "$RXE_ADDR" \
	>/tmp/writer.log 2>&1 &
writer=$!
sleep 2
log "killing the serving daemon $KILLS times under RDMA writes"
i=0 worst=0
while [ $i -lt "$KILLS" ] && kill -0 "$writer" 2>/dev/null; do
	i=$((i + 1))
	sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 9 + 1))"
	pid=$(gen)
	[ -n "$pid" ] || fail "kill $i: no daemon generation serves"
	t0=$(cut -d' ' -f1 /proc/uptime)
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
	head -c 5 $M/probe >/dev/null || fail "kill $i: open after the death failed"
	t1=$(cut -d' ' -f1 /proc/uptime)
	ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -gt "$worst" ] && worst=$ms
	echo "$ms" >>/tmp/blackouts
	if ! kill -0 "$writer" 2>/dev/null && ! grep -q '^result ' /tmp/writer.log; then
		cat /tmp/writer.log
		fail "kill $i: rdma_writer exited without its result"
	fi
	kill -0 "$target" 2>/dev/null || { cat /tmp/target.log; fail "kill $i: rdma_target exited"; }
done
[ $i = "$KILLS" ] || fail "rdma_writer ended after $i kills: its --duration is too short here"
median=$(sort -n /tmp/blackouts | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
log "$KILLS kills: blackout (kill to an open answered) median ${median} ms, worst ${worst} ms"
wait "$writer" || { cat /tmp/writer.log /tmp/target.log; fail "rdma_writer failed: the peer saw an error"; }
cat /tmp/writer.log
kill -0 "$target" 2>/dev/null || fail "rdma_target exited"
"$CTL" flush $M/busy.dat || fail "rdmafsctl flush failed"
cmp $S/busy.dat $M/busy.dat || fail "after the kills and a final flush, backing != memory"
want=$(result_field /tmp/writer.log xxh3)
got=$(xxh3 $S/busy.dat)
[ "$got" = "$want" ] || fail "backing xxh3 $got, the writer's last pass $want"
passes=$(result_field /tmp/writer.log passes)
log "$passes passes through $KILLS kills: backing = memory = last pass ($got), 32 MiB"
kill "$target"
wait "$target" || true
rdmafs_down $M || fail "rdmafs exited $?"
log "PASS"
