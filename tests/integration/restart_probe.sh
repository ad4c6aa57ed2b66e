#!/bin/bash
# Issue 15, the kernel facts a zero-loss restart builds on, proven with a minimal passthrough
# FUSE server (tests/helpers/restartprobe.c, not rdmafs): killed with SIGKILL 20 times while
# a GETATTR, a READ or an FSYNC is in flight, replaced each time by a new process that takes
# /dev/fuse back from a holder and sends FUSE_NOTIFY_RESEND. Passes when every in-flight
# request is answered (not failed), the mount never answers ENOTCONN or any error, and a
# passthrough file mapped, long-term pinned (io_uring fixed buffer) and open across all
# deaths keeps going to the same memfd (also through new opens that reuse the backing id
# registered before the first death). Also shown (printed, see doc/restart.md): a request
# in flight on a cloned /dev/fuse file (libfuse clone_fd) fails with ECONNABORTED when its
# server dies; a new backing id for a file still open with an old one fails the open (EIO).
# Skips (77) on a kernel without passthrough or FUSE_NOTIFY_RESEND (Linux < 6.9).
. "$(dirname "$0")/lib.sh"
require_mount_env
PROBE=${RDMAFS_RESTARTPROBE:-$RDMAFS_BUILD/tests/helpers/rdmafs-restartprobe}
mkdir "$T/mnt"
_mounts+=("$T/mnt")
rc=0
timeout 240 "$PROBE" "$T/mnt" 20 >"$T/out" 2>"$T/err" || rc=$?
sed 's/^/# /' "$T/out"
skip_reason=$(sed -n 's/^skip=//p' "$T/out")
[ $rc -eq 77 ] && skip "${skip_reason:-kernel feature missing}"
[ $rc -eq 0 ] || { cat "$T/err" >&2; fail "probe exited $rc"; }
# The facts the restart design (doc/restart.md) relies on, as the probe measured them.
grep -qx 'kills=20 answered=20' "$T/out" || fail "not every in-flight request answered"
grep -q '^probes=[0-9]* enotconn=0 other_errors=[0-9]* failed_during_kills=0 ' "$T/out" ||
	fail "the mount failed a stat"
for op in GETATTR READ FSYNC; do
	grep -q "^resent=.* ops=.*\b$op\b" "$T/out" || fail "no $op resent"
done
grep -qx 'resent_with_original_unique=20' "$T/out" || fail "resent requests changed their unique"
grep -q '^requests_for_earlier_node_ids=[1-9]' "$T/out" ||
	fail "no request for a node id an earlier server created?"
grep -q '^requests_with_earlier_handles=[1-9]' "$T/out" ||
	fail "no request with a handle an earlier server issued?"
grep -qx 'forget_of_earlier_node_id=delivered' "$T/out" ||
	fail "FORGET of an earlier server's node id not delivered"
mountpoint -q "$T/mnt" && fail "probe left its mount behind"
exit 0
