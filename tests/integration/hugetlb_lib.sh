# tests/integration/hugetlb_lib.sh - sourced after lib.sh: reserve_hugepages N sets aside
# N more 2 MiB pages for the test (vm.nr_hugepages) and gives them back on exit.
# Tests of several checkouts may run at once on one machine: a lock serialises the users
# of the pool, and the exit path takes back only the pages this test added.
HP_KNOB=/proc/sys/vm/nr_hugepages
HP_FREE=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
HP_LOCK=/run/lock/rdmafs-hugetlb-tests.lock
HP_ADDED=0
_hp_restore() {
	local rc=$? cur
	if [ "$HP_ADDED" -gt 0 ]; then
		cur=$(cat $HP_KNOB)
		echo $((cur > HP_ADDED ? cur - HP_ADDED : 0)) >$HP_KNOB 2>/dev/null || true
	fi
	(exit $rc)
	_cleanup
}
trap _hp_restore EXIT

# try_reserve_hugepages N: returns 1 and sets HP_WHY if it cannot (no subshell: HP_ADDED).
try_reserve_hugepages() {
	local n=$1 cur
	[ -w $HP_KNOB ] && [ -r $HP_FREE ] || { HP_WHY="no 2 MiB hugetlb pool control"; return 1; }
	if [ -z "${HP_LOCKED:-}" ]; then
		exec 9>"$HP_LOCK"
		flock -w 600 9 || { HP_WHY="hugetlb pool busy (lock $HP_LOCK)"; return 1; }
		HP_LOCKED=1
	fi
	cur=$(cat $HP_KNOB)
	echo $((cur + n)) >$HP_KNOB 2>/dev/null || { HP_WHY="cannot raise nr_hugepages"; return 1; }
	HP_ADDED=$((HP_ADDED + $(cat $HP_KNOB) - cur))
	[ "$(cat $HP_FREE)" -ge "$n" ] ||
		{ HP_WHY="only $(cat $HP_FREE) of $n huge pages could be reserved"; return 1; }
}

reserve_hugepages() {
	try_reserve_hugepages "$1" || skip "$HP_WHY"
}
