#!/bin/bash
# Unmount right after writing loses nothing: no fsync, no periodic flush, no commit at
# close (flush_on_close=no, flush_interval=0). Last closes only kick the flusher, so the
# unmount races those commits; the final commit at unmount must cover the rest.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
backing_dir "$S" 64M
# Existing files too: staging starts from their content.
for i in 1 2 3; do random_file "$S/old$i" 300K; cp "$S/old$i" "$T/old$i"; done
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no,chunk_size=16K

for i in $(seq 12); do
	random_file "$T/new$i" $((i * 173))K
	cp "$T/new$i" "$M/new$i"
done
for i in 1 2 3; do
	"$HELPER" pwrite "$M/old$i" $((i * 5000)) 70000 $i >/dev/null
	"$HELPER" pwrite "$T/old$i" $((i * 5000)) 70000 $i >/dev/null
done
"$HELPER" mmapwrite "$M/old2" 290000 100000 5 >/dev/null	# mapped, grows the file
"$HELPER" mmapwrite "$T/old2" 290000 100000 5 >/dev/null
truncate -s 1000 "$M/old3"; truncate -s 1000 "$T/old3"
unmount_rdmafs "$M" || fail "daemon exit code $?"

for i in $(seq 12); do same_file "$S/new$i" "$T/new$i"; done
for i in 1 2 3; do same_file "$S/old$i" "$T/old$i"; done
grep -q "all changes committed" "$DAEMON_LOG" || fail "no 'all changes committed' at unmount"
check_daemon_log
