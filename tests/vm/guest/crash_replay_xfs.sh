# crash_replay.sh on xfs: the backing file system on dm-log-writes, the log replayed to
# every mark and to random points between marks, each state mounted (log recovery),
# checked against the workload's journal and checked by xfs_repair -n.
#
#   tests/vm/run crash_replay_xfs [SEED [OPS [nodrop|drop]]]
set -- "${1:-1}" "${2:-10}" "${3:-drop}" "replay:xfs"
. "$RDMAFS_SRC/tests/vm/guest/crash_replay.sh"
