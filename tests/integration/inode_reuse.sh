#!/bin/bash
# A backing file deleted while the kernel still caches its inode, then a new file that gets
# its inode number (ext4 reuses a freed number at once): the new file must get a node id
# of its own. Matched to the old inode by (dev, ino) alone, it took the old file handle,
# and once its cached O_PATH fd was evicted every reopen (commit, fsync) failed with
# ESTALE; at unmount its staging went to rescue_dir and the daemon exited 1 (seen in
# benchtool stress). The daemon's fd cache is made tiny (128-fd limit) to evict at once.
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v prlimit >/dev/null || fail "prlimit missing (util-linux)"
S=$T/src M=$T/mnt
WRAP=$T/rdmafs-lowfd
printf '#!/bin/sh\nexec prlimit --nofile=128:128 -- %q "$@"\n' "$RDMAFS" >"$WRAP"
chmod +x "$WRAP"
mkdir -p "$S/many" "$S/d"
for i in $(seq 200); do : >"$S/many/f$i"; done
RDMAFS=$WRAP mount_rdmafs "$S" "$M" -o flush_interval=0,log_level=info,rescue_dir=$T/rescue
evict_fds() { ls -l "$M/many" >/dev/null; }	# 200 lookups: the 64-fd cache turns over

reused=
for n in $(seq 20); do
	printf 'old %s\n' "$n" >"$S/d/old$n"
	stat "$M/d/old$n" >/dev/null		# the kernel caches its inode
	evict_fds
	old_ino=$(stat -c %i "$S/d/old$n")
	rm "$S/d/old$n"				# behind rdmafs: nothing holds the number
	printf 'new %s\n' "$n" >"$M/d/new$n"	# staged, committed at the flush below
	if [ "$(stat -c %i "$S/d/new$n")" = "$old_ino" ]; then
		reused=$n
		break
	fi
done
[ -n "$reused" ] || skip "the backing filesystem never reused an inode number (20 tries)"
note "inode number $old_ino reused at try $reused"
evict_fds					# the new file's fd too: reopens go by handle
r=$("$HELPER" fsync "$M/d/new$reused") || true
[ "$r" = ok ] || fail "fsync of the new file: $r"
"$RDMAFSCTL" flush "$M/d/new$reused" || fail "flush of the new file failed"
[ "$(cat "$S/d/new$reused")" = "new $reused" ] || fail "backing new$reused: $(cat "$S/d/new$reused")"
[ "$(cat "$M/d/new$reused")" = "new $reused" ] || fail "mount new$reused: $(cat "$M/d/new$reused")"
[ "$(stat_field "$M" failures)" = 0 ] || fail "commits failed"
unmount_rdmafs "$M" || fail "daemon exit code $?"
[ ! -e "$T/rescue" ] || fail "staging written to rescue_dir"
check_daemon_log
