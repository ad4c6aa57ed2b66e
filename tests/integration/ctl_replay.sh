#!/bin/bash
# rdmafsctl replay: a rescue folder (MANIFEST format 2, include/rdmafs/manifest.h: the
# backing root, then per file "file N.data SIZE DEV INO UID BTIME_S BTIME_NS REL") is
# copied over its backing files, truncated to size and fsynced; bad lines are reported,
# exit 1. The daemon's own rescue at shutdown (flusher_rescue) writes this format.
. "$(dirname "$0")/lib.sh"
R=$T/rescue B=$T/backing
mkdir -p "$R" "$B"
head -c 300000 /dev/urandom >"$R/0.data"
head -c 5000 /dev/urandom >"$R/1.data"
head -c 1000000 /dev/zero >"$B/big"		# longer than the rescued data: truncated
echo old >"$B/small"
mkdir "$B/sub"; echo old >"$B/sub/$(printf 'a b\tc\nd')"	# space, tab, newline
cp "$R/1.data" "$R/2.data"
id_of() { stat -c '%d %i %u 0 0' "$1"; }	# btime 0 0: not compared
root_line() { echo "root $B $(stat -c '%d %i' "$B")"; }
{
	echo '# rdmafs rescue'
	echo 'rdmafs-rescue 2'
	root_line
	echo "file 0.data 300000 $(id_of "$B/big") big"
	echo "file 1.data 4000 $(id_of "$B/small") small"
	echo "file 2.data 4000 $(id_of "$B/sub/$(printf 'a b\tc\nd')") sub/a\\040b\\011c\\012d"
} >"$R/MANIFEST"
"$RDMAFSCTL" replay "$R" >"$T/out" || fail "replay: $(cat "$T/out")"
same_file "$R/0.data" "$B/big"
[ "$(stat -c %s "$B/small")" = 4000 ] || fail "size not applied"
cmp -s -n 4000 "$R/1.data" "$B/small" || fail "content of small"
cmp -s -n 4000 "$R/2.data" "$B/sub/$(printf 'a b\tc\nd')" || fail "name with a tab and a newline"
grep -q '3 file(s) replayed, 0 failed' "$T/out" || fail "summary: $(cat "$T/out")"

# malformed lines and a missing target: reported with file:line, exit 1, others still done
{
	echo 'rdmafs-rescue 2'
	root_line
	echo "file 0.data notanumber $(id_of "$B/big") big"
	echo "file ../etc 1 $(id_of "$B/big") big"
	echo "file 1.data 10 $(id_of "$B/big") missing/x"
	echo "file 0.data 300000 $(id_of "$B/big") big"
	echo "file 0.data 300000 $(id_of "$B/big") ../big"
	printf 'file 0.data 300000 %s big\tx\n' "$(id_of "$B/big")"
} >"$R/MANIFEST"
: >"$B/big"
out=$("$RDMAFSCTL" replay "$R" 2>&1) && fail "replay of a bad manifest succeeded"
echo "$out" | grep -q 'MANIFEST:3: malformed' || fail "line 3 not reported: $out"
echo "$out" | grep -q 'MANIFEST:4: malformed' || fail "line 4 not reported: $out"
echo "$out" | grep -q 'missing/x' || fail "missing target not reported: $out"
echo "$out" | grep -q 'MANIFEST:7: malformed' || fail "'..' not refused: $out"
echo "$out" | grep -q 'MANIFEST:8: malformed' || fail "raw tab not refused: $out"
same_file "$R/0.data" "$B/big"
# a format 1 MANIFEST (paths only) is refused as a whole
printf '0.data\t300000\t%s\n' "$B/big" >"$R/MANIFEST"
: >"$B/big"
"$RDMAFSCTL" replay "$R" 2>/dev/null && fail "replay of a format 1 MANIFEST"
[ ! -s "$B/big" ] || fail "format 1 MANIFEST replayed"
"$RDMAFSCTL" replay "$T/nonexistent" 2>/dev/null && fail "replay of a missing folder"

# End to end: a commit fails with ENOSPC; stat shows the error, flush exits 1; the daemon
# writes a rescue folder at unmount; after freeing space, replay restores the data.
require_mount_env
loop_fs 16M ext4 "$T/lo"
mkdir "$T/lo/src"
mount_rdmafs "$T/lo/src" "$T/mnt" -o flush_interval=0,flush_on_close=no,shutdown_timeout=1,rescue_dir=$T/rescue
dd if=/dev/zero of="$T/lo/filler" bs=1M status=none 2>/dev/null || true
sync
head -c 4M /dev/urandom >"$T/expected"
cp "$T/expected" "$T/mnt/f"
out=$("$RDMAFSCTL" flush "$T/mnt/f" 2>&1) && fail "flush on a full backing FS succeeded"
echo "$out" | grep -q 'No space left' || fail "flush error: $out"
"$RDMAFSCTL" stat --json "$T/mnt/f" | grep -q '"last_error":"No space left on device"' ||
	fail "stat does not show the commit error"
"$RDMAFSCTL" stat "$T/mnt/f" | grep -q 'No space left' || fail "human stat without the error"
rc=0; unmount_rdmafs "$T/mnt" || rc=$?
[ $rc != 0 ] || fail "daemon exit 0 with uncommitted data"
rescue=$(ls -d "$T/rescue"/*/ | head -1)
[ -f "$rescue/MANIFEST" ] || fail "no rescue folder"
cmp -s "$T/expected" "$T/lo/src/f" && fail "backing file complete before replay?"
rm "$T/lo/filler"
"$RDMAFSCTL" replay "$rescue" || fail "replay of the daemon's rescue folder"
same_file "$T/expected" "$T/lo/src/f"
check_daemon_log 'commit|rescue|shutdown'
exit 0
