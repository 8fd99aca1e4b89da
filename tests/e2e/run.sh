#!/bin/bash
# make e2e: the real-Docker end-to-end suite. For each engine (Debian's docker.io
# 20.10 and Docker 28.5, see tests/rig/docker) it starts a private dockerd, imports
# a busybox image, creates the plugin from this tree's bundle (target/bundle,
# `make bundle`) and runs every scenario of scenarios.sh against it, each a named
# test with its own PASS/FAIL and duration; a local registry on 127.0.0.1 serves
# `make release`, `docker plugin install` and `docker plugin upgrade`. What a killed
# earlier run left is removed at the start, everything at the end; a last test
# checks that nothing (processes, mounts, links, dirs) is left.
#
# Usage:  tests/e2e/run.sh                 (as root; `make e2e` builds the bundle first)
# Env:    E2E_ENGINES="20 28"   engines, in order (default: 20 28, or DOCKERD's alone)
#         DOCKERD=/path/to/dockerd   also run against this dockerd, as engine <its major
#                               version> (e.g. 29); DOCKER_BINDIR=DIR for its containerd,
#                               shim and runc (tests/rig/docker/README.md)
#         E2E_ONLY='a|b'        only these scenarios (plus setup and teardown); for development
#         E2E_SKIP='a|b'        not these scenarios (reported as SKIP); for development
#         E2E_VERBOSE=1         print every scenario's output, not only a failing one's
#         E2E_REGISTRY_PORT=5078
#         E2E_CMD_TIMEOUT=120   seconds any one docker command may take (a guard)
# Logs:   /var/log/ipvlan-rs-test/{e2e/<engine>-<n>-<scenario>.log, e2e<engine>.log (dockerd,
#         plugin lines carry plugin=<id>), registry-<port>.log}; the previous run's in
#         /var/log/ipvlan-rs-test/e2e.prev/. Other users of the rig (tests/e2e/swarm.sh)
#         are left alone: only this suite's daemons, registry and links are touched.
# Exit:   0 only if every test passed (and there were tests at all).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/scenarios.sh
. "$HERE/scenarios.sh"

SCENARIOS=(
  bad_options
  quick_start
  two_containers
  ipam_v4
  ipam_lowest_free
  dual_stack
  ipv6_only
  gw_priority
  internal
  default_pool
  connect_disconnect
  stop_start
  network_rm
  overlapping_subnets
  second_instance
  plugin_disable_enable
  reinstall_keeps_state
  link_reuse
  operator_status
  plugin_kill9
  daemon_restart
  daemon_restart_live_restore
  registry_release_install
  push_alone_install_alias
  release_arm64_install
  plugin_upgrade
  host_link
  dhcp_leases
  dhcp_plugin_kill9
  dhcp_silent_server
  dhcp_twenty_at_once
  dhcp_lease_lifetime
)

[[ $(id -u) == 0 ]] || die "needs root (private dockerds, links, mounts)"
# one run at a time (a second one would stop the first one's daemons)
suite_lock e2e
SUITE_ENGINES_VAR=E2E_ENGINES suite_engines 20 28
PORT=${E2E_REGISTRY_PORT:-5078}
P=org/ipvlan-rs:latest
BB=bb:latest
# the plugin settings every scenario starts with (suite_tidy puts them back)
E2E_PLUGIN_SETTINGS=(LOG_LEVEL=debug LINK_REUSE_MS=100)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
[[ -n $VERSION ]] || die "no version in Cargo.toml"
[[ -f $ROOT/target/bundle/config.json && -x $ROOT/target/bundle/rootfs/ipvlan-rs ]] ||
  die "no bundle in target/bundle: run 'make bundle' (make e2e does)"
for t in ip make; do command -v "$t" >/dev/null || die "no $t"; done

E2E_WORK=$(mktemp -d /tmp/ipvlan-rs-e2e.XXXXXX)
E2E_LINK_NAMESPACES=("")
del_our_links() {
  local l
  for l in $(host_links | grep -E "^${E2E_VETH_PREFIX}[0-9]+s" || true); do ip link del "$l" 2>/dev/null || true; done
}
# this suite's daemons: e2e<engine>, also those of a killed run with other engines
# (other users of the rig, e.g. tests/e2e/swarm.sh, are left alone)
our_daemons() {
  local f
  {
    printf 'e2e%s\n' "${ENGINES[@]}"
    for f in "$RIG_RUN"/e2e* "$RIG_DATA"/e2e*; do [[ -e $f ]] && basename "$f"; done
    args_matching "--exec-root=$RIG_RUN/e2e[0-9]+" | sed 's,.*/,,'
  } | sed -E 's/\.(env|pid|sock|containerd\.pid)$//' | grep -E '^e2e[0-9]+$' | sort -u
}
stop_ours() {
  local n
  for n in $(our_daemons); do "$RIG/dockerd-stop.sh" "$n" >/dev/null 2>&1 || "$RIG/dockerd-stop.sh" "$n"; done
  "$RIG/registry-stop.sh" "$PORT"
  del_our_links
  # the rig's dirs when empty; /run/docker/plugins (every dockerd makes it) when
  # empty and no other dockerd runs
  rmdir "$RIG_RUN" "$RIG_DATA" 2>/dev/null || true
  local others p
  others=$(for p in $(pgrep -x dockerd || true); do if is_alive "$p"; then echo "$p"; fi; done)
  [[ -n $others ]] || rmdir "$DOCKER_PLUGIN_RUN" /run/docker 2>/dev/null || true
}
cleanup() {
  set +e
  trap - EXIT INT TERM
  stop_ours
  rm -rf "$E2E_WORK"
}
trap cleanup EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

