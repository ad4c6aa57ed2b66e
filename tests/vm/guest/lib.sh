# Helpers for guest tests (sourced, POSIX sh; runs inside the qemu guest only).
#
#   . "$RDMAFS_LIB"        # set by stage 2, = tests/vm/guest/lib.sh
#   rxe_up                 # rxe0 on the dummy netdev dum0, 10.77.0.1, GID index 1
#   ext4_up DIR [SIZE]     # an ext4 image on a loop device, mounted at DIR
#   rdmafs_up SRC MNT [-o OPTS]   # the rdmafs daemon (RDMAFS_BUILD), log in $DAEMON_LOG
#   rdmafs_down MNT        # umount, wait for the daemon: its exit code
#   at_exit CMD            # run CMD (eval) when the test exits, last registered first
#
# Set by stage 2: RDMAFS_SRC (source tree), RDMAFS_TOOLS (rdma_target, rdma_writer,
# rdma_regprobe), RDMAFS_BUILD (meson build folder or empty), RDMAFS_RESULTS (kept on
# failure). All traffic stays on dum0: the guest has no other network.

RXE_DEV=rxe0
RXE_NETDEV=dum0
RXE_ADDR=10.77.0.1
RXE_GID_INDEX=1 # RoCE v2, ::ffff:10.77.0.1
TARGET=$RDMAFS_TOOLS/rdma_target
WRITER=$RDMAFS_TOOLS/rdma_writer
REGPROBE=$RDMAFS_TOOLS/rdma_regprobe

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() {
	echo "FAIL: $*"
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit 77
}

# Background processes started with bg are killed when the test exits, however it exits;
# then the at_exit commands run (unmounts), last registered first.
_bg_pids=""
_at_exit=""
at_exit() {
	_at_exit="$1
$_at_exit"
}
_lib_exit() {
	rc=$?
	for p in $_bg_pids; do
		kill "$p" 2>/dev/null
	done
	[ -n "$_bg_pids" ] && wait 2>/dev/null
	if [ $rc != 0 ] && [ $rc != 77 ]; then
		echo "--- state at failure"
		rdma link 2>&1
		ip -br addr 2>&1
		dmesg | tail -n 20
		if [ -n "${DAEMON_LOG:-}" ] && [ -s "$DAEMON_LOG" ]; then
			echo "--- rdmafs daemon log (last 40 lines)"
			tail -n 40 "$DAEMON_LOG"
		fi
	fi
	eval "$_at_exit"
	exit $rc
}
trap _lib_exit EXIT
trap 'exit 143' TERM INT
# bg LOGFILE CMD ARGS...: run CMD in the background, output to LOGFILE; sets BG_PID.
bg() {
	_log=$1
	shift
	"$@" >"$_log" 2>&1 &
	BG_PID=$!
	_bg_pids="$_bg_pids $BG_PID"
}

# wait_for_line FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN (grep -E).
wait_for_line() {
	_n=$((${3:-30} * 10))
	while [ $_n -gt 0 ]; do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		_n=$((_n - 1))
	done
	echo "timed out waiting for /$2/ in $1:"
	cat "$1"
	return 1
}

# retry SECONDS CMD ARGS...: run CMD until it succeeds or SECONDS have passed; for a
# client whose server may not listen yet (no fixed sleeps: the guest's speed varies
# tenfold with the host's load).
retry() {
	_end=$(($(cut -d. -f1 /proc/uptime) + $1))
	shift
	while ! "$@"; do
		[ "$(cut -d. -f1 /proc/uptime)" -lt $_end ] || return 1
		echo "retry: \"$*\" failed, again in 0.5 s"
		sleep 0.5
	done
}

rxe_up() {
	modprobe -a rdma_rxe ib_uverbs rdma_ucm dummy || fail "modprobe rdma_rxe rdma_ucm failed"
	ip link add "$RXE_NETDEV" type dummy || fail "cannot add dummy netdev"
	ip addr add "$RXE_ADDR/24" dev "$RXE_NETDEV"
	# A jumbo netdev MTU gives the RoCE path MTU 4096 (1024 at 1500): a quarter of the
	# packets, which is most of the cost under emulation.
	ip link set "$RXE_NETDEV" mtu 9000 up
	rdma link add "$RXE_DEV" type rxe netdev "$RXE_NETDEV" || fail "rdma link add failed"
	_gid=/sys/class/infiniband/$RXE_DEV/ports/1/gids/$RXE_GID_INDEX
	_n=50
	while [ $_n -gt 0 ]; do
		case $(cat "$_gid" 2>/dev/null) in
		*:ffff:0a4d:0001) break ;;
		esac
		sleep 0.1
		_n=$((_n - 1))
	done
	[ $_n -gt 0 ] || fail "$RXE_DEV has no RoCE v2 GID for $RXE_ADDR at index $RXE_GID_INDEX"
	log "$RXE_DEV up on $RXE_NETDEV $RXE_ADDR (gid $(cat "$_gid"))"
}

