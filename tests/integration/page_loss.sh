#!/bin/bash
# Staged bytes never vanish (issue 11, 1): a page faulted in by a read (MAP_POPULATE) and
# written only through a long-term pin (io_uring fixed buffers dirty nothing) must survive
# page-cache invalidation (drop_caches) after the pin and the mapping are gone; the next
# fsync and the unmount must not commit zeros over the committed pattern. shmem and thp.
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v xxhsum >/dev/null || fail "xxhsum missing (xxhash package, see scripts/setup)"
M=$T/mnt S=$T/src
mkdir -p "$S"

fsync_file() {
	python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$1"
}

# run MODE HOLD: the sequence of the issue on a new file; HOLD=1 keeps a writable open of
# the file from before the pin to after the drop, so that its staging surely stays (not
# sealed and dropped at the last close, which would hide the loss).
run() {
	local mode=$1 hold=$2 f=$M/f-$1-$2 out want got
	mount_rdmafs "$S" "$M" -o staging=$mode,flush_interval=0
	require_passthrough
	[ "$hold" = 1 ] && exec 9<>"$f"
	out=$("$PINWRITE" --populate --size 32M --seed 7 --quiet "$f") || fail "$mode: pinwrite: $out"
	want=${out#xxh3=}
	echo 3 >/proc/sys/vm/drop_caches
	got=$(xxh3 "$f")
	[ "$got" = "$want" ] || fail "$mode hold=$hold: after drop_caches the mount reads $got, wrote $want"
	fsync_file "$f" || fail "$mode hold=$hold: fsync after drop_caches failed"
	[ "$(xxh3 "$S/${f##*/}")" = "$want" ] || fail "$mode hold=$hold: backing lost the pattern at fsync"
	[ "$hold" = 1 ] && exec 9<&-
	echo 3 >/proc/sys/vm/drop_caches
	unmount_rdmafs "$M" || fail "$mode hold=$hold: daemon exit code $?"
	[ "$(xxh3 "$S/${f##*/}")" = "$want" ] || fail "$mode hold=$hold: backing lost the pattern at unmount"
	note "$mode hold=$hold: 32 MiB pinned pattern survived drop_caches"
}

# grow_run MODE ENFORCE: a write past EOF leaves a hole before the written byte (shmem
# with budget_enforce=strict: a daemon-served write, which allocates the hole; deferred,
# and thp: a passthrough write, growth the daemon does not make), then the same pin
# sequence over the hole.
grow_run() {
	local mode=$1 f=$M/g-$1-$2 out want
	mount_rdmafs "$S" "$M" -o staging=$mode,flush_interval=0,budget_enforce=$2
	exec 9<>"$f"
	printf x | dd of="$f" bs=1 seek=$(((32 << 20) - 1)) conv=notrunc status=none
	out=$("$PINWRITE" --populate --size 32M --seed 9 --quiet "$f") || fail "$mode: pinwrite: $out"
	want=${out#xxh3=}
	echo 3 >/proc/sys/vm/drop_caches
	[ "$(xxh3 "$f")" = "$want" ] || fail "$mode: pinned writes into a hole left by a write past EOF lost"
	fsync_file "$f" || fail "$mode: fsync failed"
	exec 9<&-
	[ "$(xxh3 "$S/${f##*/}")" = "$want" ] || fail "$mode: backing lost the pattern"
	lost=$("$RDMAFSCTL" stat --json "$M" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["lost_pages"])')
	[ "$lost" = 0 ] || fail "$mode: $lost staged pages reported lost"
	unmount_rdmafs "$M" || fail "$mode: daemon exit code $?"
	note "$mode $2: growth by a write past EOF allocated before the pin"
}

run shmem 1
run shmem 0
grow_run shmem strict
grow_run shmem deferred
SHMEM_KNOB=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [ -r $SHMEM_KNOB ] && ! grep -q '\[deny\]' $SHMEM_KNOB; then
	run thp 1
	run thp 0
	grow_run thp strict
else
	note "thp staging not tested: shmem huge pages denied or absent"
fi
check_daemon_log
