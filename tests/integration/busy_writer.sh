#!/bin/bash
# Writers that keep writing while periodic flushes run (flush_interval=1): a CPU writer
# storing through a mapping and pinned kernel writes in rounds. After they stop and a
# final flush (fsync), backing equals staging.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=1,flush_on_close=no,chunk_size=16K
require_passthrough

exec 3<>"$M/w"	# keeps the file staged between the writers
"$HELPER" writer "$M/w" $((8 << 20)) 5 >/dev/null 2>"$T/writer.err" || fail "writer: $(cat "$T/writer.err")"
n=$(stat_field "$M/w" commits)	# commits that wrote data since it was staged
[ "$n" -ge 3 ] || fail "only $n commits ran during the 5 s writer: no race was tested"
[ "$("$HELPER" fsync "$M/w")" = ok ] || fail "final fsync"
cmp -s "$S/w" "$M/w" || fail "after the writer and a final flush, backing != staging"

out=$(nice "$PINWRITE" --size 8M --rounds 40 --no-fsync --quiet "$M/w") || fail "pinwrite: $out"
[ "$("$HELPER" fsync "$M/w")" = ok ] || fail "final fsync after pinned rounds"
cmp -s "$S/w" "$M/w" || fail "after pinned rounds and a final flush, backing != staging"
head -c 8M "$S/w" >"$T/w8"
[ "$(xxh3 "$T/w8")" = "${out#xxh3=}" ] || fail "backing != the last pinned round"
exec 3>&-
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
