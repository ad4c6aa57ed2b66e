# tests/integration/hugetlb_lib.sh - sourced after lib.sh: reserve_hugepages N sets aside
# N more 2 MiB pages for the test (vm.nr_hugepages) and gives them back on exit.
HP_KNOB=/proc/sys/vm/nr_hugepages
HP_FREE=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
HP_OLD=
_hp_restore() {
	local rc=$?
	[ -z "$HP_OLD" ] || echo "$HP_OLD" >$HP_KNOB 2>/dev/null || true
	(exit $rc)
	_cleanup
}
trap _hp_restore EXIT

reserve_hugepages() {
	local n=$1
	[ -w $HP_KNOB ] && [ -r $HP_FREE ] || skip "no 2 MiB hugetlb pool control"
	HP_OLD=$(cat $HP_KNOB)
	echo $((HP_OLD + n)) >$HP_KNOB 2>/dev/null || skip "cannot raise nr_hugepages"
	[ "$(cat $HP_FREE)" -ge "$n" ] || skip "only $(cat $HP_FREE) of $n huge pages could be reserved"
}
