#!/bin/bash
# Start a PRIVATE dockerd with its own containerd, never a system daemon's.
#
# Usage:  eval "$(tests/rig/docker/dockerd-start.sh NAME ENGINE [extra dockerd args...])"
#         -> prints DOCKER_HOST=unix:///run/ipvlan-rs-test/NAME.sock
# NAME:   [a-z0-9][a-z0-9_-]{0,23}
# ENGINE: 20 or 28 as set up by install-engines.sh, or any dockerd binary given as
#         DOCKERD=/path/to/dockerd and named by its major version (e.g. 29), with
#         DOCKER_BINDIR=DIR for its containerd, shim and runc (see common.sh)
# Env:    NETNS=node1       run containerd + dockerd in /var/run/netns/node1 (nsenter --net;
#                           `ip netns exec` breaks dockerd: "Devices cgroup isn't mounted")
#         BRIDGE_CIDR=10.200.0.1/24  give the daemon a default "bridge" network on a
#                           Linux bridge of its own (irsb<hash of NAME>) with that address;
#                           without it the daemon runs with --bridge=none (no default bridge)
#         LOG_DIR=DIR       logs (default /var/log/ipvlan-rs-test): NAME.log, NAME.containerd.log
#         DOCKERD_DEBUG=1   --debug
#         START_TIMEOUT=60  seconds to wait for the API
#         DOCKER=docker     CLI used for the readiness check
# Layout: data-root /var/lib/ipvlan-rs-test/NAME, exec-root /run/ipvlan-rs-test/NAME,
#         socket /run/ipvlan-rs-test/NAME.sock, pidfiles NAME.pid, NAME.containerd.pid,
#         state NAME.env (read by dockerd-stop.sh).
# Defaults: --iptables=false --ip6tables=false (never touch the host firewall; two
#         daemons would fight over the DOCKER chains), --ip-forward=false in the host
#         namespace (leave host sysctls alone), --cgroup-parent=/ipvlan-rs-test-NAME,
#         --containerd=<its own containerd>, --config-file=<empty>. Extra args come
#         last and override (pflag: last one wins); -b/--bridge/--bip in them
#         suppress the bridge defaults.
# If NAME already runs and answers, it is reused (prints DOCKER_HOST). A dead NAME
# (killed run) has its stray processes, mounts and exec-root cleared first; its
# data-root is kept (use dockerd-stop.sh to wipe it).
# DOCKERD_ONLY=1: only dockerd stopped (a --live-restore test sent it SIGTERM)
# and its containerd, shims and containers still run: start dockerd alone
# against them, clearing nothing.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"

