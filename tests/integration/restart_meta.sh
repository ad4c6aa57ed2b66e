#!/bin/bash
# Daemon deaths survived with metadata traffic in flight (issue 15, step 3 of
# doc/restart.md): a real rdmafs mount, the serving daemon killed with SIGKILL 20 times at
# random moments while background loops stat files, open and read a file, list a
# directory, create files under fresh names and fsync a read-only open of an unstaged
# file. The supervisor starts the next generation, which adopts /dev/fuse, resumes node
# ids and handles and has the kernel resend what the dead one had read.
# Pass: no ENOTCONN, no failed idempotent operation, every listing complete, an open kept
# across all deaths still reads, rdmafsctl stat --json shows restarts=20. Creates and
# mkdir/rmdir are not idempotent (step 5, the journal, is not done): their failures are
# counted and reported, not asserted. Prints the blackout (death seen by the supervisor to the first
# answer) median and worst. Skips (77) without passthrough or FUSE_NOTIFY_RESEND.
. "$(dirname "$0")/lib.sh"
require_mount_env
KILLS=${RESTART_KILLS:-20}
S=$T/src M=$T/mnt
mkdir -p "$S/d" "$S/new"
for i in $(seq 200); do echo "$i" >"$S/d/f$i"; done
random_file "$S/ro" 1M
cp "$S/ro" "$T/ro.ref"
mount_rdmafs "$S" "$M" -o flush_interval=1
require_passthrough
grep -q "kernel cannot resend" "$DAEMON_LOG" && skip "kernel without FUSE_NOTIFY_RESEND (Linux < 6.9)"
stat_json() { "$RDMAFSCTL" stat --json "$M" 2>/dev/null; }
restarts() { stat_json | sed -n 's/.*"restarts":\([0-9]*\).*/\1/p'; }
[ "$(restarts)" = 0 ] || fail "restarts before any death: $(restarts)"

# An open kept across every death (its handle must mean the same file each time).
exec 7<"$M/ro"

# Background loops: each appends one line per failure to its own file, counts its ops.
STOP=$T/stop
loop() {	# loop NAME CMD...: run CMD until $STOP exists
	local name=$1 n=0
	shift
	while [ ! -e "$STOP" ]; do
		"$@" 2>>"$T/$name.err" || echo "$name failed" >>"$T/$name.fail"
		n=$((n + 1))
	done
	echo "$n" >"$T/$name.ops"
}
op_stat() { stat -c %s "$M/d/f$((RANDOM % 200 + 1))" >/dev/null; }
op_read() { cmp -s "$M/ro" "$T/ro.ref" || { echo "read: content differs" >&2; return 1; }; }
op_list() {
	local n
	n=$(ls -f "$M/d" | wc -l) || return 1
	[ "$n" = 202 ] || { echo "listing: $n entries of 202" >&2; return 1; }
}
op_create() {	# paced: each staged file costs every stat --json a scan
	local f=$M/new/c$BASHPID.$RANDOM$RANDOM
	echo x >"$f" || return 1
	sleep 0.1
}
op_fsync() { [ "$("$HELPER" fsync-ro "$M/ro")" = ok ]; }
op_mkdir() {	# mkdir + rmdir of a fresh name: a resend of one the dead daemon did is
		# answered from the journal (doc/restart.md step 5), never EEXIST/ENOENT
	local d=$M/new/d$BASHPID.$RANDOM$RANDOM
	mkdir "$d" && rmdir "$d"
	sleep 0.1
}
declare -a loops=()
for name in stat read list create fsync mkdir; do
	loop "$name" "op_$name" &
	loops+=($!)
	_pids+=($!)
done

# Kill the serving generation at random moments; wait until the next one serves.
declare -a blackout=()
for k in $(seq "$KILLS"); do
	sleep "0.$((RANDOM % 25 + 5))"
	gen=$(serving_pid "$SUPERVISOR_PID")
	[ "$gen" != "$SUPERVISOR_PID" ] || fail "kill $k: no daemon generation under the supervisor"
	kill -9 "$gen"
	# A lookup of a new name is never cached: it returns once generation $k serves.
	served() {
		[ "$(serving_pid "$SUPERVISOR_PID")" != "$gen" ] &&
			{ stat "$M/absent.$k.$RANDOM" >/dev/null 2>&1 || [ $? = 1 ]; }
	}
	wait_for 30 served || fail "kill $k: generation $k did not serve within 30 s"
	r=$(restarts)
	[ "$r" = "$k" ] || fail "kill $k: restarts=$r"
	b=$(stat_json | sed -n 's/.*"last_blackout_ms":\([0-9.]*\).*/\1/p')
	blackout+=("$b")
done
sleep 0.5
: >"$STOP"
for p in "${loops[@]}"; do wait "$p" || true; done

# The open across all deaths still reads the same bytes; listings complete at the end.
cmp -s /dev/fd/7 "$T/ro.ref" || fail "the open kept across the deaths reads other bytes"
exec 7<&-
op_list || fail "listing incomplete after the deaths"
[ "$(restarts)" = "$KILLS" ] || fail "restarts=$(restarts), want $KILLS"
gen=$(stat_json | sed -n 's/.*"generation":\([0-9]*\).*/\1/p')
[ "$gen" = "$KILLS" ] || fail "generation=$gen, want $KILLS"

enotconn=$(cat "$T"/*.err 2>/dev/null | grep -c "Transport endpoint is not connected" || true)
for name in stat read list fsync create mkdir; do
	ops=$(cat "$T/$name.ops" 2>/dev/null || echo 0)
	nf=0
	[ ! -f "$T/$name.fail" ] || nf=$(wc -l <"$T/$name.fail")
	note "$name: $ops ops, $nf failed$( [ "$nf" = 0 ] || echo ": $(sort "$T/$name.err" | uniq -c | head -3 | tr '\n' ';')")"
done
created=$(ls "$M/new" | wc -l)
note "create: $created files made"
sorted=$(printf '%s\n' "${blackout[@]}" | sort -g)
median=$(echo "$sorted" | sed -n "$(( (KILLS + 1) / 2 ))p")
worst=$(echo "$sorted" | tail -n1)
best=${sorted%%$'\n'*}	# the first line (head could leave echo a SIGPIPE: pipefail)
note "kills=$KILLS blackout_ms median=$(printf %.1f "$median") worst=$(printf %.1f "$worst") best=$(printf %.1f "$best")"
[ "$enotconn" = 0 ] || fail "$enotconn operations failed with ENOTCONN"
for name in stat read list fsync mkdir; do
	[ ! -s "$T/$name.fail" ] || fail "$name failed $(wc -l <"$T/$name.fail") times: $(sort "$T/$name.err" | uniq -c | head -5)"
done
unmount_rdmafs "$M" || fail "exit status after the unmount: $?"
check_daemon_log
