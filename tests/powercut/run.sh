#!/bin/bash
# make test-powercut: the power-cut test of the state store (issue #18).
# The real plugin (target/.../release/ipvlan-rs, `make build`) runs in the
# VM rig with its state on a virtio disk; the power is cut POWERCUT_CUTS
# times per file system (ext4 and xfs, in parallel) and each next boot
# checks every acknowledged change. Installs mkfs.ext4/mkfs.xfs if missing
# and fails loudly on anything it cannot run.
#
# Env: POWERCUT_CUTS=33       cuts per file system (make soak: 500)
#      POWERCUT_PER_DISK=11   cuts per fresh disk (the first during the first start)
#      POWERCUT_FS="ext4 xfs" file systems
#      POWERCUT_SEED=N        seed of the cut moments and the load (default: new each run, printed)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CUTS=${POWERCUT_CUTS:-33}
PER_DISK=${POWERCUT_PER_DISK:-11}
FSES=${POWERCUT_FS:-"ext4 xfs"}
SEED=${POWERCUT_SEED:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}
PLUGIN=target/x86_64-unknown-linux-gnu/release/ipvlan-rs
BIN=target/x86_64-unknown-linux-gnu/release/ipvlan-rs-powercut

need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "powercut: installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
for m in mkfs.ext4 mkfs.xfs; do
  command -v "$m" >/dev/null || { echo "powercut: FAIL: $m is missing and could not be installed" >&2; exit 1; }
done
"$ROOT/tests/rig/vm/setup.sh"
[[ -x $PLUGIN ]] || { echo "powercut: FAIL: $PLUGIN missing: run make build (make test-powercut does)" >&2; exit 1; }
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
  --target x86_64-unknown-linux-gnu -p ipvlan-rs-powercut

echo "powercut: $CUTS cuts per file system ($FSES), seed $SEED (POWERCUT_SEED=$SEED repeats this run)"
pids=() names=()
for fs in $FSES; do
  work=target/powercut/$fs
  mkdir -p "$work"
  "$BIN" host --fs "$fs" --plugin "$PLUGIN" --rig tests/rig/vm/run.sh --work "$work" \
    --cuts "$CUTS" --per-disk "$PER_DISK" --seed "$SEED" > >(tee "$work/summary.log") 2>&1 &
  pids+=($!) names+=("$fs")
done
rc=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "powercut: ${names[$i]} FAILED (target/powercut/${names[$i]}/summary.log)" >&2
    rc=1
  fi
done
exit $rc
