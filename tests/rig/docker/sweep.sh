#!/bin/bash
# Start-of-suite sweep: stop every private dockerd and registry of this rig and
# remove all their leftovers (processes, mounts, dirs, default-bridge links,
# cgroups), e.g. after a run that was killed. Touches nothing of a system daemon.
#
# Usage:  tests/rig/docker/sweep.sh
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"

names=()
add() { [[ $1 =~ ^[a-z0-9][a-z0-9_-]{0,23}$ ]] && names+=("$1") || true; }
for f in "$RIG_RUN"/*.env "$RIG_RUN"/*.pid "$RIG_RUN"/*.sock; do
  [[ -e $f ]] || continue
  b=$(basename "$f"); b=${b%.*}; add "${b%.containerd}"
done
for d in "$RIG_RUN"/*/ "$RIG_DATA"/*/; do
  [[ -d $d ]] || continue
  b=$(basename "$d"); [[ $b == registry-* ]] || add "$b"
done
# daemons whose files are gone: find them by their --exec-root=/run/ipvlan-rs-test/NAME
while read -r a; do add "${a##*/}"; done < <(args_matching "--exec-root=$RIG_RUN/[a-z0-9_-]+")

if ((${#names[@]})); then
  mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)
  for n in "${names[@]}"; do "$HERE/dockerd-stop.sh" "$n"; done
fi

"$HERE/registry-stop.sh"

# default-bridge links of daemons whose state file was lost
for l in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^irsb[0-9a-f]{8}$' || true); do
  ip link del "$l" 2>/dev/null || true
done
# empty cgroups of daemons we no longer know
for cg in /sys/fs/cgroup/*/ipvlan-rs-test-* /sys/fs/cgroup/ipvlan-rs-test-*; do
  [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
unmount_under "$RIG_DATA" "$RIG_RUN"
left=$(awk -v a="$RIG_DATA" -v b="$RIG_RUN" 'index($5, a "/") == 1 || index($5, b "/") == 1 {print $5}' /proc/self/mountinfo)
[[ -z $left ]] || die "still mounted: $left"
rm -rf --one-file-system "$RIG_RUN" "$RIG_DATA"
# /run/docker/plugins is made by every dockerd (see common.sh); drop it only when
# it is empty and no other dockerd runs on the machine
others=$(for p in $(pgrep -x dockerd || true); do if is_alive "$p"; then echo "$p"; fi; done)
[[ -n $others ]] || rmdir "$DOCKER_PLUGIN_RUN" /run/docker 2>/dev/null || true
# keep the previous run's logs (default log dir only), start the new run afresh
if [[ -z ${LOG_DIR:-} && -d $RIG_LOG ]]; then
  rm -rf "$RIG_LOG.prev"; mv "$RIG_LOG" "$RIG_LOG.prev"
fi
log "swept ${#names[@]} daemon(s): ${names[*]:-none}"
