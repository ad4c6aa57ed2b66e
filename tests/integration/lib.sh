# tests/integration/lib.sh - shared by the integration tests (sourced, bash).
# Each test: a real rdmafs mount on a scratch folder; exit 0 pass, 77 skip, else fail.
# Mounts, daemons and loop devices are cleaned up on any exit.
#
# Environment (set by meson test): RDMAFS_BUILD = meson build dir.

set -euo pipefail
[ -n "${TRACE:-}" ] && set -x

: "${RDMAFS_BUILD:?RDMAFS_BUILD must point at the meson build directory}"
RDMAFS=$RDMAFS_BUILD/src/rdmafs
RDMAFSCTL=$RDMAFS_BUILD/tools/rdmafsctl
PINWRITE=$RDMAFS_BUILD/tools/rdmafs-pinwrite
HELPER=$RDMAFS_BUILD/tests/rdmafs-testhelper
TEST_NAME=$(basename "$0" .sh)

skip() { echo "SKIP $TEST_NAME: $*"; exit 77; }
fail() { echo "FAIL $TEST_NAME: $*" >&2; exit 1; }
note() { echo "# $*"; }

# require_mount_env: root, /dev/fuse, a kernel that can mount FUSE.
require_mount_env() {
	[ "$(id -u)" = 0 ] || skip "needs root (FUSE passthrough needs CAP_SYS_ADMIN)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
}

T=$(mktemp -d /tmp/rdmafs-test.XXXXXX)
declare -a _mounts=() _loops=() _pids=()
DAEMON_LOG=$T/daemon.log

_cleanup() {
	local rc=$? m p l
	for m in "${_mounts[@]}"; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	for p in "${_pids[@]}"; do
		# a supervisor first (else it starts another daemon), then what it runs
		local kids
		kids=$(pgrep -P "$p" 2>/dev/null || true)
		kill -9 "$p" 2>/dev/null || true
		for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
	done
	# Control sockets of daemons that did not get to remove them (killed, crashed).
	[ -f "$DAEMON_LOG" ] && sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" |
		while read -r s; do rm -f "$s"; done
	for l in "${_loops[@]}"; do
		mountpoint -q "$l" 2>/dev/null && umount -l "$l" 2>/dev/null || true
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -s "$DAEMON_LOG" ]; then
		echo "--- daemon log ($DAEMON_LOG) ---" >&2
		tail -n 50 "$DAEMON_LOG" >&2
	fi
	[ $rc -eq 0 ] || [ $rc -eq 77 ] || [ -n "${KEEP_TMP:-}" ] || true
	rm -rf "$T" 2>/dev/null || true
	exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# serving_pid SUPERVISOR_PID: the daemon generation serving now (restart = off: the
# process itself).
serving_pid() { pgrep -P "$1" -n 2>/dev/null || echo "$1"; }

# mount_rdmafs SRC MNT [-o opts]: daemon in the foreground (background job), waits for
# the mount; its stderr goes to $DAEMON_LOG. SUPERVISOR_PID is the job (the supervisor,
# restart = on; wait for it), DAEMON_PID the daemon generation serving the mount
# (/proc/PID, prlimit, signals: SIGTERM ends the mount either way).
mount_rdmafs() {
	local src=$1 mnt=$2
	shift 2
	mkdir -p "$src" "$mnt"
	# Not fd 9, the hugetlb tests' lock (hugetlb_lib.sh): a supervisor left behind by a
	# killed test would hold it, and every later hugetlb test would wait for it.
	"$RDMAFS" "$src" "$mnt" -f "$@" >>"$DAEMON_LOG" 2>&1 9>&- &
	SUPERVISOR_PID=$!
	DAEMON_PID=$SUPERVISOR_PID
	_pids+=("$SUPERVISOR_PID")
	_mounts+=("$mnt")
	local i
	for i in $(seq 100); do
		if grep -q "$mnt fuse.rdmafs" /proc/mounts 2>/dev/null ||
			awk -v m="$(realpath "$mnt")" '$2 == m && $3 ~ /^fuse/ {f=1} END {exit !f}' /proc/mounts; then
			stat "$mnt" >/dev/null	# waits for FUSE_INIT: its log lines are written
			DAEMON_PID=$(serving_pid "$SUPERVISOR_PID")
			return 0
		fi
		kill -0 "$SUPERVISOR_PID" 2>/dev/null || { cat "$DAEMON_LOG" >&2; fail "daemon exited before mounting"; }
		sleep 0.05
	done
	fail "mount of $mnt did not appear"
}

# unmount_rdmafs MNT: umount and wait for the daemon; returns the daemon's exit code.
unmount_rdmafs() {
	local mnt=$1 rc=0
	umount "$mnt" || fail "umount $mnt failed"
	wait "$SUPERVISOR_PID" || rc=$?
	return $rc
}

