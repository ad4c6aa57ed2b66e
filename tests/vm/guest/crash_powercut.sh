# Power cut (issue 11 section 6): ext4 and xfs on dm-flakey under rdmafs, every write
# dropped from a mark on; after the unmounts the device must hold the state of that
# durability point and fsck clean. The workload, checker and options are crash_replay's:
#
#   tests/vm/run crash_powercut [SEED [OPS [nodrop|drop]]]
set -- "${1:-1}" "${2:-10}" "${3:-drop}" "powercut:ext4 powercut:xfs"
. "$RDMAFS_SRC/tests/vm/guest/crash_replay.sh"
