#!/bin/bash
# Issue 14/15: the daemon sends the supervisor the staging memfd and lock of each new
# staged file without waiting for its answer (pipelined PUTs, restart.h). What was sent
# counts: a creator makes 1,500 small files (create, write 4 KiB of its own content,
# close) while the serving generation is killed with SIGKILL three times mid-burst, and
# once more right after the burst (replies still unread). With flush_interval=3600 nothing
# is committed on its own: the data lives only in staging. The creator sees no error
# (no O_EXCL: a CREATE the dead generation had done and the kernel resends finds the
# file, doc/restart.md step 5); every file reads back its content through the mount
# after the last kill, and after `rdmafsctl flush` the backing files hold it too.
. "$(dirname "$0")/lib.sh"
require_mount_env
N=1500
backing_dir "$T/src" 64M ext4
mount_rdmafs "$T/src" "$T/mnt" -o restart=on,flush_interval=3600
require_passthrough
M=$T/mnt S=$T/src
[ "$DAEMON_PID" != "$SUPERVISOR_PID" ] || fail "restart=on: no supervisor runs the daemon"
mkdir "$M/b"

# content of file i: 4 KiB naming it
python3 - "$M/b" "$N" "$T/progress" >"$T/creator.out" 2>"$T/creator.err" <<'PY' &
import os, sys
d, n, prog = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    data = (f"file {i:06d} " * 512)[:4096].encode()
    fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    assert os.write(fd, data) == len(data)
    os.close(fd)
    with open(prog + ".tmp", "w") as p:
        p.write(f"{i + 1}\n")
    os.replace(prog + ".tmp", prog)
print("done")
PY
CREATOR=$!
_pids+=("$CREATOR")
progress() { cat "$T/progress" 2>/dev/null || echo 0; }
made() { [ "$(progress)" -ge "$1" ]; }

kill_gen() {	# kill_gen WHAT: SIGKILL the serving generation, wait for the next
	local pid new
	pid=$(serving_pid "$SUPERVISOR_PID")
	[ "$pid" != "$SUPERVISOR_PID" ] || fail "$1: no daemon generation serves"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
	stat "$M" >/dev/null || fail "$1: stat after the death failed"
	new=$(serving_pid "$SUPERVISOR_PID")
	[ "$new" != "$pid" ] && [ "$new" != "$SUPERVISOR_PID" ] || fail "$1: no new generation"
	note "$1: killed generation $pid at $(progress) files"
}
kills=0
for at in 200 700 1200; do
	wait_for 120 made "$at" ||
		fail "creator stuck at $(progress) files: $(cat "$T/creator.err")"
	kill_gen "mid-burst kill"
	kills=$((kills + 1))
done
rc=0
wait "$CREATOR" || rc=$?
[ $rc = 0 ] && grep -qx done "$T/creator.out" ||
	fail "creator failed (exit $rc): $(cat "$T/creator.err")"
kill_gen "kill right after the burst"
kills=$((kills + 1))

committed=$(python3 - "$S/b" "$N" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
print(sum(open(f"{d}/f{i}", "rb").read(12) == f"file {i:06d} ".encode() for i in range(n)))
PY
)
# verify DIR: every file f0..f$N-1 in DIR holds the 4 KiB the creator wrote.
verify() {
	python3 - "$1" "$N" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
bad = [i for i in range(n)
       if open(f"{d}/f{i}", "rb").read() != (f"file {i:06d} " * 512)[:4096].encode()]
if bad:
    print(f"{len(bad)} files differ, first {bad[:10]}", file=sys.stderr)
    sys.exit(1)
PY
}
verify "$M/b" || fail "files read back wrong through the mount"
"$RDMAFSCTL" flush --all "$M" >"$T/flush.out" 2>&1 || fail "rdmafsctl flush: $(cat "$T/flush.out")"
verify "$S/b" || fail "backing files differ after the flush"
restarts=$("$RDMAFSCTL" stat --json "$M" | sed -n 's/.*"restarts": *\([0-9]*\).*/\1/p' | head -1)
[ "$restarts" = "$kills" ] || fail "restarts=$restarts, want $kills"
note "kills=$kills; $N files of 4 KiB verified through the mount and on the backing files" \
	"($committed held their data on the backing file before the flush)"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
