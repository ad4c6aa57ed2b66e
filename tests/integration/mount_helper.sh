#!/bin/bash
# mount -t fuse.rdmafs through the standard mount.fuse3 helper, and an fstab line
# (mount -T FILE). mount(8) gives its helpers no PATH, so mount.fuse3's /bin/sh finds
# 'rdmafs' in the shell's default path (/usr/local/sbin:...:/sbin:/bin): an install puts it
# in sbindir. To test the build without touching the system, this test runs in a private
# mount namespace where an 'rdmafs' symlink to the build is bind-mounted over
# /usr/local/sbin. The daemon then runs in the background (no -f), logs to syslog, and
# umount stops it.
if [ -z "${RDMAFS_IN_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	RDMAFS_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v mount.fuse3 >/dev/null || fail "mount.fuse3 missing (scripts/setup installs fuse3)"
S=$T/src M=$T/mnt
mkdir -p "$S" "$M" "$T/bin"
[ -n "${RDMAFS_IN_NS:-}" ] || skip "needs unshare(1) for a private mount namespace"
ln -s "$(realpath "$RDMAFS")" "$T/bin/rdmafs"
mount --bind "$T/bin" /usr/local/sbin || skip "cannot bind-mount over /usr/local/sbin"
[ "$(env -i /bin/sh -c 'command -v rdmafs')" = /usr/local/sbin/rdmafs ] ||
	skip "another rdmafs comes first on the default PATH: $(env -i /bin/sh -c 'command -v rdmafs')"
_mounts+=("$M")

# daemon_of MNT: pid of the rdmafs serving MNT (to wait for its exit), or nothing.
daemon_of() { pgrep -f -x ".*rdmafs $S $M.*" | head -n1; }

check_mount() {	# check_mount WHAT: write, read back, umount, wait, compare backing
	local what=$1 pid
	is_mounted "$M" || fail "$what: not mounted"
	grep -q "^$S $M fuse.rdmafs " /proc/mounts || fail "$what: not fuse.rdmafs: $(grep " $M " /proc/mounts)"
	pid=$(daemon_of)
	random_file "$T/data" 1M
	cp "$T/data" "$M/f"
	cmp -s "$M/f" "$T/data" || fail "$what: read back"
	umount "$M" || fail "$what: umount"
	[ -n "$pid" ] && wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || fail "$what: daemon did not exit"
	same_file "$S/f" "$T/data"
	rm -f "$S/f"
}

mount -t fuse.rdmafs "$S" "$M" -o flush_interval=1,chunk_size=16K 2>"$T/mount.err" ||
	fail "mount -t fuse.rdmafs: $(cat "$T/mount.err")"
check_mount "mount -t fuse.rdmafs"

# A bad option through mount(8): refused, nothing mounted.
mount -t fuse.rdmafs "$S" "$M" -o chunk_size=3K 2>"$T/mount.err" && fail "bad option mounted"
grep -q "chunk_size=3K" "$T/mount.err" || fail "mount error does not name the option: $(cat "$T/mount.err")"
is_mounted "$M" && fail "bad option: something is mounted"

# An fstab line, through an alternative fstab file.
if mount --help 2>&1 | grep -q -- '--fstab'; then
	printf '%s %s fuse.rdmafs flush_interval=1,chunk_size=16K,noauto 0 0\n' "$S" "$M" >"$T/fstab"
	mount -T "$T/fstab" "$M" 2>"$T/mount.err" || fail "mount -T fstab: $(cat "$T/mount.err")"
	check_mount "fstab line"
else
	note "mount(8) has no -T/--fstab: fstab line not tested"
fi
