#!/bin/bash
# Command line: --help, --version, --check-config; bad config files, bad -o values and
# unknown options give a clear message (file:line or the option), exit non-zero and
# mount nothing.
. "$(dirname "$0")/lib.sh"
require_mount_env
S=$T/src M=$T/mnt
mkdir -p "$S" "$M"

out=$("$RDMAFS" --help) || fail "--help exit $?"
[[ $out == *usage:*SOURCE*MOUNTPOINT* ]] || fail "--help: $out"
[[ $out == *conf=FILE* ]] || fail "--help does not mention conf=FILE"
out=$("$RDMAFS" -h) || fail "-h exit $?"
out=$("$RDMAFS" --version) || fail "--version exit $?"
ver=$(sed -n "s/^\tversion: '\(.*\)',/\1/p" "${RDMAFS_SOURCE:-$(dirname "$0")/../..}/meson.build")
[[ $out == "rdmafs $ver "* ]] || fail "--version: '$out', expected rdmafs $ver"

# --check-config prints the merged config, file then -o.
printf 'chunk_size = 16K\nflush_interval = 7\n' >"$T/good.conf"
out=$("$RDMAFS" --check-config -o conf="$T/good.conf",flush_interval=9) || fail "--check-config"
[[ $out == *"chunk_size = 16384"* && $out == *"flush_interval = 9"* ]] ||
	fail "--check-config: $out"

# expect_refusal PATTERN ARGS...: the daemon exits non-zero within 10 s, says PATTERN on
# stderr, and nothing is mounted on $M.
expect_refusal() {
	local pat=$1 rc=0 err
	shift
	err=$(timeout 10 "$RDMAFS" "$@" 2>&1 >/dev/null) || rc=$?
	is_mounted "$M" && { umount "$M"; fail "'$*' mounted"; }
	[ $rc != 0 ] || fail "'$*' exited 0"
	[ $rc != 124 ] || fail "'$*' did not exit (it was killed after 10 s)"
	[[ $err == *$pat* ]] || fail "'$*': message '$err' lacks '$pat'"
	grep -q "$M" /proc/mounts && fail "something is mounted on $M"
	return 0
}

printf '# comment\nchunk_size = 16K\nflush_interval = soon\nstaging = thp\n' >"$T/bad.conf"
expect_refusal "$T/bad.conf:3: bad value 'soon' for flush_interval" "$S" "$M" -f -o conf="$T/bad.conf"
printf 'chunk_size = 16K\n\nno_such_key = 1\n' >"$T/bad2.conf"
expect_refusal "$T/bad2.conf:3: unknown key 'no_such_key'" "$S" "$M" -f -o conf="$T/bad2.conf"
printf 'chunk_size = 16K\nthis is not a key value line\n' >"$T/bad3.conf"
expect_refusal "$T/bad3.conf:2: syntax error" "$S" "$M" -f -o conf="$T/bad3.conf"
expect_refusal "$T/missing.conf: No such file" "$S" "$M" -f -o conf="$T/missing.conf"
expect_refusal "option -o chunk_size=3K: bad value '3K' for chunk_size" "$S" "$M" -f -o chunk_size=3K
expect_refusal "option -o staging_budget=0: bad value" "$S" "$M" -f -o staging_budget=0
# The -o value is checked even when the file is good.
expect_refusal "option -o flush_on_close=perhaps" "$S" "$M" -f -o conf="$T/good.conf",flush_on_close=perhaps
expect_refusal "unknown option(s): \`-o bogus_option'" "$S" "$M" -f -o bogus_option
expect_refusal "unknown option(s): \`-o bogus=1'" "$S" "$M" -f -o bogus=1
expect_refusal "source $T/nonexistent: No such file" "$T/nonexistent" "$M" -f
expect_refusal "need SOURCE and MOUNTPOINT" "$S" -f
expect_refusal "unexpected argument" "$S" "$M" "$T/third" -f
expect_refusal "mountpoint" "$S" "$T/nomnt" -f

# And a good command line does mount.
mount_rdmafs "$S" "$M" -o conf="$T/good.conf"
[ "$(stat_field "$M" chunk_size)" = 16384 ] || fail "config file not applied (chunk_size)"
[ "$(stat_field "$M" flush_interval)" = 7 ] || fail "config file not applied (flush_interval)"
unmount_rdmafs "$M" || fail "daemon exit code $?"
check_daemon_log
