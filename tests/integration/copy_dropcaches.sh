#!/bin/bash
# The copy benchmark under page-cache invalidation (issue 11, 1): bench/run's copy figure
# (a peer writes through a long-term pin of a mapped rdmafs file, then fsync) runs three
# times while another process drops the page cache in a loop; every run must end with the
# backing file equal to the baseline (bench/run fails "the copy baseline and the rdmafs
# file differ" otherwise, as it did before staging pages were allocated dirty).
. "$(dirname "$0")/lib.sh"
require_mount_env
top=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$RDMAFS_BUILD/bench/benchtool" ] || fail "no bench/benchtool in $RDMAFS_BUILD"
command -v fio >/dev/null || fail "fio missing (see scripts/setup)"

(while :; do echo 3 >/proc/sys/vm/drop_caches; sleep 0.1; done) &
_pids+=($!)
drops0=$(awk '/^drop_pagecache/ {print $2}' /proc/vmstat)
for i in 1 2 3; do
	out=$(RDMAFS_BUILD=$RDMAFS_BUILD "$top/bench/run" --quick --only copy --out "$T/bench$i" 2>&1) ||
		fail "run $i: bench/run failed: $out"
done
drops1=$(awk '/^drop_pagecache/ {print $2}' /proc/vmstat)
[ "$drops1" -gt "$drops0" ] || fail "the drop_caches loop did not run ($drops0 -> $drops1)"
note "3 copy runs intact under $((drops1 - drops0)) page-cache drops"
