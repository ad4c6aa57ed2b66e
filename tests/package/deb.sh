#!/bin/bash
# Builds the Debian packages from the tree (dpkg-buildpackage -us -uc -b, no network: the
# libfuse wrap tarball comes from subprojects/packagecache, seeded by scripts/setup), checks
# them with lintian (errors fail, warnings are printed), installs them into a throw-away
# root and mounts through /etc/fstab there: `mount /mnt/x` -> mount.fuse3 -> /usr/sbin/rdmafs.
#
# The throw-away root is the host's own root file system under an overlay (upper layer on a
# tmpfs) in a private mount namespace, entered with chroot: seconds instead of the minutes
# of a debootstrap, and nothing of it survives the test. The packages' dependencies are
# those of the host (scripts/setup installed them); dpkg -i checks they are satisfied.
#
#   tests/package/deb.sh [DEBDIR]    DEBDIR: .debs already built (skips the build)
# Exit 0 pass, 77 skip (a kernel feature is missing), anything else fail.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL deb: $*" >&2; exit 1; }
skip() { echo "SKIP deb: $*"; exit 77; }
note() { echo "# $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (mount namespace, overlay, FUSE passthrough)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
for t in dpkg-buildpackage dh lintian unshare chroot mount.fuse3; do
	command -v "$t" >/dev/null || fail "$t missing: run scripts/setup"
done

T=$(mktemp -d /tmp/rdmafs-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT

debdir=${1:-}
if [ -z "$debdir" ]; then
	# Build from a copy of the tree (tracked and new files, no build dirs): the build writes
	# debian/ and obj-*/ into its source tree.
	mkdir "$T/src"
	(cd "$top" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$T/src")
	[ -d "$top/subprojects/packagecache" ] || fail "subprojects/packagecache missing: run scripts/setup"
	cp -r "$top/subprojects/packagecache" "$T/src/subprojects/"
	start=$SECONDS
	(cd "$T/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
		dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1) ||
		{ tail -n 40 "$T/build.log" >&2; fail "dpkg-buildpackage failed"; }
	note "dpkg-buildpackage: $((SECONDS - start)) s"
	debdir=$T
	start=$SECONDS
	lintian --fail-on error "$T"/rdmafs_*.changes >"$T/lintian.log" 2>&1 ||
		{ cat "$T/lintian.log" >&2; fail "lintian reports errors"; }
	grep -v 'running with root privileges' "$T/lintian.log" | sed 's/^/# lintian: /' || true
	note "lintian: $((SECONDS - start)) s"
fi
debs=()
for p in rdmafs librdmafs0 librdmafs-dev; do
	f=$(ls "$debdir/${p}"_*.deb 2>/dev/null | head -n1)
	[ -n "$f" ] || fail "no ${p}_*.deb in $debdir"
	debs+=("$f")
done

# The rest runs in private mount and pid namespaces: every mount below dies with them, and
# the daemon found by pgrep is ours.
cat >"$T/inroot.sh" <<'INROOT'
set -euo pipefail
fail() { echo "FAIL deb: $*" >&2; exit 1; }
dpkg -i /debs/*.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -i"; }
for f in /usr/sbin/rdmafs /usr/bin/rdmafsctl /usr/lib/tmpfiles.d/rdmafs.conf \
	/usr/share/man/man8/rdmafs.8.gz /usr/share/man/man5/rdmafs.conf.5.gz \
	/usr/share/man/man3/rdmafs_flush.3.gz /usr/include/rdmafs.h; do
	[ -e "$f" ] || fail "$f not installed"
done
grep -qx /etc/rdmafs/rdmafs.conf /var/lib/dpkg/info/rdmafs.conffiles || fail "rdmafs.conf is not a conffile"
# The wire format is private (not ABI); test and peer tools are not installed; the daemon
# links only what it uses (json-c is rdmafsctl's).
[ ! -e /usr/include/rdmafs/proto.h ] || fail "the wire-format header is installed"
for t in rdmafs-pinwrite rdma_target rdma_writer rdma_regprobe; do
	! dpkg -S "/usr/bin/$t" >/dev/null 2>&1 || fail "test tool $t is installed"
done
! ldd /usr/sbin/rdmafs | grep -q libjson-c || fail "the daemon links json-c"
ldd /usr/bin/rdmafsctl | grep -q libjson-c || fail "rdmafsctl does not link json-c"
[ "$(pkg-config --modversion rdmafs)" = 0.1.0 ] || fail "pkg-config rdmafs"
! ldd /usr/sbin/rdmafs | grep -q libfuse3 || fail "rdmafs links a shared libfuse3"
# The postinst ran systemd-tmpfiles (if the host has it): /run/rdmafs root:root 0755.
if command -v systemd-tmpfiles >/dev/null; then
	[ "$(stat -c '%U:%G %a' /run/rdmafs)" = "root:root 755" ] ||
		fail "/run/rdmafs: $(stat -c '%U:%G %a' /run/rdmafs 2>&1)"
fi
# The library and its header build a client.
printf '#include <rdmafs.h>\nint main(void) { return rdmafs_flush(-1) == 0; }\n' >/tmp/c.c
cc /tmp/c.c -o /tmp/c $(pkg-config --cflags --libs rdmafs) || fail "cannot build against librdmafs"
/tmp/c || fail "rdmafs_flush(-1) succeeded"

mkdir -p /srv/backing /mnt/x
echo "/srv/backing /mnt/x fuse.rdmafs flush_interval=1,nofail 0 0" >>/etc/fstab
mount /mnt/x || fail "mount /mnt/x (fstab)"
grep -q "^/srv/backing /mnt/x fuse.rdmafs " /proc/mounts || fail "not mounted: $(grep /mnt/x /proc/mounts)"
pid=$(pgrep -x rdmafs | head -n1)
[ "$(readlink /proc/$pid/exe)" = /usr/sbin/rdmafs ] || fail "the daemon is not /usr/sbin/rdmafs"
head -c 3M /dev/urandom >/tmp/data
cp /tmp/data /mnt/x/f
head -c 64K /dev/urandom >/tmp/small
dd if=/tmp/small of=/mnt/x/g conv=fsync status=none
cmp -s /tmp/small /srv/backing/g || fail "fsync'd file not in the backing directory"
rdmafsctl flush /mnt/x/f || fail "rdmafsctl flush"
cmp -s /tmp/data /srv/backing/f || fail "flushed file differs in the backing directory"
ls /run/rdmafs/*.sock >/dev/null || fail "no control socket in /run/rdmafs"
head -c 1M /dev/urandom | dd of=/mnt/x/f bs=1M seek=1 conv=notrunc status=none
dd if=/mnt/x/f of=/tmp/data status=none
umount /mnt/x || fail "umount /mnt/x"
for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "daemon did not exit after umount"
cmp -s /tmp/data /srv/backing/f || fail "backing file differs after umount"
echo "# installed, mounted through fstab, committed, unmounted"
INROOT

unshare --mount --pid --fork --propagation private bash -euo pipefail -c '
	T=$1; shift
	mkdir -p "$T/ov" "$T/root"
	mount -t tmpfs -o mode=0755 ovl "$T/ov"
	mkdir -p "$T/ov/upper" "$T/ov/work"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ov/upper,workdir=$T/ov/work" "$T/root" ||
		{ echo "SKIP deb: cannot mount an overlay over /"; exit 77; }
	R=$T/root
	mount --rbind /dev "$R/dev"
	mount -t proc proc "$R/proc"
	mount -t sysfs sys "$R/sys"
	mount -t tmpfs -o mode=0755 run "$R/run"
	mount -t tmpfs tmp "$R/tmp"
	mkdir -p "$R/debs"
	cp "$@" "$R/debs/"
	cp "$T/inroot.sh" "$R/tmp/"
	chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin bash /tmp/inroot.sh
' deb "$T" "${debs[@]}"
