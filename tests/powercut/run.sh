#!/bin/bash
# make test-powercut: the power-cut test of the state store (issue #18).
# The real plugin (target/.../release/ipvlan-rs, `make build`) runs in the
# VM rig with its state on a virtio disk; the power is cut POWERCUT_CUTS
# times per file system (ext4 and xfs, in parallel) and each next boot
# checks every acknowledged change. Installs mkfs.ext4/mkfs.xfs if missing
# and fails loudly on anything it cannot run.
#
# Then the replay check (the same program's `replay`, tests/powercut/src/
# replay.rs): one recorded run per file system under dm-log-writes, its log
# replayed to every state a cut could leave and the store opened at each.
#
# Env: POWERCUT_CUTS=33       cuts per file system (make soak: 500)
#      POWERCUT_PER_DISK=11   cuts per fresh disk (the first during the first start)
#      POWERCUT_FS="ext4 xfs" file systems
#      POWERCUT_SEED=N        seed of the cut moments and the load (default: new each run, printed)
#      POWERCUT_REPLAY_CALLS=30     calls of the recorded run (make soak: 200)
#      POWERCUT_REPLAY_POINTS=all|N states checked per file system (default all; N: N of them spread over the log)
#      POWERCUT_MODES="cuts replay" which of the two checks to run
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CUTS=${POWERCUT_CUTS:-33}
REPLAY_CALLS=${POWERCUT_REPLAY_CALLS:-30}
REPLAY_POINTS=${POWERCUT_REPLAY_POINTS:-all}
MODES=${POWERCUT_MODES:-"cuts replay"}
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

# one run per file system and check, the file systems in parallel
run_all() { # mode
  local mode=$1 fs work pids=() names=() rc=0 i log
  for fs in $FSES; do
    work=target/powercut/$fs
    mkdir -p "$work"
    case $mode in
      cuts)
        "$BIN" host --fs "$fs" --plugin "$PLUGIN" --rig tests/rig/vm/run.sh --work "$work" \
          --cuts "$CUTS" --per-disk "$PER_DISK" --seed "$SEED" > >(tee "$work/summary.log") 2>&1 & ;;
      replay)
        "$BIN" replay --fs "$fs" --plugin "$PLUGIN" --rig tests/rig/vm/run.sh --work "$work" \
          --calls "$REPLAY_CALLS" --points "$REPLAY_POINTS" --seed "$SEED" > >(tee "$work/replay.log") 2>&1 & ;;
    esac
    pids+=($!) names+=("$fs")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      log=target/powercut/${names[$i]}/$([[ $mode == cuts ]] && echo summary || echo replay).log
      echo "powercut: $mode ${names[$i]} FAILED ($log)" >&2
      FAILED+=("$mode ${names[$i]}:$log")
      rc=1
    fi
  done
  return $rc
}
# what failed, again at the very end: a CI log may show only its last lines,
# and the two file systems' lines interleave above
FAILED=()
report_failures() {
  local f
  for f in "${FAILED[@]}"; do
    echo "powercut: ---- ${f%%:*}: how it failed (${f#*:}) ----"
    sed -n '/powercut: FAIL:/,$p' "${f#*:}" | head -n 100
  done
  for f in "${FAILED[@]}"; do
    echo "powercut: ${f%%:*} FAILED: $(grep -m1 'powercut: FAIL:' "${f#*:}" | cut -c1-400)"
  done
  echo "powercut: seed $SEED (POWERCUT_SEED=$SEED repeats the plan; the moments of the cuts are the machine's)"
}
rc=0
for mode in $MODES; do
  case $mode in
    cuts) echo "powercut: $CUTS cuts per file system ($FSES), seed $SEED (POWERCUT_SEED=$SEED repeats this run)" ;;
    replay) echo "powercut: replay check ($FSES): $REPLAY_CALLS calls recorded under dm-log-writes, $REPLAY_POINTS states checked per file system, seed $SEED" ;;
    *) echo "powercut: FAIL: POWERCUT_MODES: unknown mode $mode (cuts, replay)" >&2; exit 1 ;;
  esac
  run_all "$mode" || rc=1
done
((rc == 0)) || report_failures >&2
exit $rc
