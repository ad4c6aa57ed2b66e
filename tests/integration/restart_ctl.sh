#!/bin/bash
# rdmafsctl through daemon deaths (issue 15, doc/restart.md 3.5): loops of `rdmafsctl
# stat` (mount and file), `rdmafsctl flush` (a file being written, and --all) and
# `rdmafsctl lease list` run while the serving daemon is killed with SIGKILL
# $RESTART_KILLS times (default 10). A request the dying daemon had accepted loses its
# connection without a reply; librdmafs asks again on a new connection (the listener is
# in the supervisor's store: the connect waits in its backlog for the next generation).
# Pass: no rdmafsctl call fails, every loop made progress, restarts = kills.
# Skips (77) without passthrough or FUSE_NOTIFY_RESEND.
. "$(dirname "$0")/lib.sh"
require_mount_env
KILLS=${RESTART_KILLS:-10}
S=$T/src M=$T/mnt
mkdir -p "$S"
random_file "$S/f" 4M
mount_rdmafs "$S" "$M" -o flush_interval=60
require_passthrough
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"
restarts() { stat_field "$M" restarts; }

STOP=$T/stop
loop() {	# loop NAME CMD...: run CMD until $STOP exists; one line per failure
	local name=$1 n=0
	shift
	while [ ! -e "$STOP" ] && [ -d "$T" ]; do
		"$@" >/dev/null 2>>"$T/$name.err" || echo "$name failed" >>"$T/$name.fail"
		n=$((n + 1))
	done
	echo "$n" >"$T/$name.ops"
}
# The file flushed keeps changing: each flush has something to commit.
writer() {
	local i=0
	while [ ! -e "$STOP" ] && [ -d "$T" ]; do
		dd if=/dev/urandom of="$M/f" bs=64K count=4 seek=$((i % 64)) conv=notrunc \
			status=none 2>>"$T/writer.err" || echo "writer failed" >>"$T/writer.fail"
		i=$((i + 1))
	done
}
declare -a jobs=()
writer & jobs+=($!) _pids+=($!)
loop stat_mount "$RDMAFSCTL" stat --json "$M" & jobs+=($!) _pids+=($!)
loop stat_file "$RDMAFSCTL" stat "$M/f" & jobs+=($!) _pids+=($!)
loop flush "$RDMAFSCTL" flush "$M/f" & jobs+=($!) _pids+=($!)
loop flush_all "$RDMAFSCTL" flush --all --quiet "$M" & jobs+=($!) _pids+=($!)
loop lease_list "$RDMAFSCTL" lease list "$M" & jobs+=($!) _pids+=($!)
stop_loops() {
	touch "$STOP"
	local j
	for j in "${jobs[@]}"; do wait "$j" || true; done
}

sleep 0.5
for i in $(seq "$KILLS"); do
	pid=$(serving_pid "$SUPERVISOR_PID")
	[ "$pid" != "$SUPERVISOR_PID" ] || { stop_loops; fail "kill $i: no daemon generation serves"; }
	# a random moment within 0-200 ms
	sleep "0.$(printf '%03d' $((RANDOM % 200)))"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
	wait_for 60 test "$(restarts 2>/dev/null)" = "$i" ||
		{ stop_loops; fail "kill $i: restarts is $(restarts), not $i"; }
done
sleep 0.3
stop_loops

bad=0
for n in writer stat_mount stat_file flush flush_all lease_list; do
	if [ -s "$T/$n.fail" ]; then
		echo "$n: $(wc -l <"$T/$n.fail") failure(s): $(sort "$T/$n.err" | uniq -c | head -5)" >&2
		bad=1
	fi
done
[ $bad = 0 ] || fail "rdmafsctl calls failed across the kills"
summary=""
for n in stat_mount stat_file flush flush_all lease_list; do
	ops=$(cat "$T/$n.ops")
	[ "$ops" -gt "$KILLS" ] || fail "$n: only $ops calls in $KILLS kills"
	summary+=" $n=$ops"
done
[ "$(restarts)" = "$KILLS" ] || fail "restarts $(restarts), not $KILLS"
note "$KILLS kills, no rdmafsctl call failed:$summary"
"$RDMAFSCTL" flush "$M/f" || fail "final flush"
cmp -s "$M/f" "$S/f" || fail "backing file differs from the mount after the final flush"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
