#!/bin/bash
# Self-test of this rig, with timings: both engines side by side, busybox image,
# `docker run --rm`, a built-in macvlan network on a veth parent, a container on a
# default bridge joined to a macvlan network (`docker network connect`), a daemon
# inside a network namespace, an image push/pull through the local registry; then
# everything stopped with the rig's own scripts and checked to be gone.
#
# Usage:  tests/rig/docker/selftest.sh            (as root; ~1 min; leaves nothing behind)
# Env:    PORT=5055 registry port   SKIP_INSTALL=1 skip install-engines.sh
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"
PORT=${PORT:-5055}
ID=$$                                  # names unique per run
N20=st20-$ID N28=st28-$ID NB=stbr-$ID NN=stns-$ID
NS=irsst$ID VA=irsva$ID VB=irsvb$ID VC=irsvc$ID VD=irsvd$ID

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# step LABEL CMD...: run CMD (its stderr to $STEPLOG, stdout kept), print its duration
STEPLOG=$RIG_LOG/selftest.log
mkdir -p "$RIG_LOG"; : >"$STEPLOG"
step() {
  local label=$1 t0 rc=0; shift; t0=$(date +%s%N)
  echo "== $label: $*" >>"$STEPLOG"
  "$@" 2>>"$STEPLOG" || rc=$?
  printf '  %-52s %6s ms\n' "$label" "$(ms "$t0")" >&2
  if ((rc)); then tail -n 20 "$STEPLOG" >&2; die "step '$label' failed (rc $rc)"; fi
}

cleanup() {
  set +e
  for n in "$N20" "$N28" "$NB" "$NN"; do "$HERE/dockerd-stop.sh" "$n" 2>/dev/null; done
  "$HERE/registry-stop.sh" "$PORT"
  ip link del "$VA" 2>/dev/null; ip link del "$VC" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
links() { ip -o link | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort; }
links_before=$(links)

if [[ -z ${SKIP_INSTALL:-} ]]; then
  out=$(step "install-engines.sh" "$HERE/install-engines.sh")
  eval "$out"
  echo "$ENGINE_20_VERSION / $ENGINE_28_VERSION" >&2
fi

ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" up; ip link set "$VB" up

declare -A HOSTS
for e in 20 28; do
  n=N$e; n=${!n}
  echo "engine $e ($n):" >&2
  out=$(step "dockerd-start.sh $e" "$HERE/dockerd-start.sh" "$n" "$e")
  HOSTS[$e]=${out#DOCKER_HOST=}
done
for e in 20 28; do
  export DOCKER_HOST=${HOSTS[$e]}
  echo "engine $e: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" >&2
  step "busybox-image.sh" "$HERE/busybox-image.sh"
  step "run --rm bb ip addr" docker run --rm bb:latest ip -o addr >/dev/null
  for i in 1 2 3; do step "run --rm --network none true #$i" docker run --rm --network none bb:latest true; done
  step "network create macvlan (parent $VA)" docker network create -d macvlan --subnet "10.77.$e.0/24" \
    --gateway "10.77.$e.1" -o parent="$VA" -o macvlan_mode=bridge "mv$e" >/dev/null
  for i in 1 2 3; do
    step "run --rm --network mv$e #$i" sh -c "docker run --rm --network mv$e bb:latest ip -4 -o addr show eth0 2>/dev/null | grep -q 'inet 10.77.$e.'"
  done
  docker run --rm --network "mv$e" bb:latest sh -c 'ip -4 -o addr show eth0' 2>/dev/null | awk '{print "    container address: " $4}' >&2
  docker run -d --name srv --network "mv$e" --ip "10.77.$e.50" bb:latest sleep 600 >/dev/null 2>&1
  step "ping across macvlan" docker run --rm --network "mv$e" bb:latest ping -c 1 -W 2 "10.77.$e.50" >/dev/null
done

echo "default bridge + network connect (engine 28, BRIDGE_CIDR):" >&2
out=$(BRIDGE_CIDR=10.201.0.1/24 step "dockerd-start.sh (BRIDGE_CIDR)" "$HERE/dockerd-start.sh" "$NB" 28)
export DOCKER_HOST=${out#DOCKER_HOST=}
"$HERE/busybox-image.sh" 2>/dev/null
docker run -d --name c3 bb:latest sleep 600 >/dev/null 2>&1
docker network create -d macvlan --subnet 10.78.0.0/24 -o parent="$VB" n1 >/dev/null
step "network connect n1 c3" docker network connect n1 c3
[[ $(docker exec c3 ip -4 -o addr | grep -c 'inet 10\.\(201\|78\)\.') == 2 ]] || die "c3 lacks an address"

echo "daemon in a network namespace (engine 20, NETNS):" >&2
ip netns add "$NS"
ip link add "$VC" type veth peer name "$VD"
ip link set "$VD" netns "$NS"
nsenter --net="/var/run/netns/$NS" sh -c "ip link set lo up && ip link set $VD up"
out=$(NETNS=$NS step "dockerd-start.sh (NETNS)" "$HERE/dockerd-start.sh" "$NN" 20)
export DOCKER_HOST=${out#DOCKER_HOST=}
"$HERE/busybox-image.sh" 2>/dev/null
docker network create -d macvlan --subnet 10.79.0.0/24 -o parent="$VD" mvns >/dev/null
step "run --rm --network mvns (netns parent)" sh -c "docker run --rm --network mvns bb:latest ip -4 -o addr show eth0 | grep -q 'inet 10.79.0.'"

echo "registry:" >&2
out=$(step "registry-start.sh $PORT" "$HERE/registry-start.sh" "$PORT")
REG=${out#REGISTRY=}
for e in 20 28; do
  export DOCKER_HOST=${HOSTS[$e]}
  docker tag bb:latest "$REG/bb$e"
  step "push $REG/bb$e (engine $e)" docker push -q "$REG/bb$e" >/dev/null
done
export DOCKER_HOST=${HOSTS[28]}
step "pull $REG/bb20 on engine 28" docker pull -q "$REG/bb20" >/dev/null

echo "stop:" >&2
trap - EXIT
for n in "$N20" "$N28" "$NB" "$NN"; do step "dockerd-stop.sh $n" "$HERE/dockerd-stop.sh" "$n"; done
step "registry-stop.sh" "$HERE/registry-stop.sh" "$PORT"
ip link del "$VA"; ip link del "$VC"; ip netns del "$NS"

# nothing of ours may be left
bad=0
for n in "$N20" "$N28" "$NB" "$NN"; do
  p=$(pids_with_arg "--exec-root=$RIG_RUN/$n"; pids_with_arg "$RIG_RUN/$n/containerd.toml"; pids_with_arg "$RIG_RUN/$n/ctrd/c.sock")
  [[ -z $p ]] || { echo "left: processes $p of $n" >&2; bad=1; }
done
[[ -z $(pids_with_arg "$RIG_RUN/registry-$PORT/config.yml") ]] || { echo "left: registry" >&2; bad=1; }
m=$(awk -v a="$RIG_DATA" -v b="$RIG_RUN" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo)
[[ -z $m ]] || { echo "left: mounts $m" >&2; bad=1; }
l=$(comm -13 <(echo "$links_before") <(links))
[[ -z $l ]] || { echo "left: links $l" >&2; bad=1; }
for n in "$N20" "$N28" "$NB" "$NN"; do
  [[ ! -e $RIG_RUN/$n && ! -e $RIG_DATA/$n ]] || { echo "left: dirs of $n" >&2; bad=1; }
done
((bad == 0)) || die "leftovers found"
echo "selftest: PASS" >&2
