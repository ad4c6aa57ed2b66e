# NFS as the backing filesystem: the guest's kernel NFS server exports an ext4 directory
# over loopback, the guest mounts it (NFSv4.2, and NFSv4.0 as a second "node"), and rdmafs
# uses the NFS mount as its backing directory. Checked on the server's own view of the
# file (the exported ext4), which is where COMMIT puts the bytes:
# - write(2) + fsync, mmap stores + fsync, rdmafsctl flush: the server file = the data;
# - punch hole: NFSv4.2 does it (DEALLOCATE), NFSv4.0 refuses it (EOPNOTSUPP) and rdmafs
#   commits the zeros instead; either way the server file reads zeros there;
# - two rdmafs daemons (one per NFS mount: two nodes) cannot stage one file at once: the
#   second writable open gets EBUSY while the first holds its lock on the backing file;
# - unmount commits the rest.
. "$RDMAFS_LIB"

HELPER=$RDMAFS_BUILD/tests/rdmafs-testhelper
CTL=$RDMAFS_BUILD/tools/rdmafsctl
[ -x "$HELPER" ] || skip "no $HELPER (build with -Dtests=enabled)"
for t in rpc.nfsd rpc.mountd exportfs mount.nfs4; do
	command -v $t >/dev/null || fail "$t missing on the host (scripts/setup installs nfs-kernel-server)"
done

modprobe -a nfsd nfsv4 || fail "modprobe nfsd nfsv4"
ip link set lo up
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd || fail "mount nfsd"
mkdir -p /var/lib/nfs/v4recovery /run/rpcbind
E=/srv/export
ext4_up $E 256M
# NFSv4 only (no rpcbind, lockd or statd needed: locks are part of the protocol).
echo 10 >/proc/fs/nfsd/nfsv4leasetime
echo 10 >/proc/fs/nfsd/nfsv4gracetime
# fsid=0: the export is the NFSv4 root. The guest's / (overlay on 9p) cannot be exported,
# so mountd cannot build a pseudo root above it: the client mounts 127.0.0.1:/.
exportfs -o rw,sync,no_root_squash,no_subtree_check,fsid=0 127.0.0.1:$E || fail "exportfs"
bg /tmp/mountd.log rpc.mountd -F -N 3 --no-udp
rpc.nfsd -N 3 --no-udp 4 || fail "rpc.nfsd"
at_exit "rpc.nfsd 0; exportfs -ua"
# No clients to reclaim: end the grace period (else OPEN and LOCK wait for it).
echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null || true
N1=/tmp/nfs42 N0=/tmp/nfs40
mkdir -p $N1 $N0
retry 20 mount -t nfs4 -o vers=4.2 127.0.0.1:/ $N1 || fail "mount NFSv4.2"
at_exit "umount -l $N1"
retry 20 mount -t nfs4 -o vers=4.0 127.0.0.1:/ $N0 || fail "mount NFSv4.0"
at_exit "umount -l $N0"
log "nfsd exports $E; mounted on $N1 (4.2) and $N0 (4.0): $(grep -c ' nfs4 ' /proc/mounts) nfs4 mounts"

M=/tmp/m M0=/tmp/m0
rdmafs_up $N1 $M -o flush_interval=0,flush_on_close=no,chunk_size=64K
pid1=$DAEMON_PID

# same FILE REF WHAT: the server's file equals the reference.
same() { cmp "$1" "$2" || fail "$3: the server's file differs"; }

log "write + fsync"
head -c 8M /dev/urandom >/tmp/ref
: >$M/f
exec 3<>$M/f
dd if=/tmp/ref of=$M/f bs=1M conv=notrunc status=none
cmp -s $E/f /tmp/ref && fail "server has the data before any commit: test is void"
[ "$("$HELPER" fsync $M/f)" = ok ] || fail "fsync through rdmafs on NFS"
same $E/f /tmp/ref "after fsync"
log "mmap stores + fsync"
"$HELPER" mmapwrite $M/f 1000000 2000000 7 >/dev/null || fail "mmap stores"
"$HELPER" mmapwrite /tmp/ref 1000000 2000000 7 >/dev/null
[ "$("$HELPER" fsync $M/f)" = ok ] || fail "fsync after mmap stores"
same $E/f /tmp/ref "after mmap stores and fsync"
log "rdmafsctl flush"
"$HELPER" pwrite $M/f 5000000 300000 8 >/dev/null
"$HELPER" pwrite /tmp/ref 5000000 300000 8 >/dev/null
"$CTL" flush $M/f || fail "rdmafsctl flush"
same $E/f /tmp/ref "after rdmafsctl flush"
log "punch hole (NFSv4.2: DEALLOCATE)"
fallocate -p -o 131072 -l 262144 $M/f || fail "punch hole through rdmafs on NFSv4.2"
dd if=/dev/zero of=/tmp/ref bs=64K seek=131072 count=262144 iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
[ "$("$HELPER" fsync $M/f)" = ok ] || fail "fsync after punch"
same $E/f /tmp/ref "after punch hole"

log "a second node (rdmafs on the NFSv4.0 mount) cannot stage f while the first has it"
rdmafs_up $N0 $M0 -o flush_interval=0,flush_on_close=yes,chunk_size=64K
pid0=$DAEMON_PID
out=$(python3 -c 'import os,sys
try: os.open(sys.argv[1], os.O_WRONLY)
except OSError as e: print(e.errno); sys.exit(0)
print("opened")' $M0/f)
[ "$out" = 16 ] || fail "writable open of f on the second node: '$out', expected EBUSY (16)"
cmp -s $M0/f /tmp/ref || fail "read-only open on the second node does not read the committed data"
exec 3>&-
"$CTL" flush $M/f || fail "rdmafsctl flush before release"
log "punch hole on NFSv4.0 (no DEALLOCATE): rdmafs commits zeros"
head -c 262144 /dev/urandom >$N0/probe
fallocate -p -o 0 -l 65536 $N0/probe 2>/dev/null && fail "NFSv4.0 punched a hole itself: test is void"
rm -f $N0/probe
retry 20 "$HELPER" pwrite $M0/g 0 1048576 9 >/dev/null || fail "write on the second node"
"$HELPER" pwrite /tmp/refg 0 1048576 9 >/dev/null
exec 4<>$M0/g
fallocate -p -o 65536 -l 196608 $M0/g || fail "punch hole through rdmafs on NFSv4.0"
dd if=/dev/zero of=/tmp/refg bs=64K seek=65536 count=196608 iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
[ "$("$HELPER" fsync $M0/g)" = ok ] || fail "fsync after punch on NFSv4.0"
same $E/g /tmp/refg "after punch hole on NFSv4.0"
exec 4>&-
DAEMON_PID=$pid0
rdmafs_down $M0 || fail "rdmafs on NFSv4.0 exited $?"

log "unmount commits the rest"
"$HELPER" pwrite $M/f 7000000 100000 10 >/dev/null
"$HELPER" pwrite /tmp/ref 7000000 100000 10 >/dev/null
DAEMON_PID=$pid1
rdmafs_down $M || fail "rdmafs on NFSv4.2 exited $?"
same $E/f /tmp/ref "after unmount"
log "PASS"
