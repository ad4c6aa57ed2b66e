#!/bin/bash
# Descriptors (issue 14): under a low fd limit the daemon serves more cached inodes and more
# staged files than it has descriptors (inodes keep a file handle, fds are a bounded cache,
# a staged file holds its memfd, and its stager lock fd only while it may hold uncommitted
# changes); it warns at start that the limit is low; a create
# that fails (EMFILE) leaves no file behind.
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v prlimit >/dev/null || fail "prlimit missing (util-linux)"
S=$T/src M=$T/mnt
NFILES=${NFILES:-20000} NSTAGED=${NSTAGED:-1000}

# The daemon starts under a 1024-fd limit (soft and hard: it cannot raise it).
WRAP=$T/rdmafs-lowfd
printf '#!/bin/sh\nexec prlimit --nofile=1024:1024 -- %q "$@"\n' "$RDMAFS" >"$WRAP"
chmod +x "$WRAP"
mkdir -p "$S/many"
python3 - "$S/many" "$NFILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("file %d\n" % i)
PY
RDMAFS=$WRAP mount_rdmafs "$S" "$M" -o flush_interval=0,log_level=info
P=$DAEMON_PID
nfds() { { ls /proc/$P/fd 2>/dev/null || true; } | wc -l; }	# fds come and go meanwhile
[ "$(prlimit --pid "$P" --nofile --output SOFT --noheadings | tr -d ' ')" = 1024 ] ||
	fail "the daemon does not run under the 1024-fd limit"
grep -E 'warn.*limit.*1024' "$DAEMON_LOG" >/dev/null || fail "no warning of the low fd limit at start"
grep -q 'reopen by file handle' "$DAEMON_LOG" || skip "the source has no file handles"
base=$(nfds)
note "fds at start: $base"

# 20,000 cached inodes: ls -l (readdirplus: a lookup each), stat, read all.
[ "$(ls -l "$M/many" | grep -c '^-')" = "$NFILES" ] || fail "ls -l did not list $NFILES files"
(cd "$M/many" && md5sum -- *) >"$T/sums.mnt" || fail "md5sum through the mount failed"
(cd "$S/many" && md5sum -- *) >"$T/sums.src"
cmp -s "$T/sums.mnt" "$T/sums.src" || fail "md5sums through the mount differ"
find "$M/many" -type f | xargs -r stat -c %s >/dev/null || fail "stat failed"
n=$(nfds)
note "fds after $NFILES cached inodes: $n"
# At most half the limit caches inode fds.
[ "$n" -le $((base + 512 + 32)) ] || fail "$n fds for $NFILES cached inodes (start: $base)"

# Files created through the mount: staged at create and resident after close, at most
# 1.5 x resident_max of them (past resident_max idle clean ones go, past 1.5 x idle dirty
# ones are committed and go): resident_max = (1024 - 512 inode fds - 256) / 3 = 85, each
# with its memfd and, not committed yet (flush_interval=0), its stager lock fd.
mkdir "$M/new"
(cd "$M/new" && seq -f 'n%05g' 1 3000 | xargs touch) || fail "creating 3000 files failed"
[ "$(ls "$M/new" | wc -l)" = 3000 ] || fail "not 3000 files created"
n=$(nfds)
note "fds after 3000 creates: $n"
[ "$n" -le $((base + 512 + 2 * 128 + 32)) ] || fail "$n fds after 3000 creates (start: $base)"

# A create that fails for lack of descriptors leaves nothing behind: the limit is set just
# above what the daemon holds, so that each create fails at another step (or succeeds).
# A file unlinked while open cannot be reopened by handle: its fd is kept. Its fsync (a
# commit, which opens the backing file) works after the cache cycled through every file.
python3 - "$M/new/n00001" "$M/many" "$NFILES" <<'PY' || fail "unlinked open file: fsync or fstat failed"
import os, sys
p, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"unlinked", 0)
os.unlink(p)
for i in range(n):
    os.stat(os.path.join(d, "f%05d" % i))
os.fsync(fd)
assert os.fstat(fd).st_size == 8
assert os.pread(fd, 8, 0) == b"unlinked"
os.close(fd)
PY

