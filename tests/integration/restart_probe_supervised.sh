#!/bin/bash
# Issue 15: restart_probe with rdmafs-supervisor (src/supervisor.c) as the holder. The
# probe's server generations put /dev/fuse and the staging memfd in the supervisor's
# store, say SUP_READY, and are killed 20 times with a request in flight; the supervisor
# starts the next at once (no back-off: they were ready), which takes the descriptors
# back (SUP_LIST), adopts the connection and resends. Every in-flight request is answered,
# the mount never fails a stat, the mapping, the pin and the backing id survive; after
# the unmount the last generation exits "done" and the supervisor exits 0.
. "$(dirname "$0")/lib.sh"
require_mount_env
PROBE=${RDMAFS_RESTARTPROBE:-$RDMAFS_BUILD/tests/helpers/rdmafs-restartprobe}
SUP=${RDMAFS_SUPERVISOR:-$RDMAFS_BUILD/src/rdmafs-supervisor}
mkdir "$T/mnt"
_mounts+=("$T/mnt")
rc=0
timeout 240 "$PROBE" --supervised "$SUP" "$T/mnt" 20 >"$T/out" 2>"$T/err" || rc=$?
sed 's/^/# /' "$T/out"
skip_reason=$(sed -n 's/^skip=//p' "$T/out")
[ $rc -eq 77 ] && skip "${skip_reason:-kernel feature missing}"
[ $rc -eq 0 ] || { tail -n 40 "$T/err" >&2; fail "probe exited $rc"; }
grep -qx 'kills=20 answered=20' "$T/out" || fail "not every in-flight request answered"
grep -q '^probes=[0-9]* enotconn=0 other_errors=0 failed_during_kills=0 ' "$T/out" ||
	fail "the mount failed a stat"
grep -qx 'resent_with_original_unique=20' "$T/out" || fail "resent requests changed their unique"
[ "$(grep -c 'start-up deaths' "$T/err")" = 0 ] || fail "the supervisor backed off"
mountpoint -q "$T/mnt" && fail "probe left its mount behind"
exit 0
