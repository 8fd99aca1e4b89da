# Sourced by setup.sh, build-initramfs.sh and run.sh: cache layout and helpers.
# shellcheck shell=bash
VM_RIG_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")

die() { echo "${PROG:-$(basename "$0")}: ERROR: $1" >&2; exit "${2:-1}"; }
note() { echo "${PROG:-$(basename "$0")}: $*" >&2; }

# ARCH: the guest's architecture. amd64 (default) runs qemu-system-x86_64;
# arm64 runs qemu-system-aarch64 (TCG, machine virt) on Debian's arm64 kernel,
# with arm64 busybox and iproute2 (+ its libraries) fetched through a private
# apt configuration of that architecture (nothing on the host changes).
ARCH=${ARCH:-amd64}
case $ARCH in
  amd64)
    VM_CACHE=${IPVLAN_RS_CACHE:-/var/cache/ipvlan-rs-test}/vm
    QEMU_PKG=qemu-system-x86; QEMU_NAME=qemu-system-x86_64
    RUST_TARGET=x86_64-unknown-linux-gnu; GUEST_CONSOLE=ttyS0 ;;
  arm64)
    VM_CACHE=${IPVLAN_RS_CACHE:-/var/cache/ipvlan-rs-test}/vm-arm64
    QEMU_PKG=qemu-system-arm; QEMU_NAME=qemu-system-aarch64
    RUST_TARGET=aarch64-unknown-linux-musl; GUEST_CONSOLE=ttyAMA0 ;;
  *) die "ARCH=$ARCH: amd64 or arm64" 64 ;;
esac
QEMU_ROOT=$VM_CACHE/qemu            # dpkg -x of $QEMU_PKG + the libs the host lacks
KERNEL_ROOT=$VM_CACHE/kernel        # dpkg -x of linux-image-<abi>-cloud-$ARCH
BUSYBOX=$VM_CACHE/busybox/bin/busybox  # from busybox-static (of the guest's architecture)
GUEST_ROOT=$VM_CACHE/guest          # arm64 only: dpkg -x of iproute2 and the libraries it needs
BASE_INITRD=$VM_CACHE/initramfs/base.img
QEMU_BIN=$QEMU_ROOT/usr/bin/$QEMU_NAME
# the busybox that runs on this host (cpio, --list-full): the guest's own on
# amd64, else the host's busybox-static of the same Debian release (same applets)
HOST_BUSYBOX=$BUSYBOX
[[ $ARCH == amd64 ]] || HOST_BUSYBOX=$VM_CACHE/host-busybox/bin/busybox

# apt options for the guest's packages: the host's sources, read for the
# guest's architecture into lists of the cache's own (arm64)
APT_GUEST=()
[[ $ARCH == amd64 ]] || APT_GUEST=(-o APT::Architecture="$ARCH" -o APT::Architectures::="$ARCH"
  -o Dir::State::Lists="$VM_CACHE/apt/lists" -o Dir::Cache="$VM_CACHE/apt/cache"
  -o Dir::State::Status="$VM_CACHE/apt/status")

# qemu's machine, CPU and firmware arguments for the guest's architecture
qemu_machine_args() {
  case $ARCH in
    amd64) echo "-M pc -accel tcg -cpu ${VM_CPU:-max}" ;;
    # cortex-a57: under TCG, -cpu max emulates pointer authentication slowly
    arm64) echo "-M virt -accel tcg -cpu ${VM_CPU:-cortex-a57}" ;;
  esac
}

# qemu from the unpacked .debs: its libraries first, its modules and firmware only
# (never the host's, which may belong to another qemu version).
qemu() {
  LD_LIBRARY_PATH=$QEMU_ROOT/usr/lib/x86_64-linux-gnu:$QEMU_ROOT/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
  QEMU_MODULE_DIR=$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu \
    "$QEMU_BIN" "$@"
}
qemu_fw_args() {
  if [[ $ARCH == amd64 ]]; then echo "-L $QEMU_ROOT/usr/share/qemu -L $QEMU_ROOT/usr/share/seabios"
  else echo "-L $QEMU_ROOT/usr/share/qemu"; fi   # -kernel boots without firmware on virt
}

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

# in_guest PATH: PATH of the unpacked guest tree ($GUEST_ROOT) as the host
# sees it, following symlinks inside that tree (absolute ones included)
in_guest() {
  local p=$GUEST_ROOT$1 t n=0
  while [[ -L $p ]] && ((n++ < 16)); do
    t=$(readlink "$p")
    if [[ $t == /* ]]; then p=$GUEST_ROOT$t; else p=$(dirname "$p")/$t; fi
  done
  echo "$p"
}
# guest_needed BIN: the dynamic loader and the libraries (recursively) that
# BIN of the guest tree needs, one "hostpath guestpath" line each, found by
# readelf's NEEDED entries (no ldd for another architecture)
guest_needed() {
  local -A seen=(); local queue=("$1") f lib d found interp
  interp=$(readelf -lW "$1" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
  [[ -n $interp ]] && echo "$(in_guest "$interp") $interp"
  while ((${#queue[@]})); do
    f=${queue[0]}; queue=("${queue[@]:1}")
    for lib in $(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [[ -n ${seen[$lib]:-} ]] && continue
      seen[$lib]=1; found=
      for d in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu; do
        [[ -e $(in_guest "$d/$lib") ]] || continue
        found=$(in_guest "$d/$lib"); echo "$found $d/$lib"; queue+=("$found"); break
      done
      [[ -n $found ]] || { echo "guest_needed: $lib (needed by $f) is not in $GUEST_ROOT" >&2; return 1; }
    done
  done
}
