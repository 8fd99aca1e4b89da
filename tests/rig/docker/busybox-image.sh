#!/bin/bash
# Make the test image (default bb:latest) in the daemon at DOCKER_HOST by
# `docker import` of a tarball holding Debian's busybox-static with every applet
# linked in /bin (sh ip ping sleep true cat ls hostname nslookup wget ifconfig
# route awk grep nc udhcpc ...); /sbin /usr/bin /usr/sbin link to /bin.
# CMD is /bin/sh. Skipped when the image exists. The tarball is byte-for-byte
# reproducible (sorted, mtime 0, root-owned), so the layer digest is the same
# everywhere; the image ID is not (import records the creation time).
#
# Usage:  DOCKER_HOST=unix:///run/ipvlan-rs-test/NAME.sock tests/rig/docker/busybox-image.sh [IMAGE]
# Env:    BUSYBOX=/bin/busybox (must be static)   DOCKER=docker
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

IMAGE=${1:-bb:latest}
DOCKER=${DOCKER:-docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[[ -n ${DOCKER_HOST:-} ]] || die "set DOCKER_HOST (dockerd-start.sh prints it)"
if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE exists"
  exit 0
fi
[[ -x $BUSYBOX ]] || die "no $BUSYBOX: apt-get install busybox-static (install-engines.sh does)"
if LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then die "$BUSYBOX is not static"; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
r=$tmp/root
mkdir -p "$r"/{bin,etc,root,tmp,proc,sys,dev,run,var/run,usr}
chmod 1777 "$r/tmp"
cp "$BUSYBOX" "$r/bin/busybox"
for a in $("$BUSYBOX" --list); do
  [[ $a == busybox || $a == */* ]] || ln -s busybox "$r/bin/$a"
done
for a in sh ip ping sleep true cat ls hostname nslookup wget ifconfig route awk grep; do
  [[ -L $r/bin/$a ]] || die "$BUSYBOX has no applet $a"
done
ln -s bin "$r/sbin"; ln -s ../bin "$r/usr/bin"; ln -s ../bin "$r/usr/sbin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
tar -C "$r" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$tmp/rootfs.tar" .
id=$("$DOCKER" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' "$tmp/rootfs.tar" "$IMAGE")
log "$IMAGE imported: $id"
