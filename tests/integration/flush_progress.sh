#!/bin/bash
# rdmafsctl flush on a terminal shows progress of a long flush (bytes committed of bytes
# to commit, rate, ETA), for one file and for --all; nothing when stdout/stderr is not a
# terminal or with --quiet. The terminal is a real pseudo-terminal (script(1)).
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v script >/dev/null || fail "script(1) missing (util-linux)"
S=$T/src M=$T/mnt
# Small writes, one at a time: a 256 MiB commit takes well over the 0.2 s progress period.
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no,io_size=64K,uring_depth=1
SIZE=$((256 * 1024 * 1024))

# dirty FILE: SIZE fresh bytes in FILE (held open on fd 3 so it stays staged).
dirty() {
	exec 3>&-
	exec 3<>"$1"
	dd if=/dev/urandom of="$1" bs=1M count=$((SIZE >> 20)) conv=notrunc status=none
}
# on_pty OUT CMD...: run CMD with stdin, stdout and stderr on a pseudo-terminal.
on_pty() {
	local out=$1
	shift
	script -qec "$*" /dev/null >"$out" </dev/null || fail "$* on a pty: exit $?"
}
# progress_lines OUT: progress updates in OUT (each starts with \r and ends without \n).
progress_lines() { tr '\r' '\n' <"$1" | grep -Ec ' of [0-9.]+[KMG]? \([0-9]+%\), [0-9.]+[KMGB]?/s' || true; }

dirty "$M/f"
on_pty "$T/tty.out" "$RDMAFSCTL" flush "$M/f"
n=$(progress_lines "$T/tty.out")
note "tty: $n progress updates: $(tr '\r' '\n' <"$T/tty.out" | grep -a ' of ' | tail -n 2 | cat -v)"
[ "$n" -ge 1 ] || fail "no progress on a terminal: $(cat -v "$T/tty.out")"
tr '\r' '\n' <"$T/tty.out" | grep -aq " of 256M " || fail "total is not the 256M written"
tr '\r' '\n' <"$T/tty.out" | grep -aq "ETA [0-9]*:[0-9][0-9]" || fail "no ETA"
same_file "$S/f" "$M/f"
"$RDMAFSCTL" stat --json "$M/f" | grep -q '"changed_bytes":0' || fail "not clean after flush"

# --quiet on a terminal, and no terminal at all: no progress, the same durability.
dirty "$M/f"
on_pty "$T/quiet.out" "$RDMAFSCTL" flush --quiet "$M/f"
[ ! -s "$T/quiet.out" ] || fail "flush --quiet printed: $(cat -v "$T/quiet.out")"
same_file "$S/f" "$M/f"
dirty "$M/f"
"$RDMAFSCTL" flush "$M/f" >"$T/pipe.out" 2>&1 || fail "flush without a terminal"
[ ! -s "$T/pipe.out" ] || fail "flush without a terminal printed: $(cat -v "$T/pipe.out")"
same_file "$S/f" "$M/f"
# Only stdout redirected (a script capturing it) counts as no terminal too.
dirty "$M/f"
script -qec "'$RDMAFSCTL' flush '$M/f' >'$T/half.out'" /dev/null >"$T/half.tty" </dev/null ||
	fail "flush with stdout redirected"
[ "$(progress_lines "$T/half.tty")" = 0 ] || fail "progress with stdout not a terminal"

# --all: progress over the mount, then the summary line.
dirty "$M/g"
on_pty "$T/all.out" "$RDMAFSCTL" flush --all "$M"
[ "$(progress_lines "$T/all.out")" -ge 1 ] || fail "no progress for --all: $(cat -v "$T/all.out")"
tr '\r' '\n' <"$T/all.out" | grep -aq 'flushed [0-9]* files, 256M committed' ||
	fail "--all summary: $(cat -v "$T/all.out")"
same_file "$S/g" "$M/g"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
