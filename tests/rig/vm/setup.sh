#!/bin/bash
# Fetch what the VM rig needs into the cache, WITHOUT installing anything
# system-wide: `apt-get download` + `dpkg -x` of
#   - qemu-system-x86 and the libraries this host lacks (installing bookworm's
#     qemu-system-x86 would remove this image's qemu-utils 10 from backports),
#   - busybox-static,
#   - the current linux-image-<abi>-cloud-amd64 (resolved through the meta
#     package linux-image-cloud-amd64: old ABI packages leave the archive).
# ARCH=arm64 (cache <root>/vm-arm64): qemu-system-arm (the host's architecture),
#   and of arm64, through apt lists of the cache's own: linux-image-cloud-arm64,
#   busybox-static, iproute2 and the libraries its `ip` needs (GUEST_PKGS);
#   plus the host's busybox-static (to pack the initramfs).
# Idempotent: a second run only checks that the cache is complete, that qemu
# runs and that the apt package lists did not change since the last resolution.
#
# Usage: setup.sh
# Env:   IPVLAN_RS_CACHE  cache root (default /var/cache/ipvlan-rs-test; this uses <root>/vm)
#        APT_UPDATE=1     run `apt-get update` first (otherwise only when a lookup or download fails)
#        REFRESH=1        re-resolve the packages even if nothing seems to have changed
#        KFLAVOUR         kernel flavour (default cloud-$ARCH)
#        ARCH=amd64|arm64 the guest's architecture (common.sh)
set -euo pipefail
PROG=setup.sh
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
KFLAVOUR=${KFLAVOUR:-cloud-$ARCH}
# arm64: /usr/local/sbin/ip in the guest is Debian's arm64 iproute2 with these
# libraries; the DHCP case's dnsmasq (tests/vm-guest/run.sh) likewise
GUEST_PKGS=()
[[ $ARCH == amd64 ]] || GUEST_PKGS=(iproute2 libbpf1 libelf1 libmnl0 libbsd0 libcap2 libc6 zlib1g libmd0
  dnsmasq-base libdbus-1-3 libsystemd0 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
  libidn2-0 libunistring2 libnetfilter-conntrack3 libnfnetlink0 libnettle8 libhogweed6 libgmp10
  libnftables1 libnftnl11 libjansson4 libxtables12)
T0=$(date +%s.%N)

command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs apt-get and dpkg (a Debian host)"
mkdir -p "$VM_CACHE/debs" "$VM_CACHE/apt/lists/partial" "$VM_CACHE/apt/cache/archives/partial" || die "cannot create $VM_CACHE (set IPVLAN_RS_CACHE to a writable directory)"
cd "$VM_CACHE"
exec 9>"$VM_CACHE/.setup.lock"
flock 9   # one setup at a time; run.sh does not take this lock

