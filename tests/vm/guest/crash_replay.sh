# Crash consistency of rdmafs, proven on a recording block device (issue 11 section 6; the
# anchor is xfstests' log-writes tests, e.g. generic/482):
# - the backing file system (ext4 here, xfs in crash_replay_xfs.sh) sits on dm-log-writes (data and log devices:
#   loop devices over files in the guest's memory); rdmafs-crashload drives a workload
#   through rdmafs (write(2), stores through a mapping, kernel writes through an io_uring
#   long-term pin, truncate, punch hole, rename) with durability points (fsync, fdatasync,
#   `rdmafsctl flush FILE`, `rdmafsctl flush --all`, fsync of the directory after a
#   rename), each followed by a log mark, and now and then drops the page cache;
# - rdmafs-logreplay replays the log onto a zeroed image to every mark and to seeded random
#   points between marks; each state is copied, mounted normally (the journal replays),
#   checked by crash_check.py against the workload's journal (every byte durable before
#   the mark is there, fsync'd files exactly; between marks each 4 KiB block holds old or
#   new bytes, never garbage; sizes in range, exact after a durable truncate), unmounted
#   and checked by e2fsck -fn / xfs_repair -n; the whole log replayed equals the device;
# - power cut (crash_powercut.sh runs this file with the powercut parts): the file system
#   on dm-flakey, switched to drop_writes right after a mark (suspend, load, resume); the
#   workload goes on, both unmount, the device is mounted again: the state of the last
#   durability point, and fsck clean.
# This is also the stable-storage side of tests/integration/fsync_contract.sh: at every
# mark after an fsync, fdatasync or flush of a file, its bytes are exactly on the log.
#
#   tests/vm/run crash_replay [SEED [OPS [nodrop|drop ["PARTS"]]]]
#
# SEED (default 1: CI runs the same states every time; any other explores further) seeds
# the workload and the random points. nodrop: no drop_caches in the workload (to tell issue 11's staging page loss
# from other failures). PARTS: some of replay:ext4 replay:xfs powercut:ext4 powercut:xfs
# (default replay:ext4; crash_replay_xfs.sh: replay:xfs; crash_powercut.sh: the power
# cuts). Three tests, not one: each fits the guest's time limit on a busy host. Prints the counts: replay points checked, bytes verified.
. "$RDMAFS_LIB"

SEED=${1:-1}
OPS=${2:-10}
DROP=--drop-caches
[ "${3:-}" = nodrop ] && DROP=
RANDOM_POINTS=3 # per file system, between marks
SIZE=64M

[ -n "$RDMAFS_BUILD" ] || skip "RDMAFS_BUILD not set: no rdmafs daemon to test"
LOAD=$RDMAFS_BUILD/tests/helpers/rdmafs-crashload
REPLAY=$RDMAFS_BUILD/tests/helpers/rdmafs-logreplay
CTL=$RDMAFS_BUILD/tools/rdmafsctl
CHECK="python3 $RDMAFS_SRC/tests/vm/crash_check.py"
for t in "$LOAD" "$REPLAY" "$CTL"; do
	[ -x "$t" ] || fail "no $t in the build folder"
done
modprobe -a loop ext4 xfs dm-log-writes dm-flakey ||
	skip "this guest kernel has no dm-log-writes / dm-flakey / xfs"
# No udev in the guest: libdevmapper makes the /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1
DMSETUP="dmsetup --noudevsync"
# mkfs.xfs refuses file systems under 300 MiB unless run by fstests; we are a test too
# (small images: fewer blocks to replay, copy and check per state).
export TEST_DIR=/tmp TEST_DEV=1 QA_CHECK_FS=1

log "seed $SEED, $OPS operations per run (rerun: tests/vm/run $RDMAFS_TEST $SEED $OPS)"

mkfs_fs() { # FS DEV
	case $1 in
	ext4) mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$2" ;;
	xfs) mkfs.xfs -q -f -K "$2" ;;
	esac || fail "mkfs.$1 $2 failed"
}

fsck_fs() { # FS DEV
	case $1 in
	ext4) e2fsck -fn "$2" ;;
	xfs) xfs_repair -n "$2" ;;
	esac
}

