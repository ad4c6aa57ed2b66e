# tests/integration/lease_lib.sh - helpers of the lease tests (sourced after lib.sh).
# A holder is tests/lease_holder (librdmafs' rdmafs_lease + a long-term pin).

LEASE_HOLDER=$RDMAFS_BUILD/tests/lease_holder
[ -x "$LEASE_HOLDER" ] || fail "$LEASE_HOLDER not built"

# start_holder FILE [lease_holder options]: HOLDER_PID, output in $T/holder.out; waits for
# 'ready'. Every lease test mounts with passthrough (lease_mount skips without it), so a
# refused pin is a failure, not a skip.
start_holder() {
	local f=$1 i
	shift
	: >"$T/holder.out"
	"$LEASE_HOLDER" "$@" "$f" >"$T/holder.out" 2>&1 &
	HOLDER_PID=$!
	_pids+=("$HOLDER_PID")
	for i in $(seq 100); do
		grep -q '^ready' "$T/holder.out" && return 0
		if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
			local rc=0
			wait "$HOLDER_PID" || rc=$?
			[ $rc -eq 2 ] && fail "long-term pin refused on a passthrough mount: $(cat "$T/holder.out")"
			fail "holder exited ($rc) before ready: $(cat "$T/holder.out")"
		fi
		sleep 0.05
	done
	fail "holder not ready in 5 s: $(cat "$T/holder.out")"
}

# wait_holder: the holder's exit code (0 released, 42 SIGBUS, ...).
wait_holder() {
	local rc=0
	wait "$HOLDER_PID" || rc=$?
	return $rc
}

holder_said() { grep -q "^$1" "$T/holder.out"; }

# timed CMD...: runs CMD, sets ELAPSED (seconds, float) and RC; never fails itself.
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	RC=0
	"$@" 2>"$T/timed.err" || RC=$?
	t1=$(date +%s.%N)
	ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# between X LO HI: LO <= X < HI (floats)
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }

# make_file F SIZE: a file of SIZE pseudo-random bytes through the mount, committed.
make_file() {
	head -c "$2" /dev/urandom >"$T/ref"
	cp "$T/ref" "$1"
	sync "$1" 2>/dev/null || true
}

# lease_mount OPTS: mount $T/src on $T/mnt with -o OPTS, skip without passthrough. The
# first request on the mount waits for FUSE_INIT, whose handler logs "passthrough enabled".
lease_mount() {
	mount_rdmafs "$T/src" "$T/mnt" -o "$1"
	stat "$T/mnt" >/dev/null
	require_passthrough "$T/mnt"
}
