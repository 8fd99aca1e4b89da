#!/bin/bash
# Build the base initramfs of the VM rig (cached): busybox-static with its applet
# links, the kernel modules (ipvlan macvlan 8021q dummy veth + dependencies,
# decompressed, in load order), iproute2 (optional, default on), and
# guest-init as /init. run.sh appends the test binary as /test.
# The result is rebuilt only when an input changes (this script, guest-init,
# the unpacked kernel/busybox, iproute2 and its libraries, the env below).
#
# Usage: build-initramfs.sh [--force]
# Out:   $IPVLAN_RS_CACHE/vm/initramfs/base.img (path printed on stdout); with
#        MODS, EXTRA, IPROUTE2, IPBIN or COMPRESS other than the defaults,
#        base-<hash of those settings>.img, so that two rigs that load different
#        modules (make test-vm, make test-powercut) do not rebuild each other's
# Env:   IPROUTE2=1|0      include the host's iproute2 `ip` as /usr/local/sbin/ip (default 1;
#                          ARCH=arm64: the arm64 one setup.sh unpacked into $GUEST_ROOT)
#        IPBIN=/usr/sbin/ip (ARCH=arm64: $GUEST_ROOT/bin/ip)
#        ARCH=amd64|arm64  the guest's architecture (common.sh)
#        MODS="ipvlan macvlan 8021q dummy veth"   modules to load (deps are added)
#        EXTRA="hostpath:guestpath ..."            extra files
#        COMPRESS=gzip|zstd|none                   (default gzip)
set -euo pipefail
PROG=build-initramfs.sh
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
MODS=${MODS:-"ipvlan macvlan 8021q dummy veth"}
IPROUTE2=${IPROUTE2:-1}
DEFAULT_IPBIN=/usr/sbin/ip
[[ $ARCH == amd64 ]] || DEFAULT_IPBIN=$GUEST_ROOT/bin/ip
IPBIN=${IPBIN:-$DEFAULT_IPBIN}
COMPRESS=${COMPRESS:-gzip}
EXTRA=${EXTRA:-}
FORCE=0; [[ ${1:-} == --force ]] && FORCE=1
SETTINGS="mods=$MODS iproute2=$IPROUTE2 ipbin=$IPBIN compress=$COMPRESS extra=$EXTRA"
if [[ $SETTINGS != "mods=ipvlan macvlan 8021q dummy veth iproute2=1 ipbin=$DEFAULT_IPBIN compress=gzip extra=" ]]; then
  BASE_INITRD=${BASE_INITRD%.img}-$(echo "$SETTINGS" | sha256sum | cut -c1-12).img
fi

[[ -f $VM_CACHE/setup.stamp && -x $BUSYBOX && -x $HOST_BUSYBOX ]] && kernel_image >/dev/null ||
  die "the VM cache $VM_CACHE is not set up: run ARCH=$ARCH $VM_RIG_DIR/setup.sh first" 69
[[ -f $VM_RIG_DIR/guest-init ]] || die "missing $VM_RIG_DIR/guest-init"
case $COMPRESS in gzip|zstd|none) ;; *) die "COMPRESS must be gzip, zstd or none";; esac

iproute_files() { # the ip binary, its libraries and the dynamic loader (host paths)
  if [[ $ARCH == amd64 ]]; then
    echo "$IPBIN"; ldd "$IPBIN" | grep -o '/[^ ]*'
    return
  fi
  # another architecture: no ldd; the NEEDED entries, resolved in the guest tree
  echo "$IPBIN"
  guest_needed "$IPBIN"
}
inputs_hash() {
  {
    echo "$SETTINGS"
    sha256sum "$VM_RIG_DIR/build-initramfs.sh" "$VM_RIG_DIR/guest-init"
    cat "$KERNEL_ROOT/.stamp" "$VM_CACHE/busybox/.stamp"
    if [[ $IPROUTE2 == 1 ]]; then iproute_files | cut -d' ' -f1 | xargs stat -L -c '%n %s %Y'; fi
    for e in $EXTRA; do stat -L -c '%n %s %Y' "${e%%:*}"; done
  } | sha256sum | cut -c1-32
}
H=$(inputs_hash) || die "cannot hash the inputs (IPBIN=$IPBIN, EXTRA=$EXTRA exist?)"
if [[ $FORCE == 0 && -f $BASE_INITRD && -f $BASE_INITRD.inputs && $(cat "$BASE_INITRD.inputs") == "$H" ]]; then
  echo "$BASE_INITRD"; exit 0