[[ $# -ge 2 ]] || die "usage: $0 NAME 20|28|<major of DOCKERD> [dockerd args...]"
NAME=$1 ENGINE=$2; shift 2
check_name "$NAME"
BIN=$(engine_bin_dir "$ENGINE")
DOCKER=${DOCKER:-docker}
TIMEOUT=${START_TIMEOUT:-60}

daemon_paths "$NAME"
LOGF=$RIG_LOG/$NAME.log
CLOGF=$RIG_LOG/$NAME.containerd.log
HOST=unix://$SOCK

# guard 30 s: a loaded daemon that answers slowly must not count as dead (a
# dead one is cleared and started afresh below)
answers() { timeout 30 "$DOCKER" -H "$HOST" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if pid=$(live_pid "$PIDF" dockerd) && answers; then
  log "$NAME already running (pid $pid)"
  echo "DOCKER_HOST=$HOST"
  exit 0
fi
ONLY_DOCKERD=
if [[ -n ${DOCKERD_ONLY:-} ]]; then
  live_pid "$CPIDF" containerd >/dev/null || die "DOCKERD_ONLY: containerd of $NAME is not running"
  ! live_pid "$PIDF" dockerd >/dev/null || die "DOCKERD_ONLY: dockerd of $NAME still runs"
  ONLY_DOCKERD=1
else
  # leftovers of a killed run: processes, mounts, exec-root; keep data-root
  KEEP_DATA=1 QUIET=1 "$HERE/dockerd-stop.sh" "$NAME"
fi

NSENTER=()
if [[ -n ${NETNS:-} ]]; then
  [[ -e /var/run/netns/$NETNS ]] || die "no network namespace /var/run/netns/$NETNS"
  NSENTER=(nsenter "--net=/var/run/netns/$NETNS")
fi
in_ns() { "${NSENTER[@]}" "$@"; }

mkdir -p "$RIG_RUN" "$EXEC" "$DATA" "$CDIR" "$RIG_LOG"
chmod 711 "$RIG_RUN" "$RIG_DATA"

# default bridge network
BRIDGE=
bridge_args=(--bridge=none)
for a in "$@"; do
  case $a in -b|-b=*|--bridge|--bridge=*|--bip|--bip=*) bridge_args=();; esac
done
if [[ -z $ONLY_DOCKERD && -n ${BRIDGE_CIDR:-} && ${#bridge_args[@]} -gt 0 ]]; then
  BRIDGE=irsb$(printf %s "$NAME" | md5sum | cut -c1-8)
  in_ns ip link del "$BRIDGE" 2>/dev/null || true
  in_ns ip link add "$BRIDGE" type bridge
  in_ns ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  in_ns ip link set "$BRIDGE" up
  bridge_args=(--bridge="$BRIDGE")
fi
fwd_args=()
[[ -n ${NETNS:-} ]] || fwd_args=(--ip-forward=false)
if [[ -n $ONLY_DOCKERD && -s $STATE ]]; then
  BRIDGE=$(sed -n 's/^BRIDGE=//p' "$STATE")
  [[ -z $BRIDGE ]] || bridge_args=(--bridge="$BRIDGE")
fi

[[ -n $ONLY_DOCKERD ]] || cat >"$STATE" <<EOF
NAME=$NAME
ENGINE=$ENGINE
NETNS=${NETNS:-}
BRIDGE=$BRIDGE
EOF

# --- containerd of its own ------------------------------------------------------
# dockerd 20.10 without --containerd uses /run/containerd/containerd.sock when that
# socket exists (a system containerd) and supervises its own otherwise; we always
# pass --containerd so that no system containerd is ever used.
start_containerd() {
case $("$BIN/containerd" --version) in
  *" v2."*|*" 2."*)  # containerd 2.x: config version 3, CRI split in three plugins
    cfgver=3 disabled='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.nri.v1.nri"';;
  *) cfgver=2 disabled='"io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"';;
esac
# NRI is disabled because its socket (/var/run/nri/nri.sock) is one per machine
cat >"$EXEC/containerd.toml" <<EOF
# written by dockerd-start.sh for $NAME
version = $cfgver
root = "$DATA/ctrd"
state = "$CDIR/state"
disabled_plugins = [$disabled]
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
echo "=== $(date -Is) containerd for $NAME (engine $ENGINE${NETNS:+, netns $NETNS})" >>"$CLOGF"
PATH=$BIN:$PATH setsid "${NSENTER[@]}" "$BIN/containerd" --config "$EXEC/containerd.toml" \
  </dev/null >>"$CLOGF" 2>&1 &
echo $! >"$CPIDF"
for ((i = 0; i < 600; i++)); do
  [[ -S $CSOCK ]] && break
  is_alive "$(cat "$CPIDF")" || { tail -n 30 "$CLOGF" >&2; die "containerd for $NAME died"; }
  sleep 0.1
done
[[ -S $CSOCK ]] || { tail -n 30 "$CLOGF" >&2; die "containerd for $NAME: no socket $CSOCK after 60 s"; }
}
[[ -n $ONLY_DOCKERD ]] || start_containerd

# --- dockerd ----------------------------------------------------------------------
echo '{}' >"$EXEC/daemon.json"
args=(
  "--data-root=$DATA" "--exec-root=$EXEC" "--pidfile=$PIDF" "-H" "$HOST"
  "--containerd=$CSOCK" "--containerd-namespace=moby" "--containerd-plugins-namespace=irs-$NAME-plugins"
  "--config-file=$EXEC/daemon.json" "--cgroup-parent=/ipvlan-rs-test-$NAME"
  --iptables=false --ip6tables=false "${fwd_args[@]}" "${bridge_args[@]}"
)
[[ -z ${DOCKERD_DEBUG:-} ]] || args+=(--debug)
echo "=== $(date -Is) dockerd $NAME (engine $ENGINE${NETNS:+, netns $NETNS}): ${args[*]} $*" >>"$LOGF"
PATH=$BIN:$PATH setsid "${NSENTER[@]}" "$BIN/dockerd" "${args[@]}" "$@" </dev/null >>"$LOGF" 2>&1 &
dpid=$!

t0=$(date +%s%N)
until answers; do
  if ! is_alive "$dpid"; then
    tail -n 40 "$LOGF" >&2
    die "dockerd $NAME exited during start-up (log: $LOGF)"
  fi
  if (( ($(date +%s%N) - t0) / 1000000000 >= TIMEOUT )); then
    tail -n 40 "$LOGF" >&2
    die "dockerd $NAME did not answer on $SOCK within ${TIMEOUT}s (log: $LOGF)"
  fi
  sleep 0.1
done
log "$NAME: $("$DOCKER" -H "$HOST" version --format 'engine {{.Server.Version}}, API {{.Server.APIVersion}}') up in $(( ($(date +%s%N) - t0) / 1000000 )) ms, pid $dpid"
echo "DOCKER_HOST=$HOST"
