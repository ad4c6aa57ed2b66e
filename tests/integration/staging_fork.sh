#!/bin/bash
# A pinned application that forks: staging is MAP_SHARED, so parent, children and the pin
# keep sharing the same pages (no copy-on-write), in each staging mode; and the data
# reaches the backing file. See doc/staging.md, "Fork".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hugetlb_lib.sh"
require_mount_env
FORKPIN=$RDMAFS_BUILD/tests/helpers/rdmafs-forkpin
M=$T/mnt S=$T/src
mkdir -p "$S"
check_mode() {
	local mode=$1 file=$2 out
	out=$("$FORKPIN" "$file") || fail "$mode: $out"
	note "$mode: $(tr '\n' ';' <<<"$out")"
	grep -q "^coherent" <<<"$out" || fail "$mode: $out"
	grep -q "DONTFORK on an aligned 2 MiB: ok" <<<"$out" || fail "$mode: MADV_DONTFORK of whole pages: $out"
}
head -c 8M /dev/zero >"$S/f"
for mode in shmem thp; do
	mount_rdmafs "$S" "$M" -o staging=$mode
	ls "$M" >/dev/null; require_passthrough
	check_mode $mode "$M/f"
	unmount_rdmafs "$M" || fail "daemon exit code $?"
	[ "$(head -c 4096 "$S/f" | tr -d c | wc -c)" = 0 ] || fail "$mode: child write not committed"
	[ "$(dd if="$S/f" bs=4096 skip=2 count=1 status=none | tr -d k | wc -c)" = 0 ] ||
		fail "$mode: write through the pin not committed"
done
if try_reserve_hugepages 8; then
	head -c 8M /dev/zero >"$S/f"
	mount_rdmafs "$S" "$M" -o staging=hugetlb,hugetlb_fallback=no
	exec 3<>"$M/f"
	mfd=$(ls -l /proc/$DAEMON_PID/fd | awk '/memfd:rdmafs-staging/ {print $9}' | head -1)
	check_mode hugetlb /proc/$DAEMON_PID/fd/$mfd
	exec 3>&-
	unmount_rdmafs "$M" || fail "daemon exit code $?"
	[ "$(dd if="$S/f" bs=4096 skip=2 count=1 status=none | tr -d k | wc -c)" = 0 ] ||
		fail "hugetlb: write through the pin not committed"
fi
check_daemon_log
# An optional part that could not run is a skip, not a pass.
[ -z "${HP_WHY:-}" ] || skip "shmem and thp passed; hugetlb not tested: $HP_WHY"