fi

mkdir -p "$(dirname "$BASE_INITRD")"
exec 9>"$VM_CACHE/.initramfs.lock"
flock 9
# somebody else may have built it while we waited
if [[ $FORCE == 0 && -f $BASE_INITRD && -f $BASE_INITRD.inputs && $(cat "$BASE_INITRD.inputs") == "$H" ]]; then
  echo "$BASE_INITRD"; exit 0
fi

S=$(mktemp -d "${TMPDIR:-/tmp}/qk-initramfs.XXXXXX")
trap 'rm -rf "$S" "$S.cpio"' EXIT
mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,usr/local/sbin,usr/local/bin,lib/qk-modules,proc,sys,dev,run,tmp,root,etc,var}
ln -s ../run "$S/var/run"
cp "$BUSYBOX" "$S/bin/busybox"
# applet links made here, not by `busybox --install` in the guest (saves time)
while read -r a; do
  [[ $a == bin/busybox || -e $S/$a || -L $S/$a ]] && continue
  mkdir -p "$S/$(dirname "$a")"; ln -s /bin/busybox "$S/$a"
done < <("$HOST_BUSYBOX" --list-full)
install -m 755 "$VM_RIG_DIR/guest-init" "$S/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$S/etc/passwd"
printf 'root:x:0:\n' > "$S/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$S/etc/hosts"

# modules: dependencies from the .modinfo "depends=" field (no depmod needed)
MDIR=$(kernel_moddir)
declare -A seen; order=()
add_mod() {
  local m=$1 f deps d
  [[ -n ${seen[$m]:-} ]] && return 0; seen[$m]=1
  f=$(find "$MDIR/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) -print -quit)
  if [[ -z $f ]]; then
    # module names use _ where file names may use -
    f=$(find "$MDIR/kernel" \( -name "${m//_/-}.ko" -o -name "${m//_/-}.ko.*" \) -print -quit)
  fi
  if [[ -z $f ]]; then
    grep -qE "/(${m}|${m//_/-})\.ko" "$MDIR/modules.builtin" 2>/dev/null && return 0
    die "module $m not found in $MDIR"
  fi
  case $f in
    *.ko.xz)  xz -dc "$f" > "$S/lib/qk-modules/$m.ko";;
    *.ko.zst) zstd -qdc "$f" > "$S/lib/qk-modules/$m.ko";;
    *.ko.gz)  gzip -dc "$f" > "$S/lib/qk-modules/$m.ko";;
    *)        cp "$f" "$S/lib/qk-modules/$m.ko";;
  esac
  deps=$(tr '\0' '\n' < "$S/lib/qk-modules/$m.ko" | grep -a '^depends=' | head -1 | cut -d= -f2 | tr ',' ' ')
  for d in $deps; do add_mod "${d//-/_}"; done
  order+=("$m")
}
for m in $MODS; do add_mod "$m"; done
printf '%s\n' "${order[@]}" > "$S/lib/qk-modules/order"

if [[ $IPROUTE2 == 1 ]]; then
  [[ -x $IPBIN ]] || die "IPBIN=$IPBIN not found (set IPROUTE2=0 to leave iproute2 out)"
  cp -L "$IPBIN" "$S/usr/local/sbin/ip"
  # each library at its path in the guest (the second word, when the host's differs)
  iproute_files | tail -n +2 | while read -r l g; do
    g=${g:-$l}
    mkdir -p "$S$(dirname "$g")"; cp -L "$l" "$S$g"
  done
fi

for e in $EXTRA; do
  mkdir -p "$S$(dirname "${e#*:}")"; cp -L "${e%%:*}" "$S${e#*:}"
done

( cd "$S" && find . -mindepth 1 | LC_ALL=C sort | "$HOST_BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null ) > "$S.cpio"
TMPOUT=$BASE_INITRD.tmp.$$
case $COMPRESS in
  gzip) gzip -1 -n -c "$S.cpio" > "$TMPOUT";;
  zstd) zstd -q -3 -c "$S.cpio" > "$TMPOUT";;
  none) cp "$S.cpio" "$TMPOUT";;
esac
mv -f "$TMPOUT" "$BASE_INITRD"
echo "$H" > "$BASE_INITRD.inputs"
note "built $BASE_INITRD ($(stat -c %s "$BASE_INITRD") bytes, $COMPRESS; kernel $(kernel_version); modules: ${order[*]}; iproute2: $([[ $IPROUTE2 == 1 ]] && echo yes || echo no))"
echo "$BASE_INITRD"
