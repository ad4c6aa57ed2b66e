#!/bin/bash
# staging_budget and growth through write(2) (issue 11, 4): thp staging lives on a
# private tmpfs of the budget's size, so the kernel refuses the writer with ENOSPC; shmem
# staging (memfds, sealable, no size limit) has writable opens' writes served by the daemon
# (budget_enforce=strict, the default), which charges growth first: an unprivileged
# writer gets ENOSPC at once, nothing past the budget is staged, the file's counter says
# so and its data before the refusal is committed. With budget_enforce=deferred the
# growth is noticed within a second, charged and logged naming the file.
. "$(dirname "$0")/lib.sh"
require_mount_env
M=$T/mnt S=$T/src
mkdir -p "$S"
staged() {
	"$RDMAFSCTL" stat --json "$M" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["staged_bytes"])'
}

SHMEM_KNOB=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [ -r $SHMEM_KNOB ] && ! grep -q '\[deny\]' $SHMEM_KNOB; then
	mount_rdmafs "$S" "$M" -o staging=thp,staging_budget=64M,flush_interval=0
	require_passthrough
	rc=0
	dd if=/dev/zero of="$M/big" bs=1M count=128 status=none 2>"$T/dd.err" || rc=$?
	[ $rc != 0 ] && grep -q "No space left" "$T/dd.err" ||
		fail "thp: a 128 MiB write(2) with staging_budget=64M: rc=$rc $(cat "$T/dd.err")"
	s=$(staged)
	[ "$s" -le $((64 << 20)) ] || fail "thp: $s bytes staged over a 64 MiB budget"
	unmount_rdmafs "$M" || fail "thp: daemon exit code $?"
	note "thp: write(2) past the budget refused with ENOSPC, $s bytes staged"
fi

mount_rdmafs "$S" "$M" -o staging=shmem,staging_budget=64M,flush_interval=0
require_passthrough
command -v setpriv >/dev/null || skip "setpriv missing"
chmod 755 "$T"
mkdir -m 1777 "$M/pub"
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
# write(2) in 1 MiB blocks until refused, then pwrite past the budget, then fsync: all
# through one descriptor of the unprivileged writer. Prints the bytes written.
as_user /usr/bin/python3 - "$M/pub/w" >"$T/w.out" <<'PY' || fail "shmem strict: writer: $(cat "$T/w.out")"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
blk = bytes(range(256)) * 4096
done = 0
while True:
    try:
        n = os.write(fd, blk)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        break
    done += n
    if done > 256 << 20:
        sys.exit("no ENOSPC after %d bytes" % done)
try:
    os.pwrite(fd, b"x" * 4096, 100 << 20)
    sys.exit("pwrite at 100 MiB past a 64 MiB budget succeeded")
except OSError as e:
    if e.errno != errno.ENOSPC:
        raise
os.fsync(fd)
os.close(fd)
print(done)
PY
w=$(cat "$T/w.out")
[ "$w" -gt $((32 << 20)) ] && [ "$w" -le $((64 << 20)) ] ||
	fail "shmem strict: $w bytes written before ENOSPC with a 64 MiB budget"
[ "$(stat -c %s "$M/pub/w")" = "$w" ] || fail "shmem strict: size $(stat -c %s "$M/pub/w") != $w written"
s=$(staged)
[ "$s" -le $((64 << 20)) ] || fail "shmem strict: $s bytes staged over a 64 MiB budget"
refusals=$("$RDMAFSCTL" stat --json "$M/pub/w" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["budget_refusals"])')
[ "$refusals" -ge 2 ] || fail "shmem strict: budget_refusals of the file is $refusals, not >= 2"
# What was written before the refusal is in the backing file (fsync committed it).
python3 - "$S/pub/w" "$w" <<'PY' || fail "shmem strict: backing file differs from what was written"
import sys
want = (bytes(range(256)) * 4096)
with open(sys.argv[1], "rb") as f:
    data = f.read()
assert len(data) == int(sys.argv[2]), (len(data), sys.argv[2])
for off in range(0, len(data), len(want)):
    assert data[off:off + len(want)] == want[:len(data) - off], off
PY
rm "$M/pub/w"
note "shmem strict: write(2) refused with ENOSPC after $w bytes, $s bytes staged, $refusals refusals counted"
rc=0
truncate -s 200M "$M/big3" 2>"$T/tr.err" || rc=$?
[ $rc != 0 ] || fail "shmem: truncate over the budget succeeded"
grep -q "truncate ino=.* refused, staging_budget" "$DAEMON_LOG" || fail "truncate over budget not logged"
unmount_rdmafs "$M" || fail "shmem: daemon exit code $?"

mount_rdmafs "$S" "$M" -o staging=shmem,staging_budget=64M,flush_interval=0,budget_enforce=deferred
exec 3<>"$M/big2"
dd if=/dev/zero of="$M/big2" bs=1M count=96 conv=notrunc status=none
over() { [ "$(staged)" -gt $((64 << 20)) ] && grep -q "big2 grew to" "$DAEMON_LOG"; }
wait_for 10 over || fail "shmem: growth past the budget not charged or not logged: $(staged)"
exec 3>&-
rc=0
truncate -s 200M "$M/big3" 2>"$T/tr.err" || rc=$?
[ $rc != 0 ] || fail "shmem: truncate over the budget succeeded"
grep -q "truncate ino=.* refused, staging_budget" "$DAEMON_LOG" || fail "truncate over budget not logged"
unmount_rdmafs "$M" || fail "shmem: daemon exit code $?"
check_daemon_log
