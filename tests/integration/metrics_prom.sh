#!/bin/bash
# rdmafsctl metrics / stat --prometheus: the output parses with the Prometheus client's own
# text parser (python3-prometheus-client), and its values follow what the test does:
# committed bytes and commits grow by what a flush wrote, the commit latency histogram
# counts every commit, dirty bytes show an unflushed write, a held lease, an eviction and
# an ENOSPC commit failure (by errno label) are counted.
. "$(dirname "$0")/lib.sh"
require_mount_env
PY=/usr/bin/python3	# Debian's, where python3-prometheus-client is installed
$PY -c 'import prometheus_client.parser' 2>/dev/null ||
	fail "python3-prometheus-client missing (scripts/setup installs it)"
S=$T/src M=$T/mnt
loop_fs 64M ext4 "$S"
# Nothing commits behind our back: no periodic write-back, no commit on close.
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=no

# scrape NAME [rdmafsctl args]: parse the output; P_<metric>=value for this mount's samples
# (labels other than mountpoint/source appended: P_rdmafs_commit_failures_total_ENOSPC).
# The parser script fails on anything that is not a well-formed, consistent exposition.
scrape() {
	local out
	local rc=0
	"$RDMAFSCTL" "$@" >"$T/scrape.txt" 2>"$T/scrape.err" || rc=$?
	# Other mounts on the machine (other tests, older daemons) may fail: exit 1, up 0.
	[ $rc = 0 ] || { [ -n "${ALLOW_OTHERS:-}" ] && [ $rc = 1 ]; } ||
		fail "rdmafsctl $*: exit $rc: $(cat "$T/scrape.err")"
	out=$($PY - "$T/scrape.txt" "$(realpath "$M")" "$(realpath "$S")" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
mnt, src = sys.argv[2], sys.argv[3]
def die(msg):
    print("echo 'bad exposition: %s'; false" % msg.replace("'", ""))
    sys.exit(0)
out, seen = {}, set()
hist = {}
for fam in text_string_to_metric_families(text):
    if not fam.name.startswith("rdmafs_"):
        die("name %s" % fam.name)
    if fam.type not in ("gauge", "counter", "histogram"):
        die("type of %s: %s" % (fam.name, fam.type))
    if not fam.documentation:
        die("no HELP for %s" % fam.name)
    if fam.name in seen:
        die("family %s twice" % fam.name)
    seen.add(fam.name)
    for s in fam.samples:
        if s.labels.get("mountpoint") != mnt:
            continue
        if s.labels.get("source") != src:
            die("source label %r" % s.labels.get("source"))
        if s.value < 0:
            die("negative %s" % s.name)
        extra = [v for k, v in sorted(s.labels.items()) if k not in ("mountpoint", "source", "le")]
        if s.name.endswith("_bucket"):
            hist.setdefault(s.name, []).append((float(s.labels["le"]), s.value))
            continue
        out["_".join([s.name] + extra)] = s.value
for name, b in hist.items():
    if [le for le, _ in b] != sorted(le for le, _ in b) or b[-1][0] != float("inf"):
        die("%s: le not ascending to +Inf" % name)
    if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        die("%s: buckets not monotonic" % name)
    base = name[:-len("_bucket")]
    if b[-1][1] != out.get(base + "_count"):
        die("%s: +Inf bucket %s != count %s" % (base, b[-1][1], out.get(base + "_count")))
if "rdmafs_up" not in out:
    die("no samples for mountpoint %s" % mnt)
for k, v in out.items():
    print("P_%s=%d" % (k, int(v)) if v == int(v) else "P_%s=%s" % (k, v))
PY
) || fail "parser: $out"
	eval "$out"
}
# The counter families a textfile collector user graphs (names are documented).
scrape metrics "$M"
for m in up staged_bytes dirty_bytes staged_files leases files_staged_total evictions_total \
	committed_bytes_total commits_total commit_duration_seconds_count \
	commit_duration_seconds_sum lease_breaks_total staging_budget_bytes; do
	v=P_rdmafs_$m
	[ -n "${!v:-}" ] || fail "rdmafs_$m missing"
done
[ "$P_rdmafs_up" = 1 ] || fail "rdmafs_up=$P_rdmafs_up"
c0=$P_rdmafs_committed_bytes_total n0=$P_rdmafs_commits_total

N=$((5 * 1024 * 1024 + 12345))
exec 3<>"$M/f"	# stays staged while open
head -c $N /dev/urandom >"$T/data"
dd if="$T/data" of="$M/f" bs=1M conv=notrunc status=none
scrape stat --prometheus "$M"
[ "$P_rdmafs_staged_files" -ge 1 ] || fail "staged_files=$P_rdmafs_staged_files with a file open"
[ "$P_rdmafs_dirty_bytes" -ge $N ] || fail "dirty_bytes=$P_rdmafs_dirty_bytes after writing $N"
[ "$P_rdmafs_staged_bytes" -ge $N ] || fail "staged_bytes=$P_rdmafs_staged_bytes"
"$RDMAFSCTL" flush "$M/f" || fail "flush"
same_file "$S/f" "$T/data"
scrape metrics "$M"
[ $((P_rdmafs_committed_bytes_total - c0)) -ge $N ] ||
	fail "committed_bytes_total grew by $((P_rdmafs_committed_bytes_total - c0)) after flushing $N"
