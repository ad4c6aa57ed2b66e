#!/bin/bash
# The daemon clears set-id bits itself (FUSE_CAP_HANDLE_KILLPRIV_V2, so that writes need
# no security.capability lookup each): a write by an unprivileged user clears set-uid and
# a group-executable set-gid in the backing file, a write by root keeps them, as on ext4.
. "$(dirname "$0")/lib.sh"
require_mount_env
command -v setpriv >/dev/null || fail "setpriv missing (scripts/setup installs util-linux)"
S=$T/src M=$T/mnt
mount_rdmafs "$S" "$M" -o flush_interval=0,flush_on_close=yes
chmod 755 "$T"

printf 'data' >"$M/f"
chmod 6777 "$M/f"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "printf more >>'$M/f'" ||
	fail "unprivileged append failed"
[ "$(stat -c %a "$S/f")" = 777 ] || fail "set-id bits kept after an unprivileged write: $(stat -c %a "$S/f")"
[ "$(cat "$S/f")" = datamore ] || fail "content: $(cat "$S/f")"

chmod 6777 "$M/f"
printf '!' >>"$M/f"
[ "$(stat -c %a "$S/f")" = 6777 ] || fail "root's write cleared set-id bits: $(stat -c %a "$S/f")"

# Without group execute, set-gid is mandatory locking's mark, not a privilege: kept.
chmod 2666 "$M/f"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "printf x >>'$M/f'"
[ "$(stat -c %a "$S/f")" = 2666 ] || fail "non-executable set-gid cleared: $(stat -c %a "$S/f")"

unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
