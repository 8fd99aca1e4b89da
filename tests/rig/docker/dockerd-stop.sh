#!/bin/bash
# Stop a private dockerd started by dockerd-start.sh and remove everything it left:
# dockerd (SIGTERM, SIGKILL after 60 s; a clean stop also stops its containers and
# plugins), its containerd, shims and any container process still under them,
# mounts under its data-root, exec-root and its managed plugins' dirs in
# /run/docker/plugins (lazy unmount, deepest first), its default-bridge link,
# its cgroups, then data-root and exec-root. Safe when nothing is running.
#
# Usage:  tests/rig/docker/dockerd-stop.sh NAME
# Env:    KEEP_DATA=1   keep the data-root (for restart tests; still clears processes,
#                       mounts and exec-root)
#         QUIET=1       no "stopped" line
#         STOP_TIMEOUT=60  seconds between SIGTERM and SIGKILL for dockerd (a guard:
#                       a clean stop ends at once; a loaded machine must not turn a
#                       restart test's graceful stop into a kill)
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"

[[ $# -eq 1 ]] || die "usage: $0 NAME"
NAME=$1
check_name "$NAME"
daemon_paths "$NAME"

NETNS='' BRIDGE=''
# shellcheck disable=SC1090
[[ -f $STATE ]] && . "$STATE"

# children, grandchildren, ... of the given pids
descendants() {
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    { kids[$2] = kids[$2] " " $1 }
    END { n = split(roots, q, " "); for (i = 1; i <= n; i++) { split(kids[q[i]], k, " "); for (j in k) { print k[j]; q[++n] = k[j] } } }'
}

in_ns() {  # run in the daemon's network namespace, if it still exists
  if [[ -z $NETNS ]]; then "$@"
  elif [[ -e /var/run/netns/$NETNS ]]; then nsenter --net="/var/run/netns/$NETNS" "$@"
  fi
}

# 0. wiping: remove containers and networks through the daemon while it answers, so
#    drivers (built-in and plugins) delete their links; a shutdown would keep them
bridges=()
if [[ -z ${KEEP_DATA:-} && -S $SOCK ]] && live_pid "$PIDF" dockerd >/dev/null; then
  d() { timeout "${T:-30}" "${DOCKER:-docker}" -H "unix://$SOCK" "$@"; }
  if d version >/dev/null 2>&1; then
    ids=$(d ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z $ids ]] || T=60 d rm -f $ids >/dev/null 2>&1 || log "$NAME: could not remove all containers"
    nets=$(d network ls -q --filter type=custom 2>/dev/null || true)
    for n in $nets; do
      # bridge links of bridge networks (br-<id>, docker_gwbridge, ...), in case rm fails
      b=$(d network inspect -f '{{if eq .Driver "bridge"}}{{with index .Options "com.docker.network.bridge.name"}}{{.}}{{else}}br-{{printf "%.12s" .Id}}{{end}}{{end}}' "$n" 2>/dev/null || true)
      [[ -z $b ]] || bridges+=("$b")
      d network rm "$n" >/dev/null 2>&1 || true
    done
  fi
fi

# 1. dockerd: by pidfile, and by its exact --exec-root argument (pidfile may be gone)
dpids=$( { live_pid "$PIDF" dockerd || true; pids_with_arg "--exec-root=$EXEC"; } | sort -u)
# shellcheck disable=SC2086
term_wait_kill "${STOP_TIMEOUT:-60}" $dpids

# 2. containerd and its shims (shims carry "-address $CSOCK"); container processes
#    under a shim die with a SIGKILL first, or they would outlive it
cpids=$( { live_pid "$CPIDF" containerd || true; pids_with_arg "$EXEC/containerd.toml"; } | sort -u)
spids=$(pids_with_arg "$CSOCK" | sort -u)
if [[ -n $spids ]]; then
  # shellcheck disable=SC2086
  kids=$(descendants $spids)
  # shellcheck disable=SC2086
  [[ -z $kids ]] || kill -KILL $kids 2>/dev/null || true
fi
# shellcheck disable=SC2086
term_wait_kill 30 $cpids $spids

# 3. mounts: data-root, exec-root and this daemon's managed plugins' socket dirs
#    (/run/docker/plugins/<id>: a static path in every engine, see common.sh)
plugin_ids=()
if [[ -d $DATA/plugins ]]; then
  for p in "$DATA"/plugins/*/; do
    id=$(basename "$p")
    if [[ $id =~ ^[0-9a-f]{64}$ ]]; then plugin_ids+=("$id"); fi
  done
fi
plugin_dirs=("${plugin_ids[@]/#/$DOCKER_PLUGIN_RUN/}")
unmount_under "$DATA" "$EXEC" "${plugin_dirs[@]}"
left=$(awk -v a="$DATA" -v b="$EXEC" '$5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1 {print $5}' /proc/self/mountinfo)
[[ -z $left ]] || die "still mounted, not removing anything: $left"

# 4. bridge links (wiping only; a kept data-root keeps its networks): our default
#    bridge, those seen through the API above, and br-<id>/docker_gwbridge links
#    whose network ID or name is in this daemon's network store (a killed daemon)
if [[ -z ${KEEP_DATA:-} ]]; then
  [[ -z $BRIDGE ]] || bridges+=("$BRIDGE")
  db=$DATA/network/files/local-kv.db
  if [[ -f $db ]]; then
    for l in $(in_ns ip -o link show type bridge 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
      case $l in
        br-*) if grep -qaF -- "${l#br-}" "$db"; then bridges+=("$l"); fi;;
        docker_gwbridge) if grep -qaF -- docker_gwbridge "$db"; then bridges+=("$l"); fi;;
      esac
    done
  fi
  for b in "${bridges[@]}"; do in_ns ip link del "$b" 2>/dev/null || true; done
fi

# 5. files
rm -rf --one-file-system "$EXEC" "${plugin_dirs[@]}"
rm -f "$SOCK" "$PIDF" "$CPIDF"
[[ -n ${KEEP_DATA:-} ]] || rm -rf --one-file-system "$DATA"

# 6. cgroups, deepest first, only empty ones: containers under --cgroup-parent;
#    managed plugins get a cgroup named by their ID below the daemon's own cgroup
for cg in /sys/fs/cgroup/*/ipvlan-rs-test-"$NAME" /sys/fs/cgroup/ipvlan-rs-test-"$NAME"; do
  [[ -d $cg ]] || continue
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
for id in "${plugin_ids[@]}"; do
  while read -r cg; do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d -name "$id" -prune 2>/dev/null || true)
done

[[ -n ${KEEP_DATA:-} ]] || rm -f "$STATE"
[[ -n ${QUIET:-} ]] || log "$NAME stopped and cleaned"
