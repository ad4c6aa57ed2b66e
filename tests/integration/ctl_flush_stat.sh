#!/bin/bash
# rdmafsctl stat shows changed bytes after a write and none after rdmafsctl flush, the
# backing file then equals staging; flush --all, the library calls and the ioctl agree.
. "$(dirname "$0")/lib.sh"
require_mount_env
CLIENT=$RDMAFS_BUILD/tests/ctl-client
# Nothing commits behind our back: no periodic write-back, no commit on close.
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no
M=$T/mnt S=$T/src

# jstat PATH: rdmafsctl stat --json PATH into shell variables j_KEY (null for JSON null).
jstat() {
	J=$("$RDMAFSCTL" stat --json "$1") || fail "stat --json $1: $J"
	eval "$(echo "$J" | python3 -c '
import json, shlex, sys
for k, v in json.load(sys.stdin)[0].items():
    print("j_" + k + "=" + shlex.quote("null" if v is None else str(v)))')"
}

"$RDMAFSCTL" --version | grep -q '^rdmafsctl ' || fail "--version"
"$RDMAFSCTL" --help | grep -q 'flush' || fail "--help"
"$RDMAFSCTL" bogus 2>/dev/null && fail "unknown command accepted"

head -c 1000000 /dev/urandom >"$S/f"
exec 3<>"$M/f"		# a writable open keeps the file staged; its close would commit
dd if=/dev/urandom of="$M/f" bs=4096 count=3 seek=10 conv=notrunc status=none
cmp -s "$M/f" "$S/f" && fail "write already in the backing file"

jstat "$M/f"
note "$J"
[ "$j_type" = file ] || fail "type"
[ "$j_staged" = True ] || fail "not staged"
[ "$j_size" = 1000000 ] || fail "size"
changed=$j_changed_bytes
[ "$changed" -ge 12288 ] && [ "$changed" -le 131072 ] || fail "changed_bytes=$changed after a 12 KiB write"
[ "$j_opens" -ge 1 ] || fail "opens"

# The mount: same changed bytes, one staged file.
jstat "$M"
[ "$j_type" = mount ] || fail "mount type"
[ "$j_files" = 1 ] || fail "mount files"
[ "$j_changed_bytes" = "$changed" ] || fail "mount changed_bytes"
"$RDMAFSCTL" stat "$M" "$M/f" | grep -q '^mount' || fail "human stat output"

"$RDMAFSCTL" flush "$M/f" || fail "flush exit code $?"
jstat "$M/f"
[ "$j_changed_bytes" = 0 ] || fail "changed_bytes after flush: $J"
[ "$j_commits" -ge 1 ] || fail "commits"
[ "$j_last_commit" != null ] || fail "last_commit"
[ "$j_last_error" = null ] || fail "last_error"
same_file "$M/f" "$S/f"

# flush --all (root) and the library calls.
dd if=/dev/urandom of="$M/f" bs=1000 count=1 seek=5 conv=notrunc status=none
"$RDMAFSCTL" flush --all "$M" | grep -q 'flushed 1 files' || fail "flush --all"
same_file "$M/f" "$S/f"
dd if=/dev/urandom of="$M/f" bs=1000 count=1 seek=7 conv=notrunc status=none
[ "$("$CLIENT" flush "$M/f" w)" = ok ] || fail "rdmafs_flush"
same_file "$M/f" "$S/f"
dd if=/dev/urandom of="$M/f" bs=1000 count=1 seek=9 conv=notrunc status=none
[ "$("$CLIENT" flush-all "$M")" = ok ] || fail "rdmafs_flush_all"
same_file "$M/f" "$S/f"
dd if=/dev/urandom of="$M/f" bs=1000 count=1 seek=11 conv=notrunc status=none
"$CLIENT" stat "$M/f" | grep -q 'changed=[1-9]' || fail "rdmafs_stat changed"
# --no-scan (rdmafs_stat_flags/rdmafs_mount_stat_flags, RDMAFS_NO_SCAN): nothing hashed,
# changed_bytes unknown (null), where a scan counts the changed kilobyte.
for p in "$M/f" "$M"; do
	"$RDMAFSCTL" stat --json --no-scan "$p" |
		python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; sys.exit(v["changed_bytes"] is not None)' ||
		fail "stat --json --no-scan $p: changed_bytes measured"
	"$RDMAFSCTL" stat --json "$p" |
		python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; sys.exit(not v["changed_bytes"])' ||
		fail "stat --json $p: changed_bytes not measured"
done
[ "$("$CLIENT" ioctl-flush "$M/f")" = ok ] || fail "RDMAFS_IOC_FLUSH"
"$CLIENT" stat "$M/f" | grep -q 'changed=0 ' || fail "rdmafs_stat after ioctl"
"$CLIENT" mount-stat "$M" | grep -q 'ok .*files=1' || fail "rdmafs_mount_stat"
same_file "$M/f" "$S/f"

# An unstaged file: flush and stat still answer (nothing staged, nothing changed).
echo plain >"$S/plain"
jstat "$M/plain"
[ "$j_staged" = False ] || fail "plain staged"
"$RDMAFSCTL" flush "$M/plain" || fail "flush of an unstaged file"
# Not on an rdmafs mount: a clear error, exit 1.
out=$("$RDMAFSCTL" stat /proc/self/status 2>&1) && fail "stat of a non-rdmafs file succeeded"
note "$out"
"$RDMAFSCTL" flush "$M/nonexistent" 2>/dev/null && fail "flush of a missing file succeeded"

# Many clients at once.
cpids=()
for i in $(seq 20); do "$CLIENT" mount-stat "$M" >"$T/par.$i" & cpids+=($!); done
wait "${cpids[@]}"
for i in $(seq 20); do grep -q '^ok' "$T/par.$i" || fail "parallel client $i: $(cat "$T/par.$i")"; done

exec 3>&-
# The socket's name escapes the mount path (systemd style): take it from the daemon.
sock=$(sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" | tail -n 1)
[ -S "$sock" ] || fail "control socket '$sock' (from the daemon log) is not there while mounted"
unmount_rdmafs "$M" || fail "daemon exit code $?"
[ ! -e "$sock" ] || fail "socket $sock left after unmount"
check_daemon_log
