#!/bin/bash
# make e2e-swarm: the plugin in a real three-node Swarm.
#
# Three private dockerds of each engine in $SWARM_ENGINES (default "28 20",
# one cluster after the other), each in a network
# namespace of its own (irs-n1..3, uplink eth0 10.210.0.1N/24), joined by a
# bridge in a fourth namespace (irs-sw; a bridge in the host namespace would be
# subject to the host's iptables FORWARD policy). A docker-registry in irs-sw
# serves the plugin: node 1 creates it from this tree's bundle and pushes it,
# then every node installs it from the registry under the short name
# org/ipvlan-rs:latest (`--alias`, as README.md and docs/swarm.md tell users),
# and every network names the plugin by that alias.
# Swarm: node 1 manager, nodes 2 and 3 workers.
#
# Scenarios (run by the runner of lib.sh, as those of run.sh: PASS/FAIL with
# its own log in /var/log/ipvlan-rs-test/e2e-swarm/, E2E_ONLY / E2E_SKIP, the
# leak check in the three node namespaces after each; a failure prints the
# nodes' log lines of its time span, the plugins' included):
#   setup: namespaces, registry, three daemons, the plugin pushed and installed
#     on each, the Swarm with three ready nodes.
#   global scope (SCOPE=global, the manager allocates every address):
#     30 replicas get 30 distinct addresses of the --ip-range (docker inspect on
#     each node and ip addr inside each container); tasks on different nodes
#     ping each other; scale 30 -> 10 -> 30 without duplicates (the range holds
#     32 addresses, so this reuses released ones); service rm releases every
#     address (a new 30-replica service fits again); docker run on a worker on
#     the attachable network; a leader change and back (3 managers, the
#     leader drained and stopped, the new leader scales down, node 1 leads
#     again): 30 tasks
#     then fit in the range, only if node 1 freed what the others freed, with no
#     duplicate; `docker run --ip X` on two nodes gives X to one
#     container only, and X can be pinned again once that one is removed;
#     network rm leaves no links on any node.
#   local scope (SCOPE=local): per-node --config-only networks with disjoint
#     --ip-range, a --config-from swarm network, 9 replicas with distinct
#     addresses from their node's range, pinging across nodes; a swarm network
#     without --config-from is refused, the task's error saying what to do.
#   DHCP (SCOPE=local): dnsmasq on the cluster's segment; per-node
#     --config-only networks with --ipam-driver null -o dhcp=on and a
#     --config-from swarm network; 6 replicas on 3 nodes each get a lease from
#     the server (in its lease file, distinct client-ids), obtained by the
#     plugin of the node the task runs on; the router as default route; tasks
#     ping across nodes; every node's plugin renews; scale-down and service rm
#     give the leases back. (A swarm network with --ipam-driver null is refused
#     by the manager itself: "error during lookup of plugin null".)
#
#   teardown: the cluster stopped; no daemon, namespace or registry left.
#
# Env: SWARM_ENGINES="28 20" (or one of them; default: 28 20, or DOCKERD's alone),
#      DOCKERD=/path/to/dockerd + DOCKER_BINDIR=DIR (any dockerd, as engine <its
#      major version>: see run.sh), KEEP=1 (leave the last cluster
#      running after the run), LOG_DIR (logs), E2E_ONLY, E2E_SKIP, E2E_VERBOSE,
#      E2E_CMD_TIMEOUT (see run.sh).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
SUITE_ENGINES_VAR=SWARM_ENGINES suite_engines 28 20
SCENARIOS=(
  global_30_replicas_get_distinct_addresses
  global_tasks_on_different_nodes_ping_each_other
  global_scale_down_and_up_reuses_addresses_without_duplicates
  global_attachable_network_serves_docker_run_on_a_worker
  global_a_former_leader_frees_what_others_freed_without_duplicates
  global_a_pinned_address_is_given_once_in_the_cluster
  global_service_rm_releases_every_address
  global_network_rm_leaves_nothing
  local_scope_config_only_networks_with_disjoint_ranges
  local_scope_without_config_from_is_refused_saying_what_to_do
  local_scope_dhcp_each_node_leases_for_its_own_tasks
)
SW=irs-sw
REGADDR=10.210.0.254
REGPORT=5099
REG=$REGADDR:$REGPORT
# REF: the plugin's reference in the registry, for the push and the install
# only; ALIAS: the name every node installs it under, which the networks name
# (these daemons are the suite's own: no other plugin has that name there)
REF=$REG/org/ipvlan-rs:e2e-swarm
ALIAS=org/ipvlan-rs:latest
P=$ALIAS BB=bb:latest
SUBNET=10.211.0.0/26 RANGE_PREFIX=10.211.0. GATEWAY=10.211.0.1
E2E_WORK=$(mktemp -d /tmp/ipvlan-rs-swarm.XXXXXX)
E2E_LINK_NAMESPACES=(irs-n1 irs-n2 irs-n3)
E2E_DAEMON_LOGS=("$RIG_LOG/sw1.log" "$RIG_LOG/sw2.log" "$RIG_LOG/sw3.log")