points=0 bytes=0 exact_marks=0 cuts=0 bad=""
# snap_state FS IMAGE DIR: mount IMAGE (the journal replays), copy its files to DIR,
# unmount, fsck. The files are checked later, all in one run of crash_check.py (python
# starts slowly in this emulated guest). Failures are collected, not fatal.
snap_state() {
	_l=$(losetup -f --show "$2") || fail "losetup $2"
	mkdir -p "$3"
	if ! mount -t "$1" "$_l" "$W/chk" 2>"$W/mount.err"; then
		cat "$W/mount.err"
		bad="$bad $1:$(basename "$3")(mount)"
		losetup -d "$_l"
		return 1
	fi
	cp -a --sparse=always "$W/chk/." "$3/" || fail "copying the files of $2 failed"
	umount "$W/chk" || fail "umount of the checked copy failed"
	if ! fsck_fs "$1" "$_l" >"$W/fsck.out" 2>&1; then
		echo "$1 $(basename "$3"): fsck found errors:"
		tail -n 30 "$W/fsck.out"
		bad="$bad $1:$(basename "$3")(fsck)"
	fi
	losetup -d "$_l"
	points=$((points + 1))
}

# check_states FS ARGS...: crash_check.py over the saved states; counts the bytes.
check_states() {
	_fs=$1
	shift
	$CHECK "$W/journal" "$@" >"$W/check.out" 2>&1
	_rc=$?
	sed "s/^/$_fs /" "$W/check.out" | grep -v ' 0 errors$'
	_b=$(awk '/bytes verified/ { for (i = 1; i < NF; i++) if ($(i + 1) == "bytes") s += $i }
		END { print s + 0 }' "$W/check.out")
	bytes=$((bytes + _b))
	if [ $_rc != 0 ]; then
		bad="$bad $_fs:$(grep -c '[1-9][0-9]* errors$' "$W/check.out")-states"
		cp "$W/journal" "$RDMAFS_RESULTS/journal.$_fs" 2>/dev/null
	fi
}

# replay_run FS: the workload on FS over dm-log-writes, then the replays.
replay_run() {
	fs=$1 W=/tmp/crash-$1
	mkdir -p "$W/back" "$W/mnt" "$W/chk"
	truncate -s $SIZE "$W/data.img" "$W/replay.img"
	truncate -s 1G "$W/log.img"
	dl=$(losetup -f --show "$W/data.img") && ll=$(losetup -f --show "$W/log.img") ||
		fail "losetup failed"
	at_exit "losetup -d $dl $ll 2>/dev/null"
	$DMSETUP create lw-$fs --table "0 $(blockdev --getsz "$dl") log-writes $dl $ll" ||
		fail "dmsetup create log-writes failed"
	at_exit "$DMSETUP remove lw-$fs 2>/dev/null"
	dev=/dev/mapper/lw-$fs
	mkfs_fs $fs $dev
	mount $dev "$W/back" || fail "mount $dev failed"
	at_exit "umount '$W/back' 2>/dev/null"
	rdmafs_up "$W/back" "$W/mnt" -o flush_interval=0,flush_on_close=no
	"$LOAD" --dir "$W/mnt" --journal "$W/journal" --ctl "$CTL" --seed $SEED --ops $OPS \
		$DROP --mark-cmd "$DMSETUP message lw-$fs 0 mark" || fail "the workload failed"
	rdmafs_down "$W/mnt" || fail "rdmafs exited $?"
	umount "$W/back" || fail "umount $W/back failed"
	$DMSETUP remove lw-$fs || fail "dmsetup remove lw-$fs failed"
	# The loop devices stay attached until the replays are done: a loop device detached
	# and at once reused for a state's copy was seen to read as no file system at all.

	"$REPLAY" "$W/log.img" marks >"$W/marks" || fail "cannot read the log"
	cp "$W/marks" "$RDMAFS_RESULTS/marks.$fs" 2>/dev/null
	head -n1 "$W/marks"
	tail -n1 "$W/marks"
	# "TO MARK UNTIL": replay entries before TO; every mark, and random points between
	# two marks (at least one entry past the first, not the second).
	awk -v seed=$SEED -v n=$RANDOM_POINTS '
		BEGIN { k = 0; ngap = 0 }
		$1 == "mark" && $3 ~ /^m[0-9]+$/ { idx[k] = $2; name[k] = $3; k++ }
		END {
			for (i = 0; i < k; i++)
				print idx[i] + 1, name[i], "-"
			# Between marks i and i + 1 when at least one entry lies between them.
			for (i = 0; i + 1 < k; i++)
				if (idx[i + 1] - idx[i] >= 2)
					gap[ngap++] = i
			srand(seed)
			for (j = 0; j < n && ngap > 0; j++) {
				i = gap[int(rand() * ngap)]
				print idx[i] + 2 + int(rand() * (idx[i + 1] - idx[i] - 1)), name[i], name[i + 1]
			}
		}' "$W/marks" | sort -n -k1,1 -u >"$W/points"
	[ -s "$W/points" ] || fail "no marks in the log"
	log "$fs: $(wc -l <"$W/points") replay points"
	args=""
	while read -r to mark until; do
		# Each state replayed from the start onto a zeroed image: no copy of a copy.
		rm -f "$W/snap.img"
		truncate -s $SIZE "$W/snap.img"
		"$REPLAY" "$W/log.img" replay "$W/snap.img" 0 $to >/dev/null ||
			fail "replay to entry $to failed"
		if [ "$until" = - ]; then
			label=$mark@$to
		else
			label=$mark..$until@$to
		fi
		if snap_state $fs "$W/snap.img" "$W/states/$label"; then
			args="$args --mark $mark"
			[ "$until" = - ] || args="$args --until $until"
			args="$args $W/states/$label"
			[ "$until" = - ] && exact_marks=$((exact_marks + 1))
		fi
		rm -f "$W/snap.img"
	done <"$W/points"
	log "$fs: states saved and fsck'd, checking them"
	check_states $fs $args
	# The whole log replayed is the device: the replay tool is right.
	n=$(sed -n 's/^entries \([0-9]*\).*/\1/p' "$W/marks")
	"$REPLAY" "$W/log.img" replay "$W/replay.img" 0 $n >/dev/null || fail "replay failed"
	cmp "$W/replay.img" "$W/data.img" || fail "$fs: the replayed log differs from the device"
	losetup -d $dl $ll
	rm -f "$W/log.img" "$W/replay.img" "$W/data.img"
	log "$fs: done, $points points so far, $bytes bytes verified"
}

# powercut_run FS: FS on dm-flakey; after mark K the device drops every write.
powercut_run() {
	fs=$1 W=/tmp/cut-$1
	mkdir -p "$W/back" "$W/mnt" "$W/chk"
	truncate -s $SIZE "$W/data.img"
	dl=$(losetup -f --show "$W/data.img") || fail "losetup failed"
	at_exit "losetup -d $dl 2>/dev/null"
	sz=$(blockdev --getsz "$dl")
	$DMSETUP create fl-$fs --table "0 $sz linear $dl 0" || fail "dmsetup create failed"
	at_exit "$DMSETUP remove fl-$fs 2>/dev/null"
	mkfs_fs $fs /dev/mapper/fl-$fs
	mount /dev/mapper/fl-$fs "$W/back" || fail "mount failed"
	at_exit "umount '$W/back' 2>/dev/null"
	rdmafs_up "$W/back" "$W/mnt" -o flush_interval=0,flush_on_close=no
	k=$((2 + SEED % 6))
	"$LOAD" --dir "$W/mnt" --journal "$W/journal" --ctl "$CTL" --seed $((SEED + 1)) \
		--ops $OPS $DROP --mark-cmd true --cut-at $k --cut-cmd "$DMSETUP suspend \
		--nolockfs fl-$fs && $DMSETUP load fl-$fs --table '0 $sz flakey $dl 0 0 180 1 \
		drop_writes' && $DMSETUP resume fl-$fs" || fail "the workload failed"
	# The mark the cut followed (the last one if the workload made fewer than K).
	cutmark=$(awk '$1 == "mark" { m = $2 } $1 == "cut" { print m; exit }' "$W/journal")
	[ -n "$cutmark" ] || fail "no power cut in the workload's journal"
	rdmafs_down "$W/mnt" || fail "rdmafs exited $?"
	umount "$W/back" || fail "umount $W/back failed"
	$DMSETUP remove fl-$fs || fail "dmsetup remove fl-$fs failed"
	losetup -d $dl
	log "$fs: power cut after mark $cutmark, writes dropped from there on"
	snap_state $fs "$W/data.img" "$W/states/powercut" &&
		check_states $fs --mark $cutmark --until cut "$W/states/powercut" &&
		cuts=$((cuts + 1))
	rm -f "$W/data.img"
}

for part in ${4:-replay:ext4}; do
	${part%%:*}_run ${part#*:}
done

log "crash harness: $((points - cuts)) replay points checked ($exact_marks at marks), $cuts power cuts, $bytes bytes verified, seed $SEED"
[ -z "$bad" ] || fail "crash consistency violated at:$bad (seed $SEED)"
log "PASS"
