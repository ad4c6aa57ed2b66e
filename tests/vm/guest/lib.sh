# Helpers for guest tests (sourced, POSIX sh; runs inside the qemu guest only).
#
#   . "$RDMAFS_LIB"        # set by stage 2, = tests/vm/guest/lib.sh
#   rxe_up                 # rxe0 on the dummy netdev dum0, 10.77.0.1, GID index 1
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

# Background processes started with bg are killed when the test exits, however it exits.
_bg_pids=""
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
	fi
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
