#!/bin/bash
# Concurrency: workers open, write (write(2) and mmap), truncate, fsync, read and close a
# few shared files while periodic flushes, last-close commits, sealing and release run.
# After they stop, what the mount shows is what the backing folder holds after unmount;
# no deadlock (bounded by timeouts), no error lines, no sanitizer reports.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=1,chunk_size=4K
require_passthrough
SECS=${STRESS_SECS:-8}

worker() {
	local id=$1 end=$((SECONDS + SECS)) f off len n=0 rc
	set +e	# operations may fail (a file truncated or not yet there): only hangs count
	RANDOM=$id
	while [ $SECONDS -lt $end ]; do
		f=$M/f$((RANDOM % 4))
		off=$((RANDOM * 37 % 3000000))
		len=$((1 + RANDOM % 70000))
		case $((RANDOM % 8)) in
		0|1) timeout 20 "$HELPER" pwrite "$f" $off $len $RANDOM >/dev/null ;;
		2) timeout 20 "$HELPER" mmapwrite "$f" $off $len $RANDOM >/dev/null ;;
		3) timeout 20 truncate -s $((RANDOM * 61 % 3000000)) "$f" ;;
		4) [ -e "$f" ] && timeout 20 "$HELPER" fsync "$f" >/dev/null ;;
		5) timeout 20 cat "$f" >/dev/null 2>&1 ;;
		6) [ -e "$f" ] && timeout 20 "$PINWRITE" --size 64K --offset $((off / 4096 * 4096)) \
			--seed $RANDOM --quiet --no-fsync "$f" >/dev/null ;;
		7) timeout 20 "$HELPER" hold-mmapwrite "$f" $off 4096 $RANDOM 1 >/dev/null ;;
		esac
		rc=$?
		[ $rc = 124 ] && { echo "worker $id: operation timed out (deadlock?)"; return 1; }
		n=$((n + 1))
	done
	echo "worker $id: $n operations"
}
pids=()
for w in 1 2 3 4; do worker $w >"$T/w$w.log" 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a worker failed: $(cat "$T"/w*.log)"; done
cat "$T"/w*.log | sed 's/^/# /'
mkdir "$T/seen"
for f in "$M"/f*; do cp "$f" "$T/seen/"; done
unmount_rdmafs "$M" || fail "daemon exit code $?"
for f in "$T"/seen/*; do same_file "$S/$(basename "$f")" "$f"; done
check_daemon_log
