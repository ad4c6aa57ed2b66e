#!/bin/bash
# A holder of a writable staging fd (rdmafs_map) resizes or seals it behind the daemon
# (issue 12, item 8): the daemon keeps serving, commits what staging holds or fails
# loudly, never reports success for a commit it did not do, and recovers once the holder
# is gone. The holder is an unprivileged user with write access to the file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hugetlb_lib.sh"
require_mount_env
U=rdmafs-test
id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
	skip "cannot create user $U"
as_user() { runuser -u "$U" -- "$@"; }
MAPFD=$RDMAFS_BUILD/tests/map-fd
as_user test -x "$MAPFD" || skip "$U cannot run the build's binaries"
chmod 755 "$T"
HELPER=$RDMAFS_BUILD/tests/rdmafs-testhelper

# setup MODE: mount with staging=MODE; SOCK is the control socket.
setup() {
	S=$T/src-$1 M=$T/mnt-$1
	mount_rdmafs "$S" "$M" -o "staging=$1,hugetlb_fallback=no,flush_interval=1,flush_on_close=no"
	chmod 755 "$S"
	SOCK=$(sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" | tail -1)
	[ -S "$SOCK" ] || fail "no control socket"
}
staged_files() { "$RDMAFSCTL" stat --json "$M" | python3 -c 'import json,sys; d = json.load(sys.stdin); d = d[0] if isinstance(d, list) else d; print(d["files"])'; }
fsync_ok() { python3 -c "import os; fd = os.open('$1', os.O_RDWR); os.fsync(fd)"; }
alive() { kill -0 "$DAEMON_PID" || fail "daemon died (see log)"; }

# --- shmem: seals added by the holder ---
setup shmem
head -c 1M /dev/urandom >"$S/f"; chown "$U" "$S/f"
exec 3<>"$M/f"
printf ROOT1 | dd of="$M/f" bs=1 seek=100 conv=notrunc status=none
# F_SEAL_GROW and F_SEAL_SHRINK: the daemon's truncate fails loudly, nothing changes
[ "$(as_user "$MAPFD" "$SOCK" "$M/f" seal=grow seal=shrink)" = "ok seal=grow
ok seal=shrink" ] || fail "holder could not seal"
truncate -s 10 "$M/f" 2>/dev/null && fail "truncate succeeded on a size-sealed staging"
[ "$(stat -c %s "$M/f")" = 1048576 ] || fail "size changed"
fsync_ok "$M/f" || fail "fsync after holder seals"
cmp -s "$M/f" "$S/f" || fail "commit after holder seals"
exec 3>&-
# recovery: once nobody uses it the staging can be sealed and dropped (staging stays
# resident after the last close: rdmafsctl evict drops it); a new one is clean
evicted() { "$RDMAFSCTL" evict "$M" >/dev/null; test "$(staged_files)" = 0; }
wait_for 10 evicted || fail "staging with holder seals never dropped"
truncate -s 10 "$M/f" || fail "truncate after the holder left"
[ "$(stat -c %s "$S/f")" = 10 ] || fail "truncate not applied"

# F_SEAL_SEAL without a write seal: never sealable; stays staged, commits still work
head -c 1M /dev/urandom >"$S/g"; chown "$U" "$S/g"
exec 3<>"$M/g"
[ "$(as_user "$MAPFD" "$SOCK" "$M/g" seal=seal)" = "ok seal=seal" ] || fail "holder F_SEAL_SEAL"
printf ROOT2 | dd of="$M/g" bs=1 seek=200 conv=notrunc status=none
fsync_ok "$M/g" || fail "fsync of a F_SEAL_SEAL staging"
cmp -s "$M/g" "$S/g" || fail "commit of a F_SEAL_SEAL staging"
exec 3>&-
sealing_refused() {
	"$RDMAFSCTL" evict "$M" >/dev/null
	grep -q "sealed the staging memfd against seals" "$DAEMON_LOG"
}
wait_for 10 sealing_refused ||
	fail "F_SEAL_SEAL not noticed"
alive
cmp -s "$M/g" "$S/g" || fail "F_SEAL_SEAL staging changed"
[ "$(grep -c "sealed the staging memfd against seals" "$DAEMON_LOG")" = 1 ] ||
	fail "F_SEAL_SEAL logged more than once"

# F_SEAL_WRITE + F_SEAL_SEAL: that is a seal; the next writable open gets a fresh memfd
head -c 64K /dev/urandom >"$S/h"; chown "$U" "$S/h"
exec 3<"$M/h"
[ "$(as_user "$MAPFD" "$SOCK" "$M/h" seal=write seal=seal 2>&1 | tail -1)" = "ok seal=seal" ] ||
	true	# F_SEAL_WRITE needs no writable mapping: the result is checked below
exec 3>&-
exec 3<>"$M/h"
printf ROOT3 >&3 || fail "write after a holder's write seal"
fsync_ok "$M/h" || fail "fsync after a holder's write seal"
cmp -s "$M/h" "$S/h" || fail "commit after a holder's write seal"
exec 3>&-
umount "$M"; wait "$SUPERVISOR_PID" || fail "daemon exit code"
check_daemon_log 'staging shrank|map holder'

# --- hugetlb: the holder shrinks the memfd ---
if try_reserve_hugepages 8; then
	setup hugetlb
	head -c 3M /dev/urandom >"$S/f"; chown "$U" "$S/f"
	exec 3<>"$M/f"
	printf ROOT4 | dd of="$M/f" bs=1 seek=100 conv=notrunc status=none
	[ "$(as_user "$MAPFD" "$SOCK" "$M/f" shrink=0)" = "ok shrink=0" ] || fail "holder shrink"
	# fsync succeeds only if the backing file is what staging holds now
	if fsync_ok "$M/f" 2>/dev/null; then
		cmp -s "$M/f" "$S/f" || fail "fsync succeeded without committing staging"
	fi
	alive
	printf ROOT5 >&3 && fsync_ok "$M/f" || fail "no write after the shrink"
	cmp -s "$M/f" "$S/f" || fail "commit after the shrink"
	exec 3>&-
	alive
	umount "$M"; wait "$SUPERVISOR_PID" || fail "daemon exit code"
	check_daemon_log 'staging shrank|map holder'
else
	note "hugetlb part not run: $HP_WHY"
fi