# What the package resolution depends on: the apt lists, the flavour, this script.
fingerprint() {
  { echo "$KFLAVOUR $ARCH"; sha256sum < "$VM_RIG_DIR/setup.sh"
    stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* "$VM_CACHE"/apt/lists/*_Packages* 2>/dev/null || true
  } | sha256sum | cut -c1-32
}

busybox_ok() { [[ -x $HOST_BUSYBOX ]] && "$HOST_BUSYBOX" true 2>/dev/null && [[ -x $BUSYBOX ]]; }
guest_ok() { [[ $ARCH == amd64 ]] || [[ -f guest/.stamp && -f host-busybox/.stamp ]]; }
qemu_ok() { [[ -x $QEMU_BIN ]] && qemu --version >/dev/null 2>&1; }
cache_ok() {
  [[ -f qemu/.stamp && -f kernel/.stamp && -f busybox/.stamp ]] && kernel_image >/dev/null && busybox_ok && qemu_ok && guest_ok
}
summary() {
  note "$ARCH: kernel $(kernel_version), $(qemu --version | head -1), $("$HOST_BUSYBOX" | head -1 | cut -d' ' -f1-2)"
  note "cache $VM_CACHE ($(du -sh --exclude=debs . | cut -f1) unpacked, $(du -sh debs | cut -f1) .debs), $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
}

if [[ ${REFRESH:-0} != 1 && ${APT_UPDATE:-0} != 1 && -f setup.stamp ]] &&
   [[ $(cat setup.stamp) == "$(fingerprint)" ]] && cache_ok; then
  note "cache up to date"; summary; exit 0
fi

APTOPT=(-o APT::Sandbox::User=root -o Debug::NoLocking=1)
UPDATED=0
apt_update() {
  note "apt-get update"
  apt-get update -qq || note "apt-get update failed (continuing)"
  if [[ $ARCH != amd64 ]]; then
    touch "$VM_CACHE/apt/status"
    note "apt-get update of the $ARCH lists in $VM_CACHE/apt"
    apt-get "${APTOPT[@]}" "${APT_GUEST[@]}" update -qq || note "apt-get update ($ARCH) failed (continuing)"
  fi
  UPDATED=1
}

# resolve(): fill Q_FILES K_FILES B_FILES G_FILES H_FILES (deb file names),
# SPEC_OF[file]=package and GUEST_FILE[file]=1 for those of the guest's apt
declare -A SPEC_OF GUEST_FILE
resolve() {
  local kpkg qpkgs out line url file
  kpkg=$(apt-cache "${APT_GUEST[@]}" depends "linux-image-$KFLAVOUR" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [[ -n $kpkg ]] || { note "cannot resolve linux-image-$KFLAVOUR"; return 1; }
  # $QEMU_PKG plus whatever of its dependencies the host does not have
  out=$(apt-get "${APTOPT[@]}" install --no-install-recommends -y --dry-run "$QEMU_PKG" 2>&1) ||
    { note "apt-get --dry-run install $QEMU_PKG failed: $out"; return 1; }
  qpkgs=$(awk '/^Inst /{print $2}' <<<"$out")
  # already installed system-wide (not expected): still take our own copy of its own packages
  [[ -n $qpkgs ]] || qpkgs="$QEMU_PKG qemu-system-common qemu-system-data seabios ipxe-qemu"
  Q_FILES=(); K_FILES=(); B_FILES=(); G_FILES=(); H_FILES=(); SPEC_OF=(); GUEST_FILE=()
  local host_pkgs=$qpkgs guest_pkgs="busybox-static $kpkg ${GUEST_PKGS[*]}"
  [[ $ARCH == amd64 ]] && { host_pkgs+=" $guest_pkgs"; guest_pkgs=; }
  [[ $ARCH == amd64 ]] || host_pkgs+=" busybox-static"
  # shellcheck disable=SC2086
  out=$(apt-get "${APTOPT[@]}" download --print-uris $host_pkgs 2>&1) ||
    { note "package lookup failed: $out"; return 1; }
  if [[ -n $guest_pkgs ]]; then
    # shellcheck disable=SC2086
    out+=$'\n'$(apt-get "${APTOPT[@]}" "${APT_GUEST[@]}" download --print-uris $guest_pkgs 2>&1 | sed 's/$/ guest/') ||
      { note "package lookup ($ARCH) failed: $out"; return 1; }
  fi
  while read -r url file _ _ guest; do
    [[ $url == \'http* || $url == \'file* ]] || continue
    local pkg=${file%%_*}
    SPEC_OF[$file]=$pkg
    [[ $guest == guest ]] && GUEST_FILE[$file]=1
    case $pkg:$guest in
      busybox-static:guest) B_FILES+=("$file");;
      busybox-static:) if [[ $ARCH == amd64 ]]; then B_FILES+=("$file"); else H_FILES+=("$file"); fi;;
      "$kpkg":*)      K_FILES+=("$file");;
      *:guest)        G_FILES+=("$file");;
      *)              Q_FILES+=("$file");;
    esac
  done <<<"$out"
  [[ $ARCH == amd64 ]] && H_FILES=("${B_FILES[@]}")
  [[ ${#K_FILES[@]} -eq 1 && ${#B_FILES[@]} -eq 1 && ${#H_FILES[@]} -eq 1 && ${#Q_FILES[@]} -ge 1 &&
     ${#G_FILES[@]} -eq ${#GUEST_PKGS[@]} ]] ||
    { note "unexpected lookup result: $out"; return 1; }
}

ALL_FILES() { printf '%s\n' "${Q_FILES[@]}" "${K_FILES[@]}" "${B_FILES[@]}" "${G_FILES[@]}" "${H_FILES[@]}" | sort -u; }
download() {
  local f specs=() gspecs=()
  for f in $(ALL_FILES); do
    [[ -s debs/$f ]] && continue
    if [[ -n ${GUEST_FILE[$f]:-} ]]; then gspecs+=("${SPEC_OF[$f]}"); else specs+=("${SPEC_OF[$f]}"); fi
  done
  [[ ${#specs[@]} -eq 0 && ${#gspecs[@]} -eq 0 ]] && return 0
  note "downloading $((${#specs[@]} + ${#gspecs[@]})) packages: ${specs[*]} ${gspecs[*]}"
  if [[ ${#specs[@]} -gt 0 ]]; then
    ( cd debs && apt-get "${APTOPT[@]}" download -qq "${specs[@]}" ) || { note "apt-get download failed"; return 1; }
  fi
  if [[ ${#gspecs[@]} -gt 0 ]]; then
    ( cd debs && apt-get "${APTOPT[@]}" "${APT_GUEST[@]}" download -qq "${gspecs[@]}" ) || { note "apt-get download ($ARCH) failed"; return 1; }
  fi
  for f in $(ALL_FILES); do
    [[ -s debs/$f ]] || { note "expected debs/$f after download"; return 1; }
  done
}

# unpack a component into a fresh directory and swap it in (only if its set of .debs changed)
unpack() {
  local comp=$1 want f; shift
  want=$(printf '%s\n' "$@" | sort)
  if [[ -f $comp/.stamp && $(cat "$comp/.stamp") == "$want" ]]; then return 0; fi
  note "unpacking $comp"
  rm -rf "$comp.new" "$comp.old"; mkdir "$comp.new"
  for f in "$@"; do dpkg -x "debs/$f" "$comp.new"; done
  echo "$want" > "$comp.new/.stamp"
  [[ -e $comp ]] && mv "$comp" "$comp.old"
  mv "$comp.new" "$comp"; rm -rf "$comp.old"
}

[[ ${APT_UPDATE:-0} == 1 ]] && apt_update
if ! { resolve && download; }; then
  if [[ $UPDATED == 0 ]]; then apt_update; fi
  if ! { resolve && download; }; then
    if cache_ok; then
      note "WARNING: package lookup/download failed; keeping the existing cache"; summary; exit 0
    fi
    die "could not fetch the packages (network? apt sources?); see the messages above"
  fi
fi

unpack qemu "${Q_FILES[@]}"
unpack kernel "${K_FILES[@]}"
unpack busybox "${B_FILES[@]}"
if [[ $ARCH != amd64 ]]; then
  unpack guest "${G_FILES[@]}"
  unpack host-busybox "${H_FILES[@]}"
fi

# drop .debs that are no longer part of the set (e.g. the previous kernel)
for f in debs/*.deb; do
  [[ -n ${SPEC_OF[${f#debs/}]:-} ]] || { note "removing stale $f"; rm -f "$f"; }
done

kernel_image >/dev/null || die "no vmlinuz/modules in $KERNEL_ROOT"
busybox_ok || die "busybox does not run: $HOST_BUSYBOX"
qemu_ok || { qemu --version >&2 || true; die "qemu does not run: $QEMU_BIN (missing libraries? try REFRESH=1)"; }
# dm-mod, dm-log-writes and dm-snapshot: the power-cut test's replay check
for m in ipvlan macvlan 8021q dummy veth dm-mod dm-log-writes dm-snapshot; do
  [[ -n $(find "$(kernel_moddir)/kernel" -name "$m.ko*" -print -quit) ]] || die "kernel $(kernel_version) has no $m module"
done
fingerprint > setup.stamp
summary