[ "$P_rdmafs_commits_total" -gt "$n0" ] || fail "commits_total did not grow"
[ "$P_rdmafs_commit_duration_seconds_count" = "$P_rdmafs_commits_total" ] ||
	fail "histogram count $P_rdmafs_commit_duration_seconds_count != commits $P_rdmafs_commits_total"
[ "$P_rdmafs_dirty_bytes" = 0 ] || fail "dirty_bytes=$P_rdmafs_dirty_bytes after flush"
$PY -c "import sys; sys.exit(not 0 < float('$P_rdmafs_commit_duration_seconds_sum') < 60)" ||
	fail "commit duration sum $P_rdmafs_commit_duration_seconds_sum"
[ "$P_rdmafs_files_staged_total" -ge 1 ] || fail "files_staged_total"

# A held lease is a gauge of 1; no-scan leaves dirty_bytes out rather than reporting 0.
"$RDMAFSCTL" lease hold "$M/f" >"$T/lease.out" &
LPID=$!
_pids+=("$LPID")
wait_for 10 grep -q 'lease held' "$T/lease.out" || fail "lease not taken"
scrape metrics --no-scan "$M"
[ "$P_rdmafs_leases" = 1 ] || fail "leases=$P_rdmafs_leases with one held"
[ -z "${P_rdmafs_dirty_bytes_nope:-}" ]
grep -q '^rdmafs_dirty_bytes{' "$T/scrape.txt" && fail "dirty_bytes reported without a scan"
kill "$LPID"
wait "$LPID" 2>/dev/null || true
wait_for 10 bash -c "'$RDMAFSCTL' metrics --no-scan '$M' | grep -q '^rdmafs_leases{.*} 0\$'" ||
	fail "lease gauge did not drop"

# Eviction: unused staging is committed and dropped; the counters say how much. A file is
# released by the flusher at its last close unless a writable mapping outlives the close:
# such a file stays staged (no periodic pass here) until rdmafsctl evict.
exec 3>&-
"$RDMAFS_BUILD/tests/helpers/rdmafs-mapcheck" --write 0x11 --close --hold 1 "$M/f" >/dev/null ||
	fail "mapcheck"
"$RDMAFSCTL" evict "$M" | tee "$T/evict.out"
ev=$(sed -n 's/^evicted \([0-9]*\) of.*/\1/p' "$T/evict.out")
scrape metrics "$M"
[ "$ev" -ge 1 ] && [ "$P_rdmafs_evictions_total" = "$ev" ] ||
	fail "evictions_total=$P_rdmafs_evictions_total, rdmafsctl evict said $ev"
[ "$P_rdmafs_evicted_bytes_total" -ge $N ] || fail "evicted_bytes_total=$P_rdmafs_evicted_bytes_total"
[ "$P_rdmafs_staged_files" = 0 ] || fail "staged_files=$P_rdmafs_staged_files after evict"
[ "$P_rdmafs_files_released_total" -ge 1 ] || fail "files_released_total"
c1=$P_rdmafs_committed_bytes_total

# ENOSPC: a failed commit is counted under its errno; committed bytes do not move.
exec 3<>"$M/g"
dd if=/dev/zero of="$S/filler" bs=1M status=none 2>/dev/null || true	# until full
sync
dd if=/dev/urandom of="$M/g" bs=1M count=8 status=none
"$RDMAFSCTL" flush "$M/g" 2>/dev/null && fail "flush on a full backing FS succeeded"
scrape metrics "$M"
[ "${P_rdmafs_commit_failures_total_ENOSPC:-0}" -ge 1 ] ||
	fail "no ENOSPC in commit_failures_total: $(grep failures_total "$T/scrape.txt")"
[ "$P_rdmafs_failing_files" = 1 ] || fail "failing_files=$P_rdmafs_failing_files"
[ "$P_rdmafs_committed_bytes_total" = "$c1" ] || fail "committed bytes moved on a failed commit"
rm "$S/filler"
"$RDMAFSCTL" flush "$M/g" || fail "flush after space was freed"
exec 3>&-

# Without PATH: every rdmafs mount, ours among them.
ALLOW_OTHERS=1 scrape metrics
[ "$P_rdmafs_up" = 1 ] || fail "up=$P_rdmafs_up for our mount"
[ "$P_rdmafs_failing_files" = 0 ] || fail "failing_files after the retry"
# A path that is not on rdmafs: an error, exit 1.
"$RDMAFSCTL" metrics /tmp >/dev/null 2>&1 && fail "metrics of /tmp succeeded"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log 'No space left'