# check_daemon_log [allowed-regex]: fail on error lines not matching the regex.
check_daemon_log() {
	local allow=${1:-'^$'} bad
	bad=$(grep -E 'rdmafs: error:|AddressSanitizer|LeakSanitizer|runtime error:' "$DAEMON_LOG" | grep -Ev "$allow" || true)
	[ -z "$bad" ] || fail "unexpected errors in daemon log: $bad"
}

# require_passthrough MNT: skip unless the daemon got FUSE passthrough.
require_passthrough() {
	grep -q "passthrough enabled" "$DAEMON_LOG" || skip "kernel/libfuse without FUSE passthrough"
}

# loop_fs SIZE FSTYPE DIR: a real filesystem on a loop-mounted image at DIR.
# mkfs.xfs refuses less than 300 MB unless run as fstests does (its environment below),
# and gets 4 KiB sectors;
# btrfs needs 114 MiB at least: a smaller image is made 128M.
loop_fs() {
	local size=$1 fstype=$2 dir=$3
	command -v "mkfs.$fstype" >/dev/null || fail "mkfs.$fstype missing (scripts/setup installs it)"
	grep -qw "$fstype" /proc/filesystems || modprobe "$fstype" 2>/dev/null ||
		skip "kernel without $fstype"
	if [ "$fstype" = btrfs ] && [ "$(numfmt --from=iec "$size")" -lt $((128 << 20)) ]; then
		size=128M
	fi
	truncate -s "$size" "$T/$fstype.img"
	case $fstype in
	xfs)	# 4 KiB sectors: O_DIRECT must be 4 KiB aligned (stricter than the 512 of ext4)
		TEST_DIR=$T TEST_DEV=$T/$fstype.img QA_CHECK_FS=1 \
			mkfs.xfs -q -f -s size=4096 "$T/$fstype.img" ;;
	btrfs) mkfs.btrfs -q -f "$T/$fstype.img" ;;
	*) "mkfs.$fstype" -q "$T/$fstype.img" || "mkfs.$fstype" "$T/$fstype.img" ;;
	esac >"$T/mkfs.log" 2>&1 || { cat "$T/mkfs.log" >&2; fail "mkfs.$fstype failed"; }
	mkdir -p "$dir"
	mount -o loop "$T/$fstype.img" "$dir" 2>/dev/null || skip "cannot loop-mount $fstype (no loop devices?)"
	_loops+=("$dir")
}

# backing_dir DIR SIZE [FSTYPE]: the backing directory of a test. With RDMAFS_BACKING_FS
# (ext4, xfs or btrfs: the *-xfs and *-btrfs meson tests set it) it is a loop image of that
# filesystem; else one of FSTYPE if given (a test that fills it), else a plain folder.
backing_dir() {
	local dir=$1 size=$2 fstype=${RDMAFS_BACKING_FS:-${3:-}}
	if [ -n "$fstype" ]; then
		loop_fs "$size" "$fstype" "$dir"
		note "backing filesystem: $fstype ($size image)"
	else
		mkdir -p "$dir"
	fi
}

# xxh3 FILE: XXH3-64 of FILE in hex, as rdmafs-pinwrite prints it.
xxh3() { xxhsum -q -H3 "$1" 2>/dev/null | sed 's/.* = //'; }
xxh() { xxh64sum "$1" 2>/dev/null | cut -d' ' -f1 || sha256sum "$1" | cut -d' ' -f1; }
same_file() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; returns 1 if it never does.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# stat_field PATH KEY: KEY of `rdmafsctl stat --json PATH` (a file, or a mount's sums);
# KEY may name a nested one (lease_stats.breaks); booleans as true/false, null as null.
stat_field() {
	"$RDMAFSCTL" stat --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]
for k in sys.argv[1].split("."):
    v = v[k]
print(json.dumps(v) if v is None or isinstance(v, bool) else v)' "$2"
}

# metric MNT NAME: the value of the counter NAME in `rdmafsctl metrics MNT` (daemon-wide;
# one daemon per mount in these tests). 0 if it is not there.
metric() {
	"$RDMAFSCTL" metrics --no-scan "$1" |
		awk -v n="$2" 'index($1, n "{") == 1 { v = $2 } END { print v + 0 }'
}

# is_mounted DIR: DIR is a mount point in /proc/mounts.
is_mounted() {
	awk -v m="$(realpath -m "$1")" '$2 == m {f=1} END {exit !f}' /proc/mounts
}

# random_file FILE SIZE: SIZE random bytes (head -c syntax: 1M, 4K, ...).
random_file() { head -c "$2" /dev/urandom >"$1"; }

# term_rdmafs: SIGTERM the daemon and wait; returns its exit code.
term_rdmafs() {
	local rc=0
	kill -TERM "$DAEMON_PID"
	wait "$SUPERVISOR_PID" || rc=$?
	return $rc
}
