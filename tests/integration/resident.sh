#!/bin/bash
# Staging stays resident after the last close (issue 14): a reopen does no fill; close
# (flush_on_close=no, the default) does not fdatasync; a commit with nothing changed does
# not fdatasync; a file that cannot have changed is not scanned by the periodic pass;
# staging_budget pressure evicts the least recently used idle file; a backing file changed
# behind rdmafs is seen at the next open, rdmafs's own rename, chmod or truncate is not.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt

metric() {
	"$RDMAFSCTL" metrics --no-scan "$M" | awk -v n="$1" '$1 ~ "^" n "({|$)" {print $2}'
}
fstat_json() {	# fstat_json FILE KEY: a per-file field of rdmafsctl stat --json
	"$RDMAFSCTL" stat --json "$1" | python3 -c 'import json,sys
d = json.load(sys.stdin); d = d[0] if isinstance(d, list) else d
print(str(d.get(sys.argv[1], "")).lower())' "$2"
}
poke() { printf "$2" | dd of="$1" bs=1 seek="${3:-0}" conv=notrunc status=none; }

# --- reopen: no fill, no sync at close; fsync syncs once, a clean fsync does not ---
mount_rdmafs "$S" "$M" -o flush_interval=0
require_passthrough
head -c 4M /dev/urandom >"$S/big"
poke "$M/big" A
fills=$(metric rdmafs_files_staged_total)
[ "$fills" = 1 ] || fail "first writable open: $fills fills"
for i in 1 2 3 4 5; do poke "$M/big" "$i" "$i"; done
[ "$(metric rdmafs_files_staged_total)" = 1 ] || fail "reopen filled the staging again"
[ "$(metric rdmafs_staged_files)" = 1 ] || fail "staging not resident after close"
[ "$(fstat_json "$M/big" syncs)" = 0 ] || fail "close fdatasynced (flush_on_close=no)"
[ "$(fstat_json "$M/big" sealed)" = false ] || fail "resident staging was sealed"
python3 -c "import os; fd = os.open('$M/big', os.O_RDWR); os.fsync(fd); os.fsync(fd)"
[ "$(fstat_json "$M/big" syncs)" = 1 ] || fail "fsync twice: $(fstat_json "$M/big" syncs) syncs, want 1"
cmp -s "$M/big" "$S/big" || fail "fsync did not commit"
unmount_rdmafs "$M" || fail "daemon exit code $?"

# --- periodic pass: an idle clean file is not scanned, a writable open one is ---
mount_rdmafs "$S" "$M" -o flush_interval=1
head -c 4K /dev/urandom >"$S/busy"
poke "$M/big" Z 7
wait_for 10 cmp -s "$M/big" "$S/big" || fail "periodic commit of big"
exec 3<>"$M/busy"
b0=$(fstat_json "$M/busy" scanned_bytes)
i0=$(fstat_json "$M/big" scanned_bytes)
# three passes over the open file, none over the idle one (4 KiB scanned per pass)
busy_scanned() { [ "$(fstat_json "$M/busy" scanned_bytes)" -ge $((b0 + 3 * 4096)) ]; }
wait_for 20 busy_scanned ||
	fail "writable open file not scanned by the periodic pass"
[ "$(fstat_json "$M/big" scanned_bytes)" = "$i0" ] || fail "idle clean file scanned again"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"

# --- a backing file changed behind rdmafs is seen at the next open ---
mount_rdmafs "$S" "$M" -o flush_interval=1
printf 'old contents\n' >"$S/r"
poke "$M/r" O
wait_for 10 grep -q '^Old contents$' "$S/r" || fail "commit of r"
n=$(metric rdmafs_files_staged_total)
printf 'changed behind rdmafs, longer\n' >"$S/r"
wait_for 5 grep -qx 'changed behind rdmafs, longer' "$M/r" ||
	fail "read after a backing change: $(cat "$M/r")"
poke "$M/r" C
[ "$(metric rdmafs_files_staged_total)" = $((n + 1)) ] || fail "changed file not staged again"
python3 -c "import os; fd = os.open('$M/r', os.O_RDWR); os.fsync(fd)"
grep -qx 'Changed behind rdmafs, longer' "$S/r" || fail "r after commit: $(cat "$S/r")"
unmount_rdmafs "$M" || fail "daemon exit code $?"

# --- rdmafs's own rename, chmod and truncate are not changes behind its back: the clean,
# unlocked resident copy is neither staged again nor refused (EBUSY) to a writer ---
mount_rdmafs "$S" "$M" -o flush_interval=1
printf 'own changes\n' >"$S/o"
poke "$M/o" O
wait_for 10 grep -qx 'Own changes' "$S/o" || fail "commit of o"
# idle and clean: the periodic passes stop reading it
settled() {
	local a b
	a=$(fstat_json "$M/o" scanned_bytes); sleep 1.5; b=$(fstat_json "$M/o" scanned_bytes)
	[ "$a" = "$b" ]
}
wait_for 20 settled || fail "o still scanned by every pass"
n=$(metric rdmafs_files_staged_total)
exec 4<"$M/o"		# a reader keeps it open across the rename
mv "$M/o" "$M/p" && chmod 600 "$M/p" || fail "rename or chmod through the mount"
poke "$M/p" W || fail "open for writing after rdmafs's own rename refused"
exec 4<&-
truncate -s 5 "$M/p" || fail "truncate through the mount"
poke "$M/p" w
[ "$(metric rdmafs_files_staged_total)" = "$n" ] ||
	fail "own rename, chmod or truncate taken for a change behind rdmafs (staged again)"
python3 -c "import os; fd = os.open('$M/p', os.O_RDWR); os.fsync(fd)"
[ "$(cat "$S/p")" = "wwn c" ] || fail "p after commit: $(cat "$S/p")"
unmount_rdmafs "$M" || fail "daemon exit code $?"

# --- staging_budget pressure evicts the least recently used idle file ---
mount_rdmafs "$S" "$M" -o flush_interval=1,staging_budget=8M
for f in a b c; do head -c 3M /dev/urandom >"$S/$f"; done
poke "$M/a" x
poke "$M/b" y
wait_for 10 cmp -s "$M/b" "$S/b" || fail "commit of b"
wait_for 10 cmp -s "$M/a" "$S/a" || fail "commit of a"
cat "$M/a" >/dev/null	# a used last: b is the least recently used
e0=$(metric rdmafs_evictions_total)
poke "$M/c" z		# 9 MiB > 8 MiB: one file goes
[ "$(metric rdmafs_evictions_total)" = $((e0 + 1)) ] || fail "no eviction under budget pressure"
[ "$(fstat_json "$M/b" staged)" = false ] || fail "b (least recently used) not evicted"
[ "$(fstat_json "$M/a" staged)" = true ] || fail "a (recently used) evicted"
[ "$(fstat_json "$M/c" staged)" = true ] || fail "c not staged"
cmp -s "$M/b" "$S/b" || fail "evicted b reads differently"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