# d N docker-args...: docker against node N's daemon
d() {
  local n=$1
  shift
  DOCKER_HOST=unix://$RIG_RUN/sw$n.sock docker "$@"
}

# stop_cluster: services, Swarm, daemons, registry and namespaces gone
stop_cluster() {
  local n services
  for n in 1 2 3; do
    d "$n" info >/dev/null 2>&1 || continue
    mapfile -t services < <(d "$n" service ls -q 2>/dev/null)
    ((${#services[@]} == 0)) || d "$n" service rm "${services[@]}" >/dev/null 2>&1 || true
  done
  for n in 3 2 1; do
    d "$n" swarm leave --force >/dev/null 2>&1 || true
  done
  for n in 1 2 3; do "$RIG/dockerd-stop.sh" "sw$n" >/dev/null 2>&1 || true; done
  "$RIG/registry-stop.sh" "$REGPORT" >/dev/null 2>&1 || true
  dhcp_server_stop
  for n in 1 2 3; do ip netns del "irs-n$n" 2>/dev/null || true; done
  ip netns del "$SW" 2>/dev/null || true
}

on_exit() {
  local rc=$?
  if [[ -z ${KEEP:-} ]]; then stop_cluster; fi
  rm -rf "$E2E_WORK"
  exit "$rc"
}

# suite_tidy: nothing; the scenarios of one cluster build on each other (the
# first one's service is pinged, scaled and removed by the next ones)
suite_tidy() { :; }

# The node whose daemon the checks ask about services and nodes: node 1, the
# manager, except while a leader change moves the lead.
MGR=1
# replicas SERVICE N: the manager reports N of N tasks of SERVICE running
# (a capped service reads "N/N (max M per node)")
replicas() { [[ $(d "$MGR" service ls --filter "name=$1" --format '{{.Replicas}}') == "$2/$2"* ]]; }
# wait_replicas SERVICE N: until N tasks of SERVICE run (guard 600 s: engine 20
# starts tasks slowly, and the machine may be loaded)
wait_replicas() {
  wait_for 600 replicas "$1" "$2" && return 0
  d "$MGR" service ps --no-trunc "$1" | tail -n 20
  fail "waited 600 s for $2/$2 replicas of $1; the manager reports $(d "$MGR" service ls --filter "name=$1" --format '{{.Replicas}}')"
}

# nodes_with_plugin: how many nodes the manager sees with the network plugin
nodes_with_plugin() {
  local id
  for id in $(d 1 node ls -q); do
    d 1 node inspect -f '{{range .Description.Engine.Plugins}}{{.Type}}={{.Name}} {{end}}' "$id"
    echo
  done | grep -cF "Network=$ALIAS"
}
plugin_on_all_nodes() { (($(nodes_with_plugin) == 3)); }
# wait_plugin_everywhere: until the manager sees the network plugin on every
# node (guard 120 s). A node reports its plugins to the manager asynchronously; a
# service created before the report of a node whose plugin was just re-enabled
# is scheduled on the other nodes only.
wait_plugin_everywhere() {
  wait_for 120 plugin_on_all_nodes ||
    fail "waited 120 s for the manager to see the plugin on 3 nodes; it sees it on $(nodes_with_plugin)"
}

# containers_of SERVICE: how many containers of SERVICE exist on the three nodes
containers_of() {
  local n
  for n in 1 2 3; do d "$n" ps -aq --filter "label=com.docker.swarm.service.name=$1"; done | wc -l
}
containers_are() { (($(containers_of "$1") == $2)); }
# wait_tasks_settle SERVICE N: until only N containers of SERVICE exist (guard 300 s)
wait_tasks_settle() {
  wait_for 300 containers_are "$1" "$2" ||
    fail "waited 300 s for $2 containers of $1; there are $(containers_of "$1")"
}
# running_of SERVICE NODE...: running containers of SERVICE on these nodes
running_of() {
  local n
  for n in "${@:2}"; do d "$n" ps -q --filter "label=com.docker.swarm.service.name=$1"; done | wc -l
}
running_are() { (($(running_of "$1" "${@:3}") == $2)); }

# net_on N NET: NET's name if node N has that network (empty: not)
net_on() { d "$1" network ls --format '{{.Name}}' | grep -xF "$2" || true; }
# leader_is N: node N's daemon leads the Swarm
leader_is() { [[ $(d "$1" node inspect self -f '{{.ManagerStatus.Leader}}' 2>/dev/null) == true ]]; }
leader_not_1() { leader_is 2 || leader_is 3; }
# managers_up N: the manager sees N managers, each leading or reachable
managers_up() {
  (($(d "$MGR" node ls --filter role=manager --format '{{.ManagerStatus}}' 2>/dev/null | grep -cE '^(Leader|Reachable)$') == $1))
}
# demoted ID: node ID is a worker (asks again until the manager answers: a
# demoted leader hands the lead over meanwhile)
demoted() {
  d 1 node demote "$1" >/dev/null 2>&1 || true
  [[ $(d 1 node inspect -f '{{.Spec.Role}}' "$1" 2>/dev/null) == worker ]]
}
# sw1_logged_since LINE TEXT: node 1's daemon log has TEXT after line LINE
sw1_logged_since() { tail -n +"$(($1 + 1))" "$RIG_LOG/sw1.log" | grep -qF "$2"; }
# start_node N: node N's daemon, in its namespace (data-root kept across a stop
# with KEEP_DATA=1)
start_node() {
  local bindir_var=ENGINE_${E}_BIN_DIR
  NETNS=irs-n$1 PATH=${!bindir_var}:$PATH x rig dockerd-start.sh "sw$1" "$E" "--insecure-registry=$REG"
}
# nodes_ready N: the manager sees N nodes Ready
nodes_ready() { (($(d 1 node ls --format '{{.Status}}' | grep -c Ready) == $1)); }

# task_ips SERVICE NET: "node container ip" of every running task, one a line
task_ips() {
  local n c want task
  # only containers of tasks the manager wants running: a container whose
  # start failed can stay listed as running, without an address (seen on
  # 28.5 when a node's first tasks raced the creation of the network there)
  want=$(d "$MGR" service ps -q --no-trunc --filter desired-state=running "$1")
  for n in 1 2 3; do
    for c in $(d "$n" ps -q --filter "label=com.docker.swarm.service.name=$1"); do
      task=$(d "$n" inspect -f '{{index .Config.Labels "com.docker.swarm.task.id"}}' "$c")
      grep -qxF "$task" <<<"$want" || continue
      echo "$n $c $(d "$n" inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$c")"
    done
  done
}

# manager_task_addrs SERVICE: the address the manager gave each task of
# SERVICE it wants running, one a line
manager_task_addrs() {
  local tasks
  mapfile -t tasks < <(d "$MGR" service ps -q --no-trunc --filter desired-state=running "$1")
  ((${#tasks[@]})) || return 0
  d "$MGR" inspect -f '{{range .NetworksAttachments}}{{range .Addresses}}{{println .}}{{end}}{{end}}' "${tasks[@]}" |
    sed -n 's#/.*##p'
}

# check_distinct SERVICE NET N PREFIX LO HI: N tasks, distinct addresses
# PREFIX.LO..PREFIX.HI as docker reports them and as the containers carry them
check_distinct() {
  local svc=$1 net=$2 want=$3 prefix=$4 lo=$5 hi=$6 n c ip last nodes
  task_ips "$svc" "$net" >"$SDIR/ips"
  cat "$SDIR/ips"
  [[ $(wc -l <"$SDIR/ips") -eq $want ]] || fail "$(wc -l <"$SDIR/ips") tasks of $svc, want $want"
  [[ $(awk '{print $3}' "$SDIR/ips" | sort -u | wc -l) -eq $want ]] || fail "duplicate addresses: $(awk '{print $3}' "$SDIR/ips" | sort | uniq -d | tr '\n' ' ')"
  nodes=$(awk '{print $1}' "$SDIR/ips" | sort -u | wc -l)
  ((nodes == 3)) || fail "tasks on $nodes nodes, want 3"
  while read -r n c ip; do
    [[ $ip == "$prefix"* ]] || fail "$ip (node $n) is outside $prefix$lo-$hi"
    last=${ip##*.}
    ((last >= lo && last <= hi)) || fail "$ip (node $n) is outside $prefix$lo-$hi"
    d "$n" exec "$c" ip -4 -o addr show dev eth0 | grep -q " inet $ip/" ||
      fail "container $c on node $n does not carry $ip: $(d "$n" exec "$c" ip -4 -o addr show dev eth0)"
  done <"$SDIR/ips"
  echo "$want tasks, $want distinct addresses, on $nodes nodes"
}

# ping_across FILE: a task on each node pings a task on each other node
ping_across() {
  local from to c ip
  for from in 1 2 3; do
    c=$(awk -v n="$from" '$1 == n {print $2; exit}' "$1")
    for to in 1 2 3; do
      ((from == to)) && continue
      ip=$(awk -v n="$to" '$1 == n {print $3; exit}' "$1")
      d "$from" exec "$c" ping -c1 -W10 "$ip" >/dev/null || fail "node $from task cannot ping $ip on node $to (no reply within 10 s)"
      echo "node $from -> node $to ($ip): ok"
    done
  done
}

# --- global scope ------------------------------------------------------------

scenario_global_30_replicas_get_distinct_addresses() {
  d 1 network create -d "$ALIAS" --ipam-driver "$ALIAS" --scope swarm --attachable \
    --subnet "$SUBNET" --ip-range "${RANGE_PREFIX}32/27" --gateway "$GATEWAY" \
    -o parent=eth0 -o kind=macvlan swnet
  d 1 service create -d --name web --replicas 30 --network swnet --no-resolve-image \
    --endpoint-mode dnsrr "$BB" sleep 3600
  wait_replicas web 30
  check_distinct web swnet 30 "$RANGE_PREFIX" 32 63
  # the default route goes through the network's gateway
  local n c
  read -r n c _ <"$SDIR/ips"
  d "$n" exec "$c" ip route | tee /dev/stderr | grep -q "default via $GATEWAY dev eth0" || fail "no default route via $GATEWAY"
}

scenario_global_tasks_on_different_nodes_ping_each_other() {
  task_ips web swnet >"$SDIR/ips"
  ping_across "$SDIR/ips"
}

scenario_global_scale_down_and_up_reuses_addresses_without_duplicates() {
  d 1 service scale -d web=10
  wait_replicas web 10
  wait_tasks_settle web 10
  d 1 service scale -d web=30
  wait_replicas web 30
  # 32 addresses in the range: 20 of these came back from the scale-down
  check_distinct web swnet 30 "$RANGE_PREFIX" 32 63
}

scenario_global_attachable_network_serves_docker_run_on_a_worker() {
  local out ip
  out=$(d 2 run --rm --network swnet "$BB" ip -4 -o addr show dev eth0 2>&1 | grep -v 'forwarding')
  echo "$out"
  ip=$(awk '{sub(/\/.*/, "", $4); print $4}' <<<"$out")
  [[ $ip == "$RANGE_PREFIX"* ]] || fail "docker run on node 2 got '$ip'"
  task_ips web swnet | awk '{print $3}' | grep -qxF "$ip" && fail "$ip is also a task's address"
  echo "docker run on node 2 got $ip, no task holds it"
}

# A leader change and back. Node 1 leads with 9 tasks, nodes 2 and 3 are
# promoted, node 1's daemon stops: node 2 or 3 leads, starts node 1's tasks
# elsewhere and scales to 4, freeing addresses node 1's copy of the global
# space still holds. Node 1 comes back; the others are demoted, so node 1 leads
# again and restores from its old copy. 30 tasks in the range of 31 addresses
# then fit only if node 1's plugin freed what the others freed (a sweep at the
# first new allocation) and handed out no address twice; its log says it
# counted the network's restored pool lease once. No task made in the
# scenario is rejected (a node's plugin refusing the address the manager gave,
# or the manager's refusing a re-claim): node 1 is drained before its daemon
# stops, so no task of it is cut off by the stop (and a task on a node that is
# down is shut down, not rejected), and it is made active again only once its
# plugin is back. Tasks of the earlier scenarios are left out: their start
# could race the network's creation on a node (see task_ips).
scenario_global_a_former_leader_frees_what_others_freed_without_duplicates() {
  local id2 id3 mark swept rejected
  d 1 service ps -q --no-trunc web >"$SDIR/tasks-before"
  id2=$(d 2 info -f '{{.Swarm.NodeID}}')
  id3=$(d 3 info -f '{{.Swarm.NodeID}}')
  d 1 service scale -d web=9
  wait_replicas web 9
  wait_tasks_settle web 9
  x d 1 node promote "$id2" "$id3"
  wait_for 120 managers_up 3 || fail "waited 120 s for 3 reachable managers"
  # node 1 runs no task when it stops (a container the rig's stop kills is
  # listed as running, without an address, after the restart)
  x d 1 node update --availability drain "$(d 1 info -f '{{.Swarm.NodeID}}')"
  wait_for 300 running_are web 0 1 || fail "waited 300 s for node 1 to drain; $(running_of web 1) run there"
  wait_for 300 running_are web 9 2 3 || fail "waited 300 s for 9 tasks on nodes 2 and 3; $(running_of web 2 3) run"
  KEEP_DATA=1 x rig dockerd-stop.sh sw1
  wait_for 120 leader_not_1 || fail "waited 120 s for node 2 or 3 to lead after node 1 stopped"
  if leader_is 2; then MGR=2; else MGR=3; fi
  echo "node $MGR leads"
  x d "$MGR" service scale -d web=4
  wait_for 300 running_are web 4 2 3 || fail "waited 300 s for 4 tasks on nodes 2 and 3; $(running_of web 2 3) run"
  start_node 1
  wait_for 120 managers_up 3 || fail "waited 120 s for node 1 to be a reachable manager again"
  wait_replicas web 4
  x d "$MGR" node update --availability active "$(d 1 info -f '{{.Swarm.NodeID}}')"
  mark=$(wc -l <"$RIG_LOG/sw1.log")
  wait_for 120 demoted "$id2" || fail "waited 120 s to demote node 2"
  wait_for 120 demoted "$id3" || fail "waited 120 s to demote node 3"
  MGR=1
  wait_for 120 leader_is 1 || fail "waited 120 s for node 1 to lead again"
  echo "node 1 leads again"
  wait_for 60 sw1_logged_since "$mark" "network allocated again by a new Swarm leader" ||
    fail "node 1's plugin did not count its restored lease once"
  x d 1 service scale -d web=30
  wait_replicas web 30
  # the manager's allocations (on 28.5, a task that node 1 started right
  # after its restart can run with no endpoint: its container start failed
  # and the engine could not clean it up; a node-side listing misses its
  # address)
  manager_task_addrs web | sort >"$SDIR/addrs"
  (($(wc -l <"$SDIR/addrs") == 30)) || fail "$(wc -l <"$SDIR/addrs") task addresses, want 30: $(paste -sd' ' "$SDIR/addrs")"
  [[ -z $(uniq -d "$SDIR/addrs") ]] || fail "duplicate addresses: $(uniq -d "$SDIR/addrs" | paste -sd' ')"
  grep -vE "^${RANGE_PREFIX//./\.}(3[2-9]|[45][0-9]|6[0-2])$" "$SDIR/addrs" && fail "addresses outside ${RANGE_PREFIX}32-62"
  swept=$(tail -n +"$((mark + 1))" "$RIG_LOG/sw1.log" | grep -o "restore ended with its first new allocation.*" | grep -o 'freed=[0-9]*' | head -n 1)
  [[ -n $swept && $swept != freed=0 ]] || fail "node 1's plugin freed nothing at the end of its restore ($swept)"
  # every task of the service the manager keeps (its history too), "ID|node|state|error"
  d 1 service ps --no-trunc --format '{{.ID}}|{{.Node}}|{{.CurrentState}}|{{.Error}}' web >"$SDIR/tasks"
  rejected=$(awk -F'|' 'FILENAME == ARGV[1] { before[$1]; next } !($1 in before) && $3 ~ /^Rejected/' "$SDIR/tasks-before" "$SDIR/tasks")
  [[ -z $rejected ]] || fail "tasks rejected during the leader change: $rejected"
  echo "ok: node 1 leads again; its plugin's restore $swept; 30 tasks, 30 distinct addresses from the manager; none of the scenario's $(awk -F'|' 'FILENAME == ARGV[1] { before[$1]; next } !($1 in before)' "$SDIR/tasks-before" "$SDIR/tasks" | wc -l) tasks rejected"
}

# `docker run --ip X` on two nodes of the cluster: one container gets X, the
# other is refused (the manager's plugin holds X in the global space; the
# engine gives up on the attachment after its 20 s timeout), and once the first
# is removed X can be pinned again. X lies in the subnet, outside the range.
scenario_global_a_pinned_address_is_given_once_in_the_cluster() {
  local ip=${RANGE_PREFIX}20 out rc=0 mark
  mark=$(wc -l <"$RIG_LOG/sw1.log")
  d 2 run -d --name pin2 --network swnet --ip "$ip" "$BB" sleep 3600 >/dev/null
  eq "$(d 2 inspect -f '{{.NetworkSettings.Networks.swnet.IPAddress}}' pin2)" "$ip" "pin2's address on node 2"
  echo "+ docker run --network swnet --ip $ip on node 3 (must fail)"
  out=$(d 3 run -d --name pin3 --network swnet --ip "$ip" "$BB" sleep 3600 2>&1) || rc=$?
  echo "$out" | sed 's/^/  | /'
  ((rc != 0)) || fail "node 3 also got $ip"
  tail -n +"$((mark + 1))" "$RIG_LOG/sw1.log" | grep -q "address $ip is already in use" ||
    fail "the manager's plugin did not say $ip is in use"
  echo "ok: node 3 refused, the manager's plugin said $ip is in use"
  d 3 rm -f pin3 >/dev/null 2>&1 || true
  d 2 rm -f pin2 >/dev/null
  # the manager releases the attachment's address when it removes it
  pin_again() {
    d 3 rm -f pin3b >/dev/null 2>&1 || true
    d 3 run -d --name pin3b --network swnet --ip "$ip" "$BB" sleep 3600 >/dev/null 2>&1
  }
  wait_for 120 pin_again || fail "waited 120 s to pin $ip again on node 3 after pin2 was removed"
  eq "$(d 3 inspect -f '{{.NetworkSettings.Networks.swnet.IPAddress}}' pin3b)" "$ip" "pin3b's address on node 3"
  d 3 rm -f pin3b >/dev/null
}

scenario_global_service_rm_releases_every_address() {
  d 1 service rm web
  wait_tasks_settle web 0
  no_plugin_links
  # 30 of the range's 32 addresses again: only possible if all came back
  d 1 service create -d --name web2 --replicas 30 --network swnet --no-resolve-image \
    --endpoint-mode dnsrr "$BB" sleep 3600
  wait_replicas web2 30
  check_distinct web2 swnet 30 "$RANGE_PREFIX" 32 63
  d 1 service rm web2
  wait_tasks_settle web2 0
}

scenario_global_network_rm_leaves_nothing() {
  d 1 network rm swnet
  local n
  # the workers drop the network when the manager's removal reaches them
  for n in 1 2 3; do
    wait_for 60 none_left net_on "$n" swnet ||
      fail "waited 60 s for swnet to go from node $n"
  done
  no_plugin_links
  echo "swnet gone from every node, no links left"
}

# --- local scope with config-only networks -------------------------------------

# scope_everywhere SCOPE: the plugin on every node runs with SCOPE (disabled,
# set, enabled again)
scope_everywhere() {
  local n
  for n in 1 2 3; do
    d "$n" plugin disable -f "$ALIAS"
    d "$n" plugin set "$ALIAS" "SCOPE=$1"
    d "$n" plugin enable "$ALIAS"
  done
  # Docker 29's manager keeps the scope it first saw for a plugin until its
  # daemon restarts (docs/swarm.md): restart the manager's, gracefully
  if ((E >= 29)); then
    x env KEEP_DATA=1 "$RIG/dockerd-stop.sh" sw1
    start_node 1
    wait_for 120 nodes_ready 3 || fail "the Swarm has $(d 1 node ls --format '{{.Status}}' | grep -c Ready) ready nodes 120 s after the manager's restart"
  fi
  wait_plugin_everywhere
}

scenario_local_scope_config_only_networks_with_disjoint_ranges() {
  local n
  scope_everywhere local
  for n in 1 2 3; do
    d "$n" network create --config-only --ipam-driver "$ALIAS" --subnet 10.212.0.0/24 \
      --gateway 10.212.0.1 --ip-range "10.212.0.$((32 * n))/27" \
      -o parent=eth0 -o kind=macvlan swcfg
  done
  d 1 network create -d "$ALIAS" --scope swarm --attachable --config-from swcfg swlocal
  # at most 3 a node: 3 on each node, whatever the scheduler knows at this
  # moment. wait_plugin_everywhere can pass on the manager's report from
  # before the disable above, and the spread strategy then placed every task
  # on two nodes (seen once on 28.5); with the cap, a task waits for its node.
  d 1 service create -d --name loc --replicas 9 --replicas-max-per-node 3 --network swlocal --no-resolve-image \
    --endpoint-mode dnsrr "$BB" sleep 3600
  wait_replicas loc 9
  check_distinct loc swlocal 9 10.212.0. 32 127
  # each node's tasks come from that node's range
  local node c ip last
  while read -r node c ip; do
    last=${ip##*.}
    ((last >= 32 * node && last < 32 * node + 32)) || fail "$ip on node $node is outside its range 10.212.0.$((32 * node))/27"
  done <"$SDIR/ips"
  ping_across "$SDIR/ips"
  d 1 service rm loc
  wait_tasks_settle loc 0
  d 1 network rm swlocal
  for n in 1 2 3; do d "$n" network rm swcfg; done
  no_plugin_links
}

# A Swarm network made without --config-from while the plugins have SCOPE=local
# reaches each node stripped of its options and subnet (tests/fixtures): the
# plugin refuses it, and the task's error says what to do instead of "creating
# dummy link ivd...: Operation not supported".
scenario_local_scope_without_config_from_is_refused_saying_what_to_do() {
  scope_everywhere local
  d 1 network create -d "$ALIAS" --ipam-driver "$ALIAS" --scope swarm --attachable \
    --subnet 10.213.0.0/24 --gateway 10.213.0.1 -o parent=eth0 -o kind=macvlan swbare
  d 1 service create -d --name bare --replicas 1 --network swbare --no-resolve-image \
    --endpoint-mode dnsrr "$BB" sleep 3600
  task_errors() { d 1 service ps --no-trunc --format '{{.Error}}' bare; }
  refused() { task_errors | grep -q 'SCOPE=global'; }
  wait_for 120 refused || fail "no task refused naming SCOPE=global; task errors: $(task_errors | sort -u)"
  local e
  e=$(task_errors | grep -m1 'SCOPE=global')
  echo "task error: $e"
  for needle in "is a Swarm network" "SCOPE=local" "docker plugin set" "--config-from"; do
    [[ $e == *"$needle"* ]] || fail "the task error does not say '$needle': $e"
  done
  d 1 service rm bare
  d 1 network rm swbare
  no_plugin_links
}

# --- addresses from the LAN's DHCP server, in Swarm ------------------------------

# The LAN's DHCP server: Debian's dnsmasq in a namespace of its own (irs-dhcp)
# on the cluster's segment (a veth into irs-sw's bridge), serving
# $DHCP_NET.100-150/24 with router $DHCP_NET.254, leases of 2 minutes
# (dnsmasq's minimum) and T1 of 5 s, so that every node renews within a scenario.
DHCP_NS=irs-dhcp DHCP_NET=10.214.0
dhcp_server_start() {
  dhcp_server_stop
  command -v dnsmasq >/dev/null || fail "no dnsmasq (apt-get install dnsmasq-base)"
  x ip netns add "$DHCP_NS"
  ip link add dh0 netns "$SW" type veth peer name lan0 netns "$DHCP_NS"
  ip -n "$SW" link set dh0 master br0 up
  ip -n "$DHCP_NS" link set lan0 up
  ip -n "$DHCP_NS" addr add "$DHCP_NET.1/24" dev lan0
  ip netns exec "$DHCP_NS" dnsmasq --conf-file=/dev/null --port=0 --user=root --bind-interfaces \
    --interface=lan0 --dhcp-range="$DHCP_NET.100,$DHCP_NET.150,255.255.255.0,2m" \
    --dhcp-option=3,"$DHCP_NET.254" --dhcp-option=option:T1,5 --dhcp-option=option:T2,110 \
    --dhcp-authoritative --no-ping --log-dhcp --log-facility="$E2E_WORK/dnsmasq.log" \
    --dhcp-leasefile="$E2E_WORK/dnsmasq.leases" --pid-file="$E2E_WORK/dnsmasq.pid"
  wait_for 60 test -s "$E2E_WORK/dnsmasq.pid" || fail "dnsmasq did not start: $(cat "$E2E_WORK/dnsmasq.log" 2>/dev/null)"
}
# dhcp_server_stop: the server and its namespace gone (nothing if not there)
dhcp_server_stop() {
  [[ -s $E2E_WORK/dnsmasq.pid ]] && kill "$(cat "$E2E_WORK/dnsmasq.pid")" 2>/dev/null
  rm -f "$E2E_WORK/dnsmasq.pid"
  ip netns del "$DHCP_NS" 2>/dev/null || true
}
# server_leases: "ADDRESS CLIENT-ID" of every lease in the server's file
server_leases() { awk '{print $3, $5}' "$E2E_WORK/dnsmasq.leases" 2>/dev/null | sort; }
n_server_leases() { (($(server_leases | wc -l) == $1)); }
# renewed_on N MARK: node N's plugin logged a lease renewal after line MARK of its log
renewed_on() { tail -n +"$(($2 + 1))" "$RIG_LOG/sw$1.log" | grep -q 'DHCP lease extended'; }

# Each node's plugin leases for the tasks on its node, from the LAN's server: a
# Swarm network with --ipam-driver null is refused by the manager (it knows no
# IPAM plugin "null"), so the form is the node-local one of docs/swarm.md, a
# --config-only network per node with --ipam-driver null -o dhcp=on, under
# SCOPE=local.
scenario_local_scope_dhcp_each_node_leases_for_its_own_tasks() {
  local n c ip mark=() ids
  local out rc=0
  # the cluster-wide form is refused by the manager before any plugin call
  out=$(d 1 network create -d "$ALIAS" --ipam-driver null --scope swarm -o parent=eth0 -o dhcp=on swnull 2>&1) || rc=$?
  echo "$out" | sed 's/^/  | /'
  ((rc != 0)) || fail "the manager took a Swarm network with --ipam-driver null"
  [[ $out == *"plugin null"* ]] || fail "the manager refused --ipam-driver null otherwise than docs/swarm.md says: $out"
  scope_everywhere local
  dhcp_server_start
  for n in 1 2 3; do mark[n]=$(wc -l <"$RIG_LOG/sw$n.log"); done
  for n in 1 2 3; do
    d "$n" network create --config-only --ipam-driver null -o parent=eth0 -o kind=macvlan -o dhcp=on swdcfg
  done
  d 1 network create -d "$ALIAS" --scope swarm --attachable --config-from swdcfg swdhcp
  # at most 2 a node (see local_scope_config_only_networks_with_disjoint_ranges)
  d 1 service create -d --name dh --replicas 6 --replicas-max-per-node 2 --network swdhcp --no-resolve-image \
    --endpoint-mode dnsrr "$BB" sleep 3600
  wait_replicas dh 6
  check_distinct dh swdhcp 6 "$DHCP_NET." 100 150
  wait_for 60 n_server_leases 6 || fail "the server holds $(server_leases | wc -l) leases, want 6: $(server_leases | paste -sd' ')"
  ids=$(server_leases | awk '{print $2}' | sort -u | wc -l)
  ((ids == 6)) || fail "$ids distinct client-ids in the server's lease file, want 6"
  server_leases | sed 's/^/  | /'
  while read -r n c ip; do
    server_leases | grep -q "^$ip " || fail "$ip (node $n) is not in the server's lease file"
    tail -n +"$((mark[n] + 1))" "$RIG_LOG/sw$n.log" | grep 'DHCP lease obtained' | grep -qE "address=${ip//./\\.}([^0-9]|$)" ||
      fail "node $n's plugin did not log obtaining the lease of its task's $ip"
  done <"$SDIR/ips"
  echo "ok: 6 tasks, 6 leases of the server under 6 client-ids, each obtained by the plugin of the task's node"
  read -r n c _ <"$SDIR/ips"
  d "$n" exec "$c" ip route | grep -q "default via $DHCP_NET.254 dev eth0" ||
    fail "no default route via the server's router $DHCP_NET.254: $(d "$n" exec "$c" ip route)"
  ping_across "$SDIR/ips"
  for n in 1 2 3; do
    wait_for 60 renewed_on "$n" "${mark[n]}" || fail "node $n's plugin renewed no lease within 60 s (T1 is 5 s)"
  done
  echo "ok: every node's plugin renews its leases"
  d 1 service scale -d dh=3
  wait_tasks_settle dh 3
  wait_for 60 n_server_leases 3 || fail "after scaling to 3 the server holds $(server_leases | wc -l) leases, want 3"
  d 1 service rm dh
  wait_tasks_settle dh 0
  wait_for 60 n_server_leases 0 || fail "after service rm the server still holds $(server_leases | paste -sd' ')"
  echo "ok: scale-down and service rm gave the leases back"
  d 1 network rm swdhcp
  for n in 1 2 3; do wait_for 60 none_left net_on "$n" swdhcp || fail "waited 60 s for swdhcp to go from node $n"; done
  for n in 1 2 3; do d "$n" network rm swdcfg; done
  no_plugin_links
  dhcp_server_stop
}

# --- setup and teardown of a cluster ------------------------------------------

# start_node N: node N's dockerd (in irs-nN), started or started again
start_node() {
  local bindir_var=ENGINE_${E}_BIN_DIR
  NETNS=irs-n$1 PATH=${!bindir_var}:$PATH x rig dockerd-start.sh "sw$1" "$E" "--insecure-registry=$REG"
}

scenario_setup() {
  local n token
  stop_cluster
  x ip netns add "$SW"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" addr add "$REGADDR/24" dev br0
  ip -n "$SW" link set br0 up
  for n in 1 2 3; do
    x ip netns add "irs-n$n"
    ip link add eth0 netns "irs-n$n" type veth peer name "p$n" netns "$SW"
    ip -n "$SW" link set "p$n" master br0 up
    ip -n "irs-n$n" addr add "10.210.0.1$n/24" dev eth0
    ip -n "irs-n$n" link set eth0 up
    ip -n "irs-n$n" link set lo up
    ip -n "irs-n$n" route add default via "$REGADDR"
  done
  NETNS=$SW ADDR=$REGADDR x rig registry-start.sh "$REGPORT"
  for n in 1 2 3; do
    start_node "$n"
    DOCKER_HOST=unix://$RIG_RUN/sw$n.sock x rig busybox-image.sh "$BB"
  done
  # node 1 makes the plugin from this tree's bundle and pushes it; every node
  # (node 1 included) installs it from the registry under the alias
  DOCKER_HOST=unix://$RIG_RUN/sw1.sock x make -s -C "$ROOT" create push REGISTRY="$REG" PLUGIN_TAG=e2e-swarm
  x d 1 plugin rm -f "$REF"
  for n in 1 2 3; do
    x d "$n" plugin install --grant-all-permissions --alias "$ALIAS" "$REF" SCOPE=global
    eq "$(d "$n" plugin inspect -f '{{.Name}} {{.PluginReference}}' "$ALIAS")" "$ALIAS $REF" "node $n's plugin name and reference"
  done
  x d 1 swarm init --advertise-addr 10.210.0.11
  token=$(d 1 swarm join-token -q worker)
  for n in 2 3; do
    x d "$n" swarm join --token "$token" 10.210.0.11:2377
  done
  wait_for 120 nodes_ready 3 ||
    fail "waited 120 s for 3 ready nodes: $(d 1 node ls --format '{{.Hostname}} {{.Status}}' | paste -sd' ')"
  echo "ok: 3 nodes ($(d 1 version -f '{{.Server.Version}}')), plugin $REF installed from the registry on each as $ALIAS"
}

scenario_teardown() {
  local n
  if [[ -n ${KEEP:-} ]]; then
    note "KEEP: the cluster is left running"
    return 0
  fi
  x stop_cluster
  for n in 1 2 3; do
    [[ -z $(pids_with_arg "--exec-root=$RIG_RUN/sw$n") ]] || fail "dockerd sw$n still runs"
    [[ ! -e $RIG_RUN/sw$n && ! -e $RIG_DATA/sw$n ]] || fail "exec-root or data-root of sw$n left"
  done
  [[ -z $(ip netns list | grep -E "^(irs-n[123]|$SW)( |$)" || true) ]] || fail "namespaces left: $(ip netns list)"
  [[ -z $(pids_with_arg "$RIG_RUN/registry-$REGPORT/config.yml") ]] || fail "registry still runs"
  echo "ok: nothing of the cluster left (daemons, dirs, namespaces, registry)"
}

[[ $(id -u) == 0 ]] || die "needs root (daemons in network namespaces, links, mounts)"
# one run at a time (a second one would stop the first one's cluster)
suite_lock e2e-swarm
[[ -d $ROOT/target/bundle/rootfs ]] || die "no bundle in target/bundle: run 'make bundle' (make e2e-swarm does)"
trap on_exit EXIT
fresh_log_dir e2e-swarm "$RIG_LOG"/sw[0-9].log "$RIG_LOG"/sw[0-9].containerd.log "$RIG_LOG/registry-$REGPORT.log"
e2e_engines "${ENGINES[@]}"
for E in "${ENGINES[@]}"; do
  E2E_LABEL="e2e-swarm[$E]"
  run_engine "${SCENARIOS[@]}"
done
e2e_summary e2e-swarm
