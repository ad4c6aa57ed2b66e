#!/bin/bash
# One stager per backing file: two rdmafs mounts of one backing directory (what two nodes
# over a shared filesystem are) cannot stage the same file at once. While mount A has it
# staged (an OFD lock on the backing file), a writable open through mount B fails with
# EBUSY and B's data never overwrites A's; read-only opens through B work; once A has
# committed and released the file, B stages it. Other files are not affected. A clean
# resident copy holds no lock: after B committed its bytes, A's writable open re-takes the
# lock (EBUSY while B has it open) and stages B's bytes again, never its stale copy.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src A=$T/a B=$T/b
backing_dir "$S" 64M
random_file "$S/f" 300K
mount_rdmafs "$S" "$A" -o flush_interval=0,flush_on_close=yes
pid_a=$DAEMON_PID sup_a=$SUPERVISOR_PID
mount_rdmafs "$S" "$B" -o flush_interval=0,flush_on_close=yes
require_passthrough

random_file "$T/x" 300K
exec 3<>"$A/f"				# A stages f and keeps it open
dd if="$T/x" of=/dev/fd/3 conv=notrunc status=none
out=$(python3 -c 'import os,sys
try: os.open(sys.argv[1], os.O_WRONLY)
except OSError as e: print(e.errno); sys.exit(0)
print("opened")' "$B/f")
[ "$out" = 16 ] || fail "writable open through mount B while A stages f: '$out', expected EBUSY (16)"
cat "$B/f" >/dev/null || fail "read-only open through B"
[ "$("$HELPER" pwrite "$B/g" 0 1000 5)" = ok ] || fail "another file through B"
[ "$("$HELPER" fsync "$A/f")" = ok ] || fail "fsync through A"
same_file "$S/f" "$T/x"
exec 3>&-
# A commits at the last close; found clean with no writer, it gives up the lock (the
# staging stays resident).
wait_for 20 "$HELPER" pwrite "$B/f" 4096 100 7 >/dev/null 2>&1 ||
	fail "B could not stage f after A closed it"
"$HELPER" pwrite "$T/x" 4096 100 7 >/dev/null
[ "$("$HELPER" fsync "$B/f")" = ok ] || fail "fsync through B"
same_file "$S/f" "$T/x"

# B stages and writes f and keeps it open: A (resident, stale copy) is refused.
exec 4<>"$B/f"
random_file "$T/y" 300K
dd if="$T/y" of=/dev/fd/4 conv=notrunc status=none
wopen() {
	python3 -c 'import os,sys
try: os.close(os.open(sys.argv[1], os.O_WRONLY))
except OSError as e: print(e.errno); sys.exit(0)
print("opened")' "$1"
}
out=$(wopen "$A/f")
[ "$out" = 16 ] || fail "writable open through A while B stages f: '$out', expected EBUSY (16)"
[ "$("$HELPER" fsync "$B/f")" = ok ] || fail "fsync through B (second)"
exec 4>&-
same_file "$S/f" "$T/y"
# B gives up the lock after its commit at the last close; A then stages B's bytes.
a_opens() { [ "$(wopen "$A/f")" = opened ]; }
wait_for 20 a_opens ||
	fail "A could not reopen f for writing after B closed it"
cmp -s "$A/f" "$T/y" || fail "A's reopen of f shows its stale resident copy, not B's bytes"
exec 5<>"$A/f"
dd if=/dev/zero of=/dev/fd/5 bs=1 count=10 seek=100 conv=notrunc status=none
dd if=/dev/zero of="$T/y" bs=1 count=10 seek=100 conv=notrunc status=none
[ "$("$HELPER" fsync "$A/f")" = ok ] || fail "fsync through A (after B)"
exec 5>&-
same_file "$S/f" "$T/y"
unmount_rdmafs "$B" || fail "daemon B exit code $?"
DAEMON_PID=$pid_a SUPERVISOR_PID=$sup_a
unmount_rdmafs "$A" || fail "daemon A exit code $?"
same_file "$S/f" "$T/y"
check_daemon_log
