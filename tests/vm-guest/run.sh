#!/bin/bash
# make test-vm: the driver's ipvlan / 802.1Q / dummy cases on a real Debian
# kernel under qemu (this host's kernel lacks those link kinds).
# Fetches what it needs (tests/rig/vm/setup.sh), builds the guest program
# static, boots it, and fails on any FAIL, a timeout or a missing piece.
# ARCH=arm64 (make test-vm-arm64): the same program built for
# aarch64-unknown-linux-musl, on Debian's arm64 kernel under qemu-system-aarch64.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${ARCH:-amd64}
export ARCH
# shellcheck source=../rig/vm/common.sh
. "$ROOT/tests/rig/vm/common.sh"   # RUST_TARGET of ARCH
"$ROOT/tests/rig/vm/setup.sh"
cd "$ROOT"
scripts/rust-target.sh "$RUST_TARGET"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
  --target "$RUST_TARGET" -p ipvlan-rs-vm-guest
BIN=target/$RUST_TARGET/release/ipvlan-rs-vm-guest
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# the DHCP case's server: the host's dnsmasq with its libraries (the guest has
# iproute2's loader); without it that case fails, saying so
if [[ $ARCH != amd64 ]]; then
  # another architecture: Debian's dnsmasq of it, unpacked by setup.sh
  VM_FILES="${VM_FILES:-} $GUEST_ROOT/usr/sbin/dnsmasq:/usr/sbin/dnsmasq"
  while read -r lib guest; do VM_FILES="$VM_FILES $lib:$guest"; done < <(guest_needed "$GUEST_ROOT/usr/sbin/dnsmasq")
  export VM_FILES
elif command -v dnsmasq >/dev/null; then
  DNSMASQ=$(command -v dnsmasq)
  VM_FILES="${VM_FILES:-} $DNSMASQ:/usr/sbin/dnsmasq"
  for lib in $(ldd "$DNSMASQ" | grep -o '/[^ ]*'); do
    VM_FILES="$VM_FILES $(readlink -f "$lib"):$lib"
  done
  export VM_FILES
fi
VM_TIMEOUT=${VM_TIMEOUT:-300} VM_LOG="$LOG" "$ROOT/tests/rig/vm/run.sh" "$BIN" "$@"
# every case line must be PASS and there must be cases at all
pass=$(grep -c '^CASE .*: PASS' "$LOG" || true)
fail=$(grep -c '^CASE .*: FAIL' "$LOG" || true)
echo "vm ($ARCH): $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
