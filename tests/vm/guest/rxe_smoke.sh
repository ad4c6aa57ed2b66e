# Soft-RoCE works in the guest: rxe0 on the dummy netdev is active, rdma_cm connects
# (rping), and ib_write_bw moves data between two processes over it.
. "$RDMAFS_LIB"

rxe_up
ibv_devinfo -d "$RXE_DEV" | grep -q PORT_ACTIVE || fail "$RXE_DEV port is not active"

log "rping: rdma_cm connection and 10 verified round trips"
bg /tmp/rping_server.log rping -s -a "$RXE_ADDR" -C 10
retry 30 timeout 60 rping -c -a "$RXE_ADDR" -C 10 -v -S 64 >/tmp/rping_client.log 2>&1 ||
	{ cat /tmp/rping_client.log /tmp/rping_server.log; fail "rping failed"; }
grep -c 'ping data' /tmp/rping_client.log | grep -qx 10 ||
	{ cat /tmp/rping_client.log; fail "rping did not verify 10 round trips"; }

# bw_run NAME ARGS...: ib_write_bw server and client with ARGS, prints BW average (MB/s).
bw_run() {
	_name=$1
	shift
	bg "/tmp/bw_server_$_name.log" ib_write_bw -d "$RXE_DEV" -x "$RXE_GID_INDEX" -F "$@"
	_srv=$BG_PID
	case " $* " in
	*" -R "*) wait_cm_listen 18515 60 || fail "ib_write_bw $_name: the server does not listen" ;;
	esac
	retry 30 timeout 90 ib_write_bw -d "$RXE_DEV" -x "$RXE_GID_INDEX" -F "$@" "$RXE_ADDR" \
		>"/tmp/bw_client_$_name.log" 2>&1 ||
		{ cat "/tmp/bw_client_$_name.log" "/tmp/bw_server_$_name.log"; fail "ib_write_bw $_name failed"; }
	wait "$_srv" || { cat "/tmp/bw_server_$_name.log"; fail "ib_write_bw server $_name failed"; }
	cat "/tmp/bw_client_$_name.log"
	# The result row follows the header "#bytes #iterations BW peak[MB/sec] BW average...".
	_n=$(awk '/BW average/ { getline; print $2; exit }' "/tmp/bw_client_$_name.log")
	_bw=$(awk '/BW average/ { getline; print $4; exit }' "/tmp/bw_client_$_name.log")
	awk -v n="$_n" 'BEGIN { exit !(n + 0 > 0) }' || fail "ib_write_bw $_name: no writes completed"
	# 0.00 when perftest's CPU clock estimate is too noisy (r^2 < 0.9, under emulation).
	log "ib_write_bw $_name: $_n writes, $_bw MB/sec average"
}

bw_run plain -s 65536 -D 3
bw_run rdma_cm -R -s 65536 -D 3
log "PASS"
