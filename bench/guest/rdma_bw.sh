# Guest side of bench/rdma-guest (runs in the qemu guest of tests/vm, Soft-RoCE):
# RDMA WRITE bandwidth of rdma_writer into rdma_target's region, the region either an
# mmap of a file on rdmafs (default options, ext4 backing on a loop device) or anonymous
# memory, in the same boot, runs interleaved. Prints one "run SIDE MIB_PER_S" line per
# run and a final "result anon=... rdmafs=... ratio=..." line of medians.
#
#   sh rdma_bw.sh [ROUNDS [SECONDS [SIZE [RDMAFS_OPTIONS]]]]   (defaults 5 4 64M "")
. "$RDMAFS_LIB"

rounds=${1:-5} secs=${2:-4} size=${3:-64M} opts=${4:-}
rxe_up
S=/tmp/src M=/tmp/mnt
ext4_up $S 256M
if [ -n "$opts" ]; then
	rdmafs_up $S $M -o "$opts"
else
	rdmafs_up $S $M
fi

# one SIDE: one target, one writer for $secs seconds (whole passes), no fsync (the
# commit is not part of the bandwidth: the writer times the writes only).
one() {
	if [ "$1" = anon ]; then
		bg /tmp/target.log "$TARGET" --anon --size "$size" --no-fsync
	else
		bg /tmp/target.log "$TARGET" --size "$size" --no-fsync $M/bench.dat
	fi
	_t=$BG_PID
	wait_for_line /tmp/target.log 'listening on' || fail "rdma_target ($1) did not start"
	"$WRITER" --size "$size" --duration "$secs" --quiet "$RXE_ADDR" >/tmp/writer.log 2>&1 ||
		{ cat /tmp/writer.log /tmp/target.log; fail "rdma_writer ($1) failed"; }
	wait $_t || { cat /tmp/target.log; fail "rdma_target ($1) failed"; }
	_bw=$(result_field /tmp/writer.log mib_per_s)
	[ "$(result_field /tmp/writer.log match)" = 1 ] || fail "$1: checksum mismatch"
	if [ "${2:-}" = warmup ]; then
		echo "warmup $1 $_bw"
	else
		echo "run $1 $_bw"
		eval "all_$1=\"\$all_$1 $_bw\""
	fi
}
median() { printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

all_anon="" all_rdmafs=""
# A warm-up of each side first (staging populated, caches warm), not counted.
one anon warmup
one rdmafs warmup
i=0
while [ $i -lt "$rounds" ]; do
	# Alternate which side goes first: drifts of the host's load hit both alike.
	if [ $((i % 2)) = 0 ]; then one anon; one rdmafs; else one rdmafs; one anon; fi
	i=$((i + 1))
done
a=$(median "$all_anon")
r=$(median "$all_rdmafs")
echo "result anon=$a rdmafs=$r ratio=$(awk -v a="$a" -v r="$r" 'BEGIN { printf "%.3f", r / a }')" \
	"rounds=$rounds seconds=$secs size=$size anon_runs=$(echo $all_anon | tr ' ' ,)" \
	"rdmafs_runs=$(echo $all_rdmafs | tr ' ' ,)"
rdmafs_down $M || fail "rdmafs exited $?"
