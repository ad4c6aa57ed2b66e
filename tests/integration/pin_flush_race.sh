#!/bin/bash
# Host analogue of the guest test rdmafs_busy: a pinned region (io_uring_register_buffers,
# the pin ibv_reg_mr takes) under continuous kernel writes, other data every round, while
# the periodic flush (flush_interval=1) commits it again and again. Commits overlap the
# writes; after the writes stop and a final rdmafsctl flush, with the pin still held, the
# backing file equals memory and the last round.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
loop_fs 128M ext4 "$S"
mount_rdmafs "$S" "$M" -o flush_interval=1,flush_on_close=no
require_passthrough
commits() { metric "$M" rdmafs_commits_total; }

c0=$(commits)
nice "$PINWRITE" --size 16M --duration 4 --no-fsync --hold 120 --quiet "$M/race" >"$T/pin.out" &
pinner=$!
wait_for 60 grep -q xxh3= "$T/pin.out" || fail "pinwrite did not finish writing"
c1=$(commits)
note "$((c1 - c0)) commits during 4 s of pinned writes"
[ $((c1 - c0)) -ge 2 ] || fail "only $((c1 - c0)) commits during the pinned writes: no race was tested"
kill -0 $pinner 2>/dev/null || fail "pinwrite exited: the pin is not held any more"
"$RDMAFSCTL" flush "$M/race" || fail "rdmafsctl flush"
cmp "$S/race" "$M/race" || fail "after the writes and a final flush, backing != memory"
want=$(sed -n 's/^xxh3=//p' "$T/pin.out")
command -v xxhsum >/dev/null || fail "xxhsum missing (scripts/setup installs xxhash)"
[ "$(xxh3 "$S/race")" = "$want" ] || fail "backing != the last pinned round"
kill $pinner
wait $pinner 2>/dev/null || true
unmount_rdmafs "$M" || fail "daemon exit code $?"
[ "$(xxh3 "$S/race")" = "$want" ] || fail "after unmount, backing != the last pinned round"
check_daemon_log