# An EMFILE first closes the idle cached inode fds and tries again. Each round empties that
# cache first (a lookup under a limit below what the daemon holds), so that the limit set
# next is close to what the daemon cannot give back.
# limit_for N: the fd limit that lets the daemon open exactly N more fds (the limit bounds
# fd numbers, and new fds take the lowest free numbers).
limit_for() {
	ls /proc/$P/fd | sort -n | awk -v n="$1" '{ used[$1] = 1 }
		END { for (i = 0; ; i++) if (!(i in used) && n-- == 0) { print i; exit } }'
}
empty_cache() {
	prlimit --pid "$P" --nofile="$(limit_for 0)":1024
	stat "$M/missing.$RANDOM" >/dev/null 2>&1 || true
	prlimit --pid "$P" --nofile=1024:1024
}
failed=0
for extra in 0 0 1 1 2 2 3 3 4 4 5 6 8; do
	name=emfile$extra.$RANDOM
	empty_cache
	prlimit --pid "$P" --nofile="$(limit_for "$extra")":1024
	if (: >"$M/$name") 2>"$T/err"; then
		prlimit --pid "$P" --nofile=1024:1024
		note "create with $extra spare fds: succeeded"
		[ -f "$S/$name" ] || fail "create $name succeeded but no backing file"
	else
		prlimit --pid "$P" --nofile=1024:1024
		failed=$((failed + 1))
		note "create with $extra spare fds: $(cat "$T/err")"
		[ ! -e "$S/$name" ] || fail "failed create (extra=$extra) left $name behind"
		[ ! -e "$M/$name" ] || fail "failed create (extra=$extra) shows $name in the mount"
	fi
done
[ $failed -gt 0 ] || fail "no create failed: the EMFILE case was not exercised"

# Staged files held open for writing: one memfd each, plus the stager lock fd (a backing
# fd open for writing) while the file may hold uncommitted changes. 4096 fds cover 1,000
# of them only if a staged file costs about two descriptors (it cost five: inode, handle,
# memfd, buffered and O_DIRECT backing fds: 5,000); cached inode fds make room. 1,500 of
# them failed now and then under load: not every descriptor the daemon opens (libfuse's
# per-thread pipes, fill rings) reclaims the inode fd cache at EMFILE yet.
unmount_rdmafs "$M" || fail "daemon exit status $?"
check_daemon_log 'Too many open files'
printf '#!/bin/sh\nexec prlimit --nofile=4096:4096 -- %q "$@"\n' "$RDMAFS" >"$WRAP"
RDMAFS=$WRAP mount_rdmafs "$S" "$M" -o flush_interval=0,log_level=info
P=$DAEMON_PID
base=$(nfds)
python3 - "$M/many" "$NSTAGED" "$T/held" "$T/release" <<'PY' &
import os, resource, sys, time
d, n, ready, release = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
fds = []
for i in range(n):
    fd = os.open(os.path.join(d, "f%05d" % i), os.O_RDWR)
    os.pwrite(fd, b"staged %d\n" % i, 0)
    fds.append(fd)
open(ready, "w").close()
while not os.path.exists(release):
    time.sleep(0.05)
for fd in fds:
    os.fsync(fd) if fds.index(fd) % 500 == 0 else None
    os.close(fd)
PY
HOLDER=$!
_pids+=("$HOLDER")
wait_for 120 test -e "$T/held" || { kill -0 $HOLDER 2>/dev/null || wait $HOLDER ||
	fail "holding $NSTAGED files open for writing failed"; fail "holder did not get ready"; }
n=$(nfds)
note "fds with $NSTAGED staged files held open: $n"
# One memfd (and lock fd) per staged file; cached inode fds make room (closed when the limit is reached).
[ "$n" -le 4096 ] && [ "$n" -le $((base + NSTAGED + 2048 + 64)) ] || fail "$n fds for $NSTAGED staged files (start: $base)"
memfds=$({ ls -l /proc/$P/fd 2>/dev/null || true; } | grep -c memfd: || true)
note "of which memfds: $memfds"
[ "$memfds" -ge "$NSTAGED" ] || fail "$memfds memfds for $NSTAGED staged files"
[ $((n - memfds)) -le $((base + 2048 + 64)) ] ||
	fail "$((n - memfds)) fds besides the memfds of $NSTAGED staged files (start: $base)"
touch "$T/release"
wait $HOLDER || fail "closing the staged files failed"
for i in 0 1 999 $((NSTAGED - 1)); do
	f=$(printf 'f%05d' "$i")
	[ "$(head -n1 "$M/many/$f")" = "staged $i" ] || fail "$f lost its write"
done

unmount_rdmafs "$M" || fail "daemon exit status $?"
check_daemon_log 'Too many open files'
