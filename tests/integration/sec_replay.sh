#!/bin/bash
# Issue 12 item 1: root's "rdmafsctl replay" writes a rescued file only to that same file,
# reached below the backing root without following a symlink. A user whose files could not
# be committed (they filled the backing filesystem) and were rescued at unmount replaces
# them with a symlink to a root-only file, a symlinked parent directory, and a new file:
# replay refuses all three and changes nothing; the untouched one is replayed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
loop_fs 24M ext4 "$T/lo"
tune2fs -m 0 "$(findmnt -no SOURCE "$T/lo")" >/dev/null	# no blocks kept for root
B=$T/lo/src M=$T/mnt
mkdir -p "$B/d"; chown -R "$U" "$B"; chmod 755 "$T/lo"
mount_rdmafs "$B" "$M" -o flush_interval=0,flush_on_close=no,shutdown_timeout=1,rescue_dir=$T/rescue
as_user sh -c "dd if=/dev/zero of='$B/filler' bs=1M status=none 2>/dev/null" || true
sync
for f in f d/g h ok; do
	as_user sh -c "head -c 2M /dev/urandom >'$M/$f'"
	cp "$M/$f" "$T/want.${f//\//_}"
done
rc=0; unmount_rdmafs "$M" || rc=$?
[ $rc != 0 ] || fail "daemon exit 0 with uncommitted data"
rescue=$(ls -d "$T/rescue"/*/ | head -1)
[ -f "$rescue/MANIFEST" ] || fail "no rescue folder"
grep -c '^file ' "$rescue/MANIFEST" | grep -qx 4 || fail "MANIFEST: $(cat "$rescue/MANIFEST")"

# root-only files the attack aims at
echo precious >"$T/victim"; chmod 600 "$T/victim"
mkdir -m 700 "$T/rootdir"; echo precious >"$T/rootdir/g"
# the attack, as the user
as_user rm "$B/f" "$B/h" "$B/filler"
as_user ln -s "$T/victim" "$B/f"
as_user sh -c "rm -r '$B/d' && ln -s '$T/rootdir' '$B/d'"
as_user sh -c "echo mine >'$B/h'"
cp "$B/h" "$T/h.before"

out=$("$RDMAFSCTL" replay "$rescue" 2>&1) && fail "replay succeeded: $out"
[ "$(cat "$T/victim")" = precious ] || fail "root-only file overwritten through a symlink"
[ "$(cat "$T/rootdir/g")" = precious ] || fail "root-only file overwritten through a symlinked dir"
cmp -s "$B/h" "$T/h.before" || fail "a different file at a rescued path was overwritten"
[ "$(stat -c %U "$T/victim")" = root ] || fail "victim changed"
echo "$out" | grep -q 'replay .* -> f: .*refused' || fail "f: $out"
echo "$out" | grep -q 'replay .* -> d/g: a symlink on the way, refused' || fail "d/g: $out"
echo "$out" | grep -q 'replay .* -> h: not the rescued file any more, refused' || fail "h: $out"
echo "$out" | grep -q '1 file(s) replayed, 3 failed' || fail "summary: $out"
same_file "$T/want.ok" "$B/ok"
check_daemon_log 'commit|rescue|shutdown'
