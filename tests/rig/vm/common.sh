# Sourced by setup.sh, build-initramfs.sh and run.sh: cache layout and helpers.
# shellcheck shell=bash
VM_RIG_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
VM_CACHE=${IPVLAN_RS_CACHE:-/var/cache/ipvlan-rs-test}/vm
QEMU_ROOT=$VM_CACHE/qemu            # dpkg -x of qemu-system-x86 + the libs the host lacks
KERNEL_ROOT=$VM_CACHE/kernel        # dpkg -x of linux-image-<abi>-cloud-amd64
BUSYBOX=$VM_CACHE/busybox/bin/busybox  # from busybox-static
BASE_INITRD=$VM_CACHE/initramfs/base.img
QEMU_BIN=$QEMU_ROOT/usr/bin/qemu-system-x86_64

die() { echo "${PROG:-$(basename "$0")}: ERROR: $1" >&2; exit "${2:-1}"; }
note() { echo "${PROG:-$(basename "$0")}: $*" >&2; }

# qemu from the unpacked .debs: its libraries first, its modules and firmware only
# (never the host's, which may belong to another qemu version).
qemu() {
  LD_LIBRARY_PATH=$QEMU_ROOT/usr/lib/x86_64-linux-gnu:$QEMU_ROOT/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
  QEMU_MODULE_DIR=$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu \
    "$QEMU_BIN" "$@"
}
qemu_fw_args() { echo "-L $QEMU_ROOT/usr/share/qemu -L $QEMU_ROOT/usr/share/seabios"; }

# kernel version and module directory of the unpacked kernel (lib/ or usr/lib/)
kernel_moddir() {
  local d
  for d in "$KERNEL_ROOT/lib/modules" "$KERNEL_ROOT/usr/lib/modules"; do
    [[ -d $d ]] || continue
    set -- "$d"/*/
    [[ $# -eq 1 && -d $1 ]] && { echo "${1%/}"; return 0; }
  done
  return 1
}
kernel_version() { local m; m=$(kernel_moddir) && basename "$m"; }
kernel_image() { local v; v=$(kernel_version) && [[ -f $KERNEL_ROOT/boot/vmlinuz-$v ]] && echo "$KERNEL_ROOT/boot/vmlinuz-$v"; }
