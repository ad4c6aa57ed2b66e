#!/bin/bash
# Issue 15's host test: no staged byte is lost and pins keep working while the daemon is
# killed. A pinned writer (a MAP_SHARED mapping of a file on the mount, pinned long-term
# with io_uring fixed buffers as ibv_reg_mr pins it; a peer writes into it through the
# kernel) and a write(2) writer (sequence-numbered records, an fsync every 64) keep
# writing while the serving daemon generation is killed with SIGKILL at random moments,
# 20 times. Each time the supervisor starts the next generation, which resumes the staged
# files. Neither writer may see an error (no ENOTCONN, no failed fsync), a prober that
# lists the mount during the kills neither; afterwards the writers' final fsync and
# `rdmafsctl flush` succeed and the backing files hold exactly what the writers wrote
# last (the pinned writer's checksum of its last round; the write(2) writer's content
# follows from its last record). Prints kills, bytes verified and the blackout (kill to
# an open answered by the next generation): median and worst.
# RESTART_MODE=upgrade (test restart_upgrade): instead of a kill, each time a new binary
# (a copy that differs in its bytes) replaces the one the mount was started from and
# `rdmafsctl restart` makes the supervisor start the next generation from it; the
# serving generation must run the new file. Then a binary that cannot start replaces it:
# `rdmafsctl restart` fails and the supervisor goes back to the previous binary; then a
# binary whose FUSE INIT reply differs (test knob RDMAFS_TEST_INCOMPAT_MARK): it exits
# "incompatible" (77) before serving, the same fallback, and `stat --json` shows
# previous_generation and this build's version.
. "$(dirname "$0")/lib.sh"
require_mount_env
SEQWRITE=$RDMAFS_BUILD/tests/helpers/rdmafs-seqwrite
KILLS=${RESTART_KILLS:-20}
MODE=${RESTART_MODE:-kill}
case $MODE in kill | upgrade) ;; *) fail "RESTART_MODE=$MODE: kill or upgrade" ;; esac
if [ "$MODE" = upgrade ]; then
	# The mount runs a copy, so that the test can replace it as a package upgrade would.
	mkdir "$T/bin"
	cp "$RDMAFS" "$T/bin/rdmafs"
	ORIG=$RDMAFS RDMAFS=$T/bin/rdmafs
	# Test knob: a copy that ends with this string answers FUSE_INIT otherwise.
	export RDMAFS_TEST_INCOMPAT_MARK=rdmafs-test-incompatible-init
fi
backing_dir "$T/src" 256M ext4
# budget_enforce=deferred: write(2) passes through to staging as the pinned writes do.
# With strict (the default) the daemon serves writes, and a 64 KiB WRITE being copied
# into a daemon as it dies can fail with EIO (doc/restart.md, F11 and section 5): about
# one kill in a hundred here. RESTART_BUDGET_ENFORCE=strict runs that case.
mount_rdmafs "$T/src" "$T/mnt" -o restart=on,flush_interval=1,budget_enforce=${RESTART_BUDGET_ENFORCE:-deferred}
require_passthrough
M=$T/mnt S=$T/src
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"
echo probe >"$M/probe"

# The writers: 8 MiB pinned, 16 MiB by write(2) (256 records of 64 KiB, rewritten in turn).
"$PINWRITE" --size 8M --seed 11 --until-signal "$M/pinned" >"$T/pin.out" 2>"$T/pin.err" &
PIN=$!
_pids+=("$PIN")
"$SEQWRITE" --blocks 256 --bs 65536 --fsync-every 64 "$M/seq" >"$T/seq.out" 2>"$T/seq.err" &
SEQ=$!
_pids+=("$SEQ")
ready() { grep -q '^ready' "$T/pin.out" && grep -q '^ready' "$T/seq.out"; }
wait_for 30 ready || fail "writers not ready: $(cat "$T/pin.err" "$T/seq.err")"

# A prober: listings and stats of the mount all through the kills.
touch "$T/probing"
(
	n=0
	while [ -e "$T/probing" ]; do
		ls -l "$M" >/dev/null 2>>"$T/prober.err" || echo "ls failed" >>"$T/prober.err"
		stat "$M/seq" "$M/pinned" >/dev/null 2>>"$T/prober.err" ||
			echo "stat failed" >>"$T/prober.err"
		n=$((n + 1))
		sleep 0.02
	done
	echo "$n" >"$T/probes"
) &
PROBER=$!
_pids+=("$PROBER")

alive() { kill -0 "$PIN" 2>/dev/null && kill -0 "$SEQ" 2>/dev/null; }
if [ "$MODE" = upgrade ]; then
	# An unprivileged user cannot restart the daemon (the supervisor runs as root).
	command -v setpriv >/dev/null || fail "setpriv missing (scripts/setup installs util-linux)"
	pid=$(serving_pid "$SUPERVISOR_PID")
	if setpriv --reuid=65534 --regid=65534 --clear-groups -- "$RDMAFSCTL" restart "$M" \
		>"$T/restart.out" 2>&1; then
		fail "user 65534 restarted the daemon: $(cat "$T/restart.out")"
	fi
	[ "$(serving_pid "$SUPERVISOR_PID")" = "$pid" ] && kill -0 "$pid" ||
		fail "user 65534's rdmafsctl restart changed the serving generation"
	note "user 65534: $(head -1 "$T/restart.out")"