# xxh3 FILE: the XXH3-64 of FILE as 16 hex digits, as rdma_writer prints it (xxhsum of
# the xxhash package prints "XXH3 (FILE) = HASH"). Fails loudly on anything else.
xxh3() {
	_h=$(xxhsum -H3 "$1" 2>/dev/null | awk '{ print $NF }')
	case $_h in
	[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*) ;;
	*) fail "xxhsum -H3 $1 gave '$_h'" ;;
	esac
	[ ${#_h} = 16 ] || fail "xxhsum -H3 $1 gave '$_h'"
	echo "$_h"
}

# result_field LOG KEY: KEY's value on rdma_writer's "result key=value ..." line in LOG.
result_field() { sed -n "s/^result .*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" "$1" | tail -n1; }

# ext4_up DIR [SIZE]: a fresh ext4 file system on a loop device (the image in the guest's
# tmpfs), mounted at DIR, unmounted at exit. A real block file system: it refuses
# long-term pins of its MAP_SHARED mappings.
ext4_up() {
	modprobe -a loop ext4 2>/dev/null
	_img=/tmp/ext4.$$.$(echo "$1" | tr / _).img
	truncate -s "${2:-256M}" "$_img"
	mkfs.ext4 -q -F "$_img" || fail "mkfs.ext4 failed"
	mkdir -p "$1"
	mount -o loop "$_img" "$1" || fail "cannot loop-mount the ext4 image on $1"
	at_exit "umount -l '$1' 2>/dev/null; rm -f '$_img'"
}

# rdmafs_up SRC MNT [-o OPTS]: the rdmafs daemon of $RDMAFS_BUILD in the foreground (a
# background job), SRC mounted at MNT. Sets DAEMON_PID; its output goes to $DAEMON_LOG.
# Skips when there is no build folder; fails unless the daemon got FUSE passthrough.
DAEMON_LOG=/tmp/rdmafs-daemon.log
rdmafs_up() {
	[ -n "$RDMAFS_BUILD" ] || skip "RDMAFS_BUILD not set: no rdmafs daemon to test"
	[ -x "$RDMAFS_BUILD/src/rdmafs" ] || skip "no $RDMAFS_BUILD/src/rdmafs"
	_src=$1 _mnt=$2
	shift 2
	mkdir -p "$_src" "$_mnt"
	"$RDMAFS_BUILD/src/rdmafs" "$_src" "$_mnt" -f "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	at_exit "mountpoint -q '$_mnt' && { umount '$_mnt' || umount -l '$_mnt'; }; kill $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null"
	_n=100
	while ! mountpoint -q "$_mnt"; do
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$DAEMON_LOG"; fail "rdmafs exited before mounting"; }
		[ $_n -gt 0 ] || fail "rdmafs did not mount $_mnt in 10 s"
		sleep 0.1
		_n=$((_n - 1))
	done
	stat "$_mnt" >/dev/null # waits for FUSE_INIT: the passthrough line is logged
	grep -q "passthrough enabled" "$DAEMON_LOG" ||
		{ cat "$DAEMON_LOG"; fail "rdmafs has no FUSE passthrough in this guest kernel"; }
	log "rdmafs: $_src on $_mnt ($*)"
}

# rdmafs_down MNT: unmount (the daemon commits everything) and wait for the daemon.
# Returns the daemon's exit code; fails on error lines in its log.
rdmafs_down() {
	umount "$1" || fail "umount $1 failed"
	_rc=0
	wait "$DAEMON_PID" || _rc=$?
	if grep -E 'rdmafs: error:' "$DAEMON_LOG"; then
		fail "errors in the rdmafs log"
	fi
	return $_rc
}

# commits_logged: how many commits the daemon logged so far (needs log_level=debug).
commits_logged() { grep -c 'debug: commit ino=.* bytes in' "$DAEMON_LOG" 2>/dev/null || true; }
