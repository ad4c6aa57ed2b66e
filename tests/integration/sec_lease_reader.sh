#!/bin/bash
# Issue 12 item 2: a lease needs write access (or ownership), and leases per user are
# capped. A user who can only read root's file cannot take a lease on it, so root's
# truncate goes through at once; a user's leases on their own file stop at the cap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sec_lib.sh"
require_mount_env
require_user
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,lease_break_time=3,lease_expire=deny
M=$T/mnt S=$T/src
chmod 755 "$S"
head -c 1M /dev/urandom >"$S/pub"; chmod 644 "$S/pub"
echo mine >"$S/mine"; chown "$U" "$S/mine"; chmod 644 "$S/mine"
exec 3<>"$M/pub" 4<>"$M/mine"	# both staged

# The attack: a read-only open of root's file, then a lease on it.
out=$(as_user timeout 20 "$CLIENT" lease "$M/pub" 0 r | head -1) || true
[ "$out" = "err EBADF" ] || fail "lease through a read-only fd of root's file: $out"
[ "$("$RDMAFSCTL" stat --json "$M/pub" | json_field leases)" = 0 ] || fail "a lease is held"
start=$SECONDS
truncate -s 4096 "$M/pub" || fail "root's truncate failed"
[ $((SECONDS - start)) -lt 2 ] || fail "root's truncate waited for a lease break"
[ "$(stat -c %s "$M/pub")" = 4096 ] || fail "truncate not applied"

# Ownership is enough: a read-only open of their own file.
"${AS_USER[@]}" "$CLIENT" lease "$M/mine" 0 r >"$T/own_lease" & hold=$!
wait_for 10 grep -q held "$T/own_lease" || fail "owner's lease via a read-only fd: $(cat "$T/own_lease")"
kill $hold; wait $hold 2>/dev/null || true
leases_of() { "$RDMAFSCTL" stat --json "$1" | json_field leases; }
leases_zero() { [ "$(leases_of "$1")" = 0 ]; }
wait_for 10 leases_zero "$M/mine" || fail "owner's lease not released"

# The cap: 100 leases asked on their own file, 64 granted, the rest ENOLCK.
SOCK=$(ctl_sock)
coproc FL { as_user "$PY" "$FLOOD" "$SOCK" leases 100 "$M/mine"; }
fl_out=${FL[0]} fl_in=${FL[1]} fl_pid=$FL_PID
read -r -t 60 line <&"$fl_out" || fail "lease flood did not answer"
[ "$line" = "granted=64 ENOLCK=36" ] || fail "lease cap: $line"
[ "$("$RDMAFSCTL" stat --json "$M/mine" | json_field leases)" = 64 ] || fail "leases held"
# root is not capped, and others' files are not blocked by the cap
"$CLIENT" lease "$M/pub" 0 rw >"$T/root_lease" & rl=$!
wait_for 10 grep -q held "$T/root_lease" || fail "root's lease refused: $(cat "$T/root_lease")"
kill $rl; wait $rl 2>/dev/null || true
exec {fl_in}>&-
wait "$fl_pid" || true
wait_for 10 leases_zero "$M/mine" || fail "leases not released with their connections"

exec 3>&- 4>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
