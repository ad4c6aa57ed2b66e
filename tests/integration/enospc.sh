#!/bin/bash
# Backing filesystem full: fsync returns ENOSPC (again on a retry), the periodic passes
# retry (failures counted in rdmafsctl stat), the error is logged once, nothing is lost
# from staging; after space is freed, fsync succeeds and the backing file holds every
# byte. A description open across the failures sees the error once (errseq_t rule).
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
backing_dir "$S" 32M ext4
mount_rdmafs "$S" "$M" -o flush_interval=1,flush_on_close=no
require_passthrough

random_file "$T/data" 6M
: >"$M/f"
exec 3<>"$M/f"
dd if=/dev/zero of="$S/filler" bs=1M status=none 2>/dev/null || true	# until full
sync
cp "$T/data" /dev/fd/3 2>/dev/null || dd if="$T/data" of="$M/f" bs=1M conv=notrunc status=none
cmp -s "$M/f" "$T/data" || fail "staging does not hold what was written"
out=$("$HELPER" fsync "$M/f" 2>/dev/null || true)
[[ $out == ENOSPC* ]] || fail "fsync on a full backing FS: '$out', expected ENOSPC"
failures() {
	"$RDMAFSCTL" stat --json "$M/f" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["failures"])'
}
f0=$(failures)
[ "$f0" -ge 1 ] || fail "failed commit not counted in stat: failures=$f0"
# The periodic passes retry (and fail) meanwhile: wait for two of them.
retried() { [ "$(failures)" -ge $((f0 + 2)) ]; }
wait_for 20 retried || fail "no periodic retry of the failed commit: failures=$(failures), was $f0"
out=$("$HELPER" fsync "$M/f" 2>/dev/null || true)
[[ $out == ENOSPC* ]] || fail "second fsync on a full backing FS: '$out', expected ENOSPC"
cmp -s "$M/f" "$T/data" || fail "staging lost data after failed commits"
n=$(grep -c 'rdmafs: error: commit .*No space left' "$DAEMON_LOG" || true)
[ "$n" = 1 ] || fail "ENOSPC logged $n times, expected once"

rm "$S/filler"
sync
[ "$("$HELPER" fsync "$M/f" 2>/dev/null)" = ok ] || fail "fsync after space was freed"
same_file "$S/f" "$T/data"
# fd 3 was open when the commits failed and has not fsynced since: its next fsync reports
# the failure once (the data is durable now), the one after succeeds.
fsync3() { python3 -c 'import os
try:
    os.fsync(3); print("ok")
except OSError as e:
    print(os.strerror(e.errno))'; }
out=$(fsync3)
[ "$out" = "No space left on device" ] || fail "fsync of a description open across the failures: '$out'"
[ "$(fsync3)" = ok ] || fail "the failure was reported twice to one description"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
same_file "$S/f" "$T/data"
check_daemon_log 'No space left'