# daemon_up: the engine's daemon answers (restart it if a scenario left it down)
daemon_up() {
  local out
  if ! docker version >/dev/null 2>&1; then
    echo "# daemon $NAME is down: restarting it"
    out=$(rig dockerd-start.sh "$NAME" "$E") || return 1
    export DOCKER_HOST=${out#DOCKER_HOST=}
  fi
}

# suite_tidy: remove what a scenario left in the daemon (containers, networks,
# extra plugins); the main plugin with its settings, enabled
suite_tidy() {
  local ids n p env s rc=0
  daemon_up || return 1
  ids=$(docker ps -aq)
  # shellcheck disable=SC2086
  [[ -z $ids ]] || docker rm -f $ids >/dev/null || rc=1
  for n in $(docker network ls -q --filter type=custom); do
    docker network rm "$n" >/dev/null || { echo "tidy: docker network rm $n failed"; rc=1; }
  done
  while read -r p; do
    [[ -n $p && $p != "$P" ]] || continue
    docker plugin disable -f "$p" >/dev/null 2>&1 || true
    docker plugin rm -f "$p" >/dev/null || rc=1
  done < <(docker plugin ls --format '{{.Name}}')
  if docker plugin inspect "$P" >/dev/null 2>&1; then
    env=$(docker plugin inspect -f '{{range .Settings.Env}}{{.}} {{end}}' "$P")
    for s in "${E2E_PLUGIN_SETTINGS[@]}"; do
      [[ " $env " == *" $s "* ]] && continue
      echo "tidy: $P settings back to ${E2E_PLUGIN_SETTINGS[*]}"
      docker plugin disable -f "$P" >/dev/null 2>&1 || true
      docker plugin set "$P" "${E2E_PLUGIN_SETTINGS[@]}" || rc=1
      break
    done
    if [[ $(docker plugin inspect -f '{{.Enabled}}' "$P") != true ]]; then
      echo "tidy: enabling $P again"
      docker plugin enable "$P" >/dev/null || rc=1
    fi
  fi
  return $rc
}

# what a killed earlier run left: its daemons, registry and veths
stop_ours
fresh_log_dir e2e "$RIG_LOG"/e2e[0-9]*.log "$RIG_LOG/registry-$PORT.log"
e2e_engines "${ENGINES[@]}"
# the CLI: the machine's, or docker.io's that install-engines.sh installed
for t in docker curl; do command -v "$t" >/dev/null || die "no $t on PATH"; done

# the plugin rootfs: a copy of this tree's bundle, so that a rebuild of
# target/bundle during the run cannot change it
BASE_BUNDLE=$E2E_WORK/bundle
cp -a "$ROOT/target/bundle" "$BASE_BUNDLE"
echo "e2e base bundle" >"$BASE_BUNDLE/rootfs/e2e-marker"
out=$(rig registry-start.sh "$PORT")
REG=${out#REGISTRY=}
echo "e2e: plugin bundle $(sha256sum "$BASE_BUNDLE/rootfs/ipvlan-rs" | cut -c1-12) (version $VERSION), registry $REG, engines ${ENGINES[*]}, $(docker --version)"

for E in "${ENGINES[@]}"; do
  NAME=e2e$E
  export DOCKER_HOST=unix://$RIG_RUN/$NAME.sock
  DATA=$RIG_DATA/$NAME
  DLOG=$RIG_LOG/$NAME.log
  E2E_LABEL="e2e[$E]" E2E_DAEMON_LOGS=("$DLOG")
  echo "$E2E_LABEL: engine $(engine_version "$E"), daemon $NAME"
  run_engine "${SCENARIOS[@]}"
done

# nothing of the suite may be left
E=host NAME=- DATA=/nonexistent SIDX=00 E2E_LABEL="e2e[host]" E2E_DAEMON_LOGS=()
scenario_nothing_left() {
  local p m l d
  x stop_ours
  p=$(args_matching "(--exec-root=)?$RIG_RUN/e2e[0-9]+(/.*)?|$RIG_RUN/registry-$PORT/config.yml")
  [[ -z $p ]] || fail "processes left: $p"
  m=$(awk -v a="$RIG_DATA/e2e" -v b="$RIG_RUN/e2e" -v r="$RIG_DATA/registry-$PORT" \
    'index($5, a) == 1 || index($5, b) == 1 || index($5, r) == 1 {print $5}' /proc/self/mountinfo)
  [[ -z $m ]] || fail "mounts left: $m"
  l=$(plugin_links; host_links | grep -E "^${E2E_VETH_PREFIX}[0-9]+s" || true)
  [[ -z $l ]] || fail "links left: $l"
  # the suites' lock files (suite_lock) stay: another run may hold or wait on them
  d=$(find "$RIG_RUN" "$RIG_DATA" -maxdepth 1 \( -name 'e2e*' -o -name "registry-$PORT" \) ! -name '*.lock' 2>/dev/null || true)
  [[ -z $d ]] || fail "files left: $d"
  if [[ -f $E2E_WORK/plugin-ids ]]; then
    while read -r id; do
      [[ ! -e /run/docker/plugins/$id ]] || fail "plugin dir /run/docker/plugins/$id left"
      [[ -z $(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d -name "$id" 2>/dev/null) ]] || fail "cgroups of plugin $id left"
    done <"$E2E_WORK/plugin-ids"
  fi
  [[ -z $(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name 'ipvlan-rs-test-e2e*' 2>/dev/null) ]] || fail "cgroups left"
  echo "ok: no processes, mounts, links, files or cgroups of the suite left"
}
run_scenario nothing_left notidy

e2e_summary e2e
