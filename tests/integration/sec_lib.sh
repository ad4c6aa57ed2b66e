# tests/integration/sec_lib.sh - for the sec_* tests (issue 12), sourced after lib.sh:
# an unprivileged user to run attacks as, and the mount's control socket.
U=rdmafs-test
CLIENT=$RDMAFS_BUILD/tests/ctl-client
FLOOD=$(dirname "$0")/ctl_flood.py
PY=/usr/bin/python3	# not a shim under /root that the user cannot run

# require_user: the user exists and can run the build's binaries.
require_user() {
	id "$U" >/dev/null 2>&1 || useradd -M -r -s /usr/sbin/nologin "$U" 2>/dev/null ||
		skip "cannot create user $U"
	as_user test -x "$RDMAFSCTL" || skip "$U cannot run the build's binaries"
	chmod 755 "$T"
}
as_user() { setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups -- "$@"; }
# In the background: "${AS_USER[@]}" CMD & (then $! is the attacking process itself).
AS_USER=(setpriv --reuid="$U" --regid="$U" --clear-groups --)

# ctl_sock: the control socket the daemon logged.
ctl_sock() { sed -n 's/.*ctl: control socket \(.*\)$/\1/p' "$DAEMON_LOG" | tail -1; }

# json_field FIELD: the number after "FIELD": in stdin (first occurrence).
json_field() { grep -o "\"$1\":[0-9a-z]*" | head -1 | cut -d: -f2; }
