#!/bin/bash
# Leases survive the daemon (issue 15, doc/restart.md 3.5): a pin holder's lease is its
# control connection, kept in the supervisor's store with the holder's pidfd. The serving
# daemon is killed (SIGKILL) 3 times while the holder keeps its pin: its lease fd never
# becomes readable (no EOF, no notice), `rdmafsctl lease list` still shows it, and a
# truncate after the kills still breaks it (the holder is notified, releases, and the
# truncate goes on long before lease_break_time). `rdmafsctl stat` started right after a
# kill succeeds: the control listener is in the store, its connect waits in the backlog.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease_lib.sh"
require_mount_env
# A knob of test builds (src/ctl_lease.c): the daemon dies with a lease kept, not granted.
export RDMAFS_TEST_DIE=$T/die
: >"$RDMAFS_TEST_DIE"
lease_mount restart=on,flush_interval=1,lease_break_time=30
M=$T/mnt
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"

make_file "$M/f" $((1 << 20))
echo probe >"$M/probe"
start_holder "$M/f"
"$RDMAFSCTL" lease list "$M/f" | grep -q "^$HOLDER_PID .*held .* f$" ||
	fail "lease not listed before the kills"

for i in 1 2 3; do
	pid=$(serving_pid "$SUPERVISOR_PID")
	[ "$pid" != "$SUPERVISOR_PID" ] || fail "kill $i: no daemon generation serves"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
	if [ "$i" = 2 ]; then
		# the listener outlived its daemon: this connect waits for the next one
		"$RDMAFSCTL" stat --json "$M" >"$T/stat.out" 2>&1 ||
			fail "rdmafsctl stat during a restart: $(cat "$T/stat.out")"
	fi
	head -c 5 "$M/probe" >/dev/null || fail "kill $i: open after the death failed"
	[ "$(serving_pid "$SUPERVISOR_PID")" != "$pid" ] || fail "kill $i: no new generation"
	kill -0 "$HOLDER_PID" 2>/dev/null || fail "kill $i: the holder exited: $(cat "$T/holder.out")"
	! holder_said notice || fail "kill $i: the holder saw its lease end: $(cat "$T/holder.out")"
done
DAEMON_PID=$(serving_pid "$SUPERVISOR_PID")
"$RDMAFSCTL" lease list "$M/f" >"$T/ll" 2>&1 || fail "lease list after the kills: $(cat "$T/ll")"
grep -q "^$HOLDER_PID .*held .* f$" "$T/ll" || fail "lease not listed after the kills: $(cat "$T/ll")"

# A truncate breaks the resumed lease: notice, release, and it goes on at once.
timed truncate -s 8192 "$M/f"
[ "$RC" = 0 ] || fail "truncate: $(cat "$T/timed.err")"
between "$ELAPSED" 0 10 || fail "truncate took ${ELAPSED}s (lease_break_time=30)"
holder_said notice || fail "holder got no notice: $(cat "$T/holder.out")"
rc=0
wait_holder || rc=$?
[ $rc = 0 ] || fail "holder exit $rc: $(cat "$T/holder.out")"
holder_said released || fail "holder did not release: $(cat "$T/holder.out")"
[ "$(stat -c %s "$M/f")" = 8192 ] || fail "size $(stat -c %s "$M/f")"
cmp -s -n 8192 "$T/ref" "$M/f" || fail "bytes before the cut changed"
if "$RDMAFSCTL" lease list "$M/f" | grep -q "^$HOLDER_PID "; then
	fail "lease still listed after release"
fi
note "lease held through 3 kills; truncate broke it in ${ELAPSED}s"

# The daemon dies after keeping a lease and before its "granted" went out: the next
# generation sends it, so the holder does not wait forever for its reply.
restarts_of() { "$RDMAFSCTL" stat --json "$1" | sed -n 's/.*"restarts":\([0-9]*\).*/\1/p'; }
before=$(restarts_of "$M")
make_file "$M/g" $((1 << 20))
echo "lease kept" >"$RDMAFS_TEST_DIE"
start_holder "$M/g"
[ ! -s "$RDMAFS_TEST_DIE" ] || fail "the knob did not fire (no death between keep and grant)"
[ "$(restarts_of "$M")" = $((before + 1)) ] || fail "restarts $(restarts_of "$M"), want $((before + 1))"
"$RDMAFSCTL" lease list "$M/g" | grep -q "^$HOLDER_PID .*held .* g$" ||
	fail "lease granted across the death not listed"
timed truncate -s 4096 "$M/g"
[ "$RC" = 0 ] || fail "truncate of g: $(cat "$T/timed.err")"
holder_said notice || fail "g's holder got no notice: $(cat "$T/holder.out")"
rc=0
wait_holder || rc=$?
[ $rc = 0 ] || fail "g's holder exit $rc: $(cat "$T/holder.out")"
note "lease granted by the next generation after a death between keep and grant"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