fi
blackouts=() dmn=()
old=$DAEMON_PID
for i in $(seq "$KILLS"); do
	# 0.1 to 0.9 s into the writers' work: commits, fsyncs and pinned rounds under way
	sleep "0.$((RANDOM % 9 + 1))"
	alive || fail "a writer died before kill $i: $(cat "$T/pin.err" "$T/seq.err")"
	pid=$(serving_pid "$SUPERVISOR_PID")
	[ "$pid" != "$SUPERVISOR_PID" ] || fail "kill $i: no daemon generation serves"
	if [ "$MODE" = upgrade ]; then
		cp "$ORIG" "$T/bin/rdmafs.new"
		printf 'rdmafs upgrade %d\n' "$i" >>"$T/bin/rdmafs.new"	# other bytes, same code
		mv -f "$T/bin/rdmafs.new" "$T/bin/rdmafs"
		want_ino=$(stat -c %i "$T/bin/rdmafs")
		t0=$EPOCHREALTIME
		"$RDMAFSCTL" restart "$M" >"$T/restart.out" 2>&1 ||
			fail "upgrade $i: rdmafsctl restart: $(cat "$T/restart.out")"
		! kill -0 "$pid" 2>/dev/null || fail "upgrade $i: generation $pid still runs"
	else
		t0=$EPOCHREALTIME
		kill -9 "$pid"
	fi
	while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
	# An open is always a request: it waits for the next generation.
	head -c 5 "$M/probe" >"$T/probe.out" 2>"$T/probe.err" ||
		fail "kill $i: open after the death failed: $(cat "$T/probe.err")"
	t1=$EPOCHREALTIME
	[ "$(cat "$T/probe.out")" = probe ] || fail "kill $i: probe read back wrong"
	blackouts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
	# the daemon's own: death seen by the supervisor to its first answer
	dmn+=("$("$RDMAFSCTL" stat --json "$M" 2>/dev/null |
		sed -n 's/.*"last_blackout_ms": *\([0-9.]*\).*/\1/p' | head -1)")
	new=$(serving_pid "$SUPERVISOR_PID")
	[ "$new" != "$pid" ] && [ "$new" != "$SUPERVISOR_PID" ] ||
		fail "kill $i: no new daemon generation"
	if [ "$MODE" = upgrade ]; then
		[ "$(stat -L -c %i "/proc/$new/exe")" = "$want_ino" ] ||
			fail "upgrade $i: the new generation does not run the new binary"
	fi
	old=$new
done
if [ "$MODE" = upgrade ]; then
	# A binary that cannot start: the restart fails, the previous binary serves again.
	printf '#!/bin/sh\nexit 3\n' >"$T/bin/rdmafs.new"
	chmod +x "$T/bin/rdmafs.new"
	mv -f "$T/bin/rdmafs.new" "$T/bin/rdmafs"
	if "$RDMAFSCTL" restart "$M" >"$T/restart.out" 2>&1; then
		fail "rdmafsctl restart onto a broken binary succeeded: $(cat "$T/restart.out")"
	fi
	new=$(serving_pid "$SUPERVISOR_PID")
	[ "$new" != "$old" ] && [ "$new" != "$SUPERVISOR_PID" ] ||
		fail "after the failed upgrade: no new generation serves"
	[ "$(stat -L -c %i "/proc/$new/exe")" = "$want_ino" ] ||
		fail "after the failed upgrade: the serving generation does not run the previous binary"
	head -c 5 "$M/probe" >"$T/probe.out" || fail "after the failed upgrade: open failed"
	old=$new
	note "a broken binary: rdmafsctl restart said: $(head -1 "$T/restart.out")"
	KILLS=$((KILLS + 1))	# the fallback generation (the one that did not start never served)
	# (exit 2, not the script's 3: sh cannot open its script by the supervisor's
	# close-on-exec /proc/self/fd path; a start-up failure either way)
	case $(stat_field "$M" previous_generation) in
	"exit "[1-9]*) ;;
	*) fail "previous_generation $(stat_field "$M" previous_generation), want an exit status" ;;
	esac

	# A binary that would answer the kernel's INIT otherwise (max_write: the knob): the
	# new generation compares its synthetic INIT reply with the recorded one and exits
	# "incompatible" before serving; the previous binary serves again.
	want_ino=$(stat -L -c %i "/proc/$old/exe")
	cp "$ORIG" "$T/bin/rdmafs.new"
	printf '%s\n' "$RDMAFS_TEST_INCOMPAT_MARK" >>"$T/bin/rdmafs.new"
	mv -f "$T/bin/rdmafs.new" "$T/bin/rdmafs"
	if "$RDMAFSCTL" restart "$M" >"$T/restart.out" 2>&1; then
		fail "rdmafsctl restart onto an incompatible binary succeeded: $(cat "$T/restart.out")"
	fi
	grep -q "cannot serve this mount" "$T/restart.out" ||
		fail "rdmafsctl restart did not say why: $(cat "$T/restart.out")"
	new=$(serving_pid "$SUPERVISOR_PID")
	[ "$new" != "$old" ] && [ "$new" != "$SUPERVISOR_PID" ] ||
		fail "after the incompatible upgrade: no new generation serves"
	[ "$(stat -L -c %i "/proc/$new/exe")" = "$want_ino" ] ||
		fail "after the incompatible upgrade: the serving generation does not run the previous binary"
	[ "$(stat_field "$M" previous_generation)" = "incompatible (exit 77)" ] ||
		fail "previous_generation $(stat_field "$M" previous_generation), want incompatible"
	head -c 5 "$M/probe" >"$T/probe.out" || fail "after the incompatible upgrade: open failed"
	old=$new
	KILLS=$((KILLS + 1))
	note "an incompatible binary: rdmafsctl restart said: $(head -1 "$T/restart.out")"
	# The version the daemon reports is this build's (`rdmafs --version`).
	want_ver=$("$ORIG" --version | sed -n 's/^rdmafs \(.*\) (libfuse .*/\1/p')
	[ -n "$want_ver" ] && [ "$(stat_field "$M" version)" = "$want_ver" ] ||
		fail "stat --json version '$(stat_field "$M" version)', want '$want_ver'"
