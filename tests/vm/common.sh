# Host-side helpers of the qemu/Soft-RoCE harness: cache layout, messages, skip. Sourced
# by tests/vm/setup, tests/vm/run and tests/vm/run-all (bash).
#
# Environment:
#   RDMAFS_VM_CACHE    cache folder (default /var/cache/rdmafs-vm when writable,
#                      else ${XDG_CACHE_HOME:-~/.cache}/rdmafs-vm)
#   RDMAFS_VM_SUITE    apt suite of the guest kernel (default <codename>-backports)
#   RDMAFS_VM_OFFLINE=1  never touch the network; use what the cache holds

vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm_top=$(cd "$vm_dir/../.." && pwd)
vm_prog=${vm_prog:-$(basename "$0")}

say() { printf '%s: %s\n' "$vm_prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$vm_prog" "$*" >&2; exit 1; }
# Exit 77 is the "skipped" of meson, automake and libfuse's tests.
skip() { printf '%s: SKIP: %s\n' "$vm_prog" "$*" >&2; exit 77; }

vm_cache_dir() {
	if [ -n "${RDMAFS_VM_CACHE:-}" ]; then
		printf '%s\n' "$RDMAFS_VM_CACHE"
	elif mkdir -p /var/cache/rdmafs-vm 2>/dev/null && [ -w /var/cache/rdmafs-vm ]; then
		printf '%s\n' /var/cache/rdmafs-vm
	else
		printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/rdmafs-vm"
	fi
}

vm_cache=$(vm_cache_dir)
mkdir -p "$vm_cache" || die "cannot create cache folder $vm_cache"
vm_cache=$(cd "$vm_cache" && pwd)

# The guest sees the host root through 9p and is told paths on the kernel command line,
# which splits at blanks.
case "$vm_top$vm_cache" in
*[[:space:]]*) die "paths with blanks are not supported: $vm_top, $vm_cache" ;;
esac

# What setup produced: KV, VMLINUZ, MODROOT, INITRD (absolute host paths).
vm_env_file=$vm_cache/current.env
