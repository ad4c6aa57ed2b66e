#!/bin/bash
# rdmafs_map hands over staging with the access of the client's open; leases are the
# client's connection: listed, broken (notice + signal), released on close or death;
# evict drops only staging nobody uses.
. "$(dirname "$0")/lib.sh"
require_mount_env
CLIENT=$RDMAFS_BUILD/tests/ctl-client
mount_rdmafs "$T/src" "$T/mnt" -o flush_interval=0,flush_on_close=no,lease_break_time=2
M=$T/mnt S=$T/src

head -c 200000 /dev/zero >"$S/f"
exec 3<>"$M/f"

# map: rw through an O_RDWR open, and the bytes are the file's
out=$("$CLIENT" map "$M/f" rw rw 65) || fail "map rw: $out"
[[ $out == "ok len=200704 first=65" ]] || fail "map rw: $out"
[ "$(head -c 3 "$M/f")" = AAA ] || fail "write through the map not seen by read"
"$RDMAFSCTL" stat --json "$M/f" | grep -q '"changed_bytes":0,' && fail "map write not seen as a change"
"$RDMAFSCTL" flush "$M/f" || fail flush
same_file "$M/f" "$S/f"
[ "$(head -c 3 "$S/f")" = AAA ] || fail "map write not committed"
# read-only open: read-only map only; write-only open: no map
[ "$("$CLIENT" map "$M/f" r r)" = "ok len=200704 first=65" ] || fail "map ro"
[ "$("$CLIENT" map "$M/f" r rw)" = "err EACCES" ] || fail "rw map through a read-only open"
[ "$("$CLIENT" map "$M/f" w r)" = "err EACCES" ] || fail "map through a write-only open"
echo x >"$S/unstaged"
[ "$("$CLIENT" map "$M/unstaged" r r)" = "err ENODATA" ] || fail "map of an unstaged file"

# lease: held, listed, released on close
"$CLIENT" lease "$M/f" >"$T/l1" &
L1=$!
wait_for 5 grep -q held "$T/l1" || fail "lease not held: $(cat "$T/l1")"
"$CLIENT" lease-list "$M" | grep -q "^ok 1" || fail "lease list (mount)"
"$CLIENT" lease-list "$M/f" | grep -q "lease pid=$L1 path=f" || fail "lease list (file)"
"$RDMAFSCTL" lease list "$M/f" | grep -q "^$L1 .*held .* f$" || fail "rdmafsctl lease list"
"$CLIENT" stat "$M/f" | grep -q 'leases=1 ' || fail "stat leases"
# a shrinking truncate breaks it: the holder gets the notice and lets go
# (the client lets go at the notice, well within lease_break_time: the truncate succeeds)
truncate -s 100000 "$M/f" 2>"$T/trunc.err" || fail "truncate of a leased file: $(cat "$T/trunc.err")"
wait $L1 || true
grep -q break "$T/l1" || fail "holder did not see the break: $(cat "$T/l1")"
leases_none() { "$CLIENT" lease-list "$M" | grep -q "^ok 0"; }
wait_for 5 leases_none || fail "lease not released after close"
truncate -s 100000 "$M/f" || fail "truncate after release"

# rdmafsctl lease break: notice and signal (SIGTERM kills the holder: that shows it came)
"$CLIENT" lease "$M/f" 15 >"$T/l2" &
L2=$!
wait_for 5 grep -q held "$T/l2" || fail "lease not held: $(cat "$T/l2")"
# SIGTERM kills the holder, its death releases the lease: the break succeeds
"$RDMAFSCTL" lease break "$M/f" || fail "rdmafsctl lease break"
rc=0; wait $L2 || rc=$?
[ $rc = 143 ] || fail "holder not signalled (exit $rc)"
# holder death releases
"$RDMAFSCTL" lease hold "$M/f" >"$T/l3" &
L3=$!
wait_for 5 grep -q held "$T/l3" || fail "lease hold: $(cat "$T/l3")"
"$CLIENT" lease-list "$M" | grep -q "^ok 1" || fail "lease hold not listed"
kill -9 $L3; wait $L3 || true
wait_for 5 leases_none || fail "lease not released on holder death"

"$RDMAFSCTL" stat --json "$M" | python3 -c '
import json, sys
l = json.load(sys.stdin)[0]["lease_stats"]
assert l["granted"] >= 3 and l["breaks"] >= 2, l' || fail "lease_stats in mount stat"

# lease list in pages (68 holders a reply): 150 leases of root, who has no per-uid cap
sock=$(sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" | tail -1)
coproc LH { python3 "$(dirname "$0")/ctl_flood.py" "$sock" leases 150 "$M/f"; }
lh_out=${LH[0]} lh_in=${LH[1]} lh_pid=$LH_PID
read -r -t 60 line <&"$lh_out" || fail "lease flood did not answer"
[[ $line == "granted=150" ]] || fail "150 leases: $line"
"$CLIENT" lease-list "$M" >"$T/ll"
head -1 "$T/ll" | grep -qx "ok 150" || fail "mount lease list: $(head -1 "$T/ll")"
# one holder process: 150 records alike (a page lost or sent twice changes the count)
[ "$(grep -c '^lease pid=[0-9]* path=f$' "$T/ll")" = 150 ] || fail "lease list records"
[ "$(grep '^lease' "$T/ll" | sort -u | wc -l)" = 1 ] || fail "lease list holders differ"
"$CLIENT" lease-list "$M/f" | head -1 | grep -qx "ok 150" || fail "file lease list"
exec {lh_in}>&-
wait "$lh_pid" || true
no_leases() { "$CLIENT" lease-list "$M" | grep -q "^ok 0"; }
wait_for 10 no_leases || fail "150 leases not released on close"

# evict: not while open; afterwards the file is committed and unstaged
out=$("$RDMAFSCTL" evict "$M") || fail "evict: $out"
[[ $out == "evicted 0 of 1 "* ]] || fail "evicted an open file: $out"
exec 3>&-
# FUSE_RELEASE is asynchronous: wait until the daemon has seen the last close
no_opens() { "$CLIENT" mount-stat "$M" | grep -q 'opens=0 '; }
wait_for 5 no_opens || fail "the daemon never saw the last close: $("$CLIENT" mount-stat "$M")"
# (flush_interval=0: no pass drops it before; only the eviction does)
out=$("$CLIENT" evict "$M")
[ "$out" = "ok evicted=1 of 1" ] || fail "rdmafs_evict: $out"
[ "$(metric "$M" rdmafs_evictions_total)" = 1 ] || fail "eviction not counted"
"$RDMAFSCTL" stat --json "$M/f" | grep -q '"staged":false' || fail "still staged after evict"
same_file "$M/f" "$S/f"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