fi
DAEMON_PID=$old
alive || fail "a writer died during the kills: $(cat "$T/pin.err" "$T/seq.err")"

# Stop the writers: each finishes its record or round and fsyncs.
kill -USR1 "$PIN"
kill -TERM "$SEQ"
rc=0
wait "$PIN" || rc=$?
[ $rc = 0 ] || fail "pinned writer failed (exit $rc): $(cat "$T/pin.err")"
rc=0
wait "$SEQ" || rc=$?
[ $rc = 0 ] || fail "write(2) writer failed (exit $rc): $(cat "$T/seq.err")"
rm -f "$T/probing"
wait "$PROBER" || true
[ ! -s "$T/prober.err" ] || fail "the prober saw errors: $(sort "$T/prober.err" | uniq -c | head)"
"$RDMAFSCTL" flush --all "$M" >"$T/flush.out" 2>&1 || fail "rdmafsctl flush: $(cat "$T/flush.out")"

# The backing files hold what the writers wrote last.
want=$(sed -n 's/^xxh3=//p' "$T/pin.out")
[ -n "$want" ] || fail "no checksum from the pinned writer: $(cat "$T/pin.out")"
[ "$(stat -c %s "$S/pinned")" = $((8 << 20)) ] || fail "pinned backing size $(stat -c %s "$S/pinned")"
command -v xxhsum >/dev/null || fail "xxhsum missing (scripts/setup installs xxhash)"
[ "$(xxh3 "$S/pinned")" = "$want" ] || fail "backing file != the pinned writer's last round"
seq=$(sed -n 's/^seq=\([0-9]*\).*/\1/p' "$T/seq.out")
[ -n "$seq" ] || fail "no last record from the write(2) writer: $(cat "$T/seq.out")"
out=$("$SEQWRITE" --verify --seq "$seq" --blocks 256 --bs 65536 "$S/seq" 2>&1) ||
	fail "write(2) writer's data: $out"
verified=$(((8 << 20) + ${out#verified=}))

sorted=$(printf '%s\n' "${blackouts[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
worst=$(printf '%s\n' "$sorted" | tail -1)
json=$("$RDMAFSCTL" stat --json "$M" 2>/dev/null || true)
restarts=$(printf '%s' "$json" | sed -n 's/.*"restarts": *\([0-9]*\).*/\1/p' | head -1)
[ "$restarts" = "$KILLS" ] || fail "rdmafsctl stat --json: restarts=$restarts, want $KILLS"
dsorted=$(printf '%s\n' "${dmn[@]}" | grep . | sort -g || true)
dmedian=$(printf '%s\n' "$dsorted" | awk 'NF { v[++n] = $1 } END { if (n) printf "%.1f", v[int((n + 1) / 2)] }')
dworst=$(printf '%s\n' "$dsorted" | awk 'NF { w = $1 } END { if (w != "") printf "%.1f", w }')
note "kills=$KILLS survived; bytes verified=$verified (pinned 8 MiB, write(2) 16 MiB, last record $seq, $(sed -n 's/.*fsyncs=//p' "$T/seq.out") fsyncs)"
note "blackout (kill to an open answered) median=${median} ms worst=${worst} ms; probes=$(cat "$T/probes" 2>/dev/null) errors=0"
note "daemon's last_blackout_ms (death seen to first answer): median=${dmedian:-?} worst=${dworst:-?}; restarts=$restarts"

unmount_rdmafs "$M" || fail "daemon exit code $?"
# upgrade: the incompatible binary's refusal
check_daemon_log 'this binary answers INIT otherwise|cannot adopt the mount'
