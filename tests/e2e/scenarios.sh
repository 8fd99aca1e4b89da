# shellcheck shell=bash disable=SC2153  # globals (NAME, E, ...) come from run.sh
# End-to-end scenarios: one function `scenario_NAME` each, run by the harness in
# lib.sh against the private daemon of engine $E. Sourced by run.sh.
#
# Every network uses -o kind=macvlan on a veth parent of the scenario's own
# (this host's kernel has no ipvlan, 802.1Q or dummy links) and subnets
# 10.$E.<n>.0/24 and fd$E:e2e:<n>::/64, <n> unique per scenario.
# Containers: `ctr NAME OPTS...` (busybox `sleep` under docker-init).

# --- setup and teardown of an engine ------------------------------------------------

scenario_setup() {
  local out id
  out=$(rig dockerd-start.sh "$NAME" "$E")
  eq "$out" "DOCKER_HOST=$DOCKER_HOST" "daemon socket"
  note "engine $E: $(docker version -f 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})')"
  x "$RIG/busybox-image.sh" "$BB"
  x docker plugin create "$P" "$BASE_BUNDLE"
  x docker plugin set "$P" "${E2E_PLUGIN_SETTINGS[@]}"
  x docker plugin enable "$P"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" true "plugin enabled"
  id=$(docker plugin inspect -f '{{.Id}}' "$P")
  echo "$id" >>"$E2E_WORK/plugin-ids"
  # the plugin answers on its socket and serves both roles
  out=$(curl -sS --max-time "$E2E_CMD_TIMEOUT" -XPOST --unix-socket "/run/docker/plugins/$id/ipvlan-rs.sock" http://plugin/Plugin.Activate)
  echo "Plugin.Activate: $out"
  matches "$out" '"NetworkDriver"' "Plugin.Activate implements"
  matches "$out" '"IpamDriver"' "Plugin.Activate implements"
  [[ -d $DATA/plugins/$id/propagated-mount ]] || fail "no propagated mount $DATA/plugins/$id/propagated-mount"
  # the rootfs is this tree's bundle
  cmp "$DATA/plugins/$id/rootfs/ipvlan-rs" "$BASE_BUNDLE/rootfs/ipvlan-rs" || fail "plugin binary is not the bundle's"
  echo "ok: plugin $id runs the bundle's binary"
}

scenario_teardown() {
  local id p m
  x "$RIG/dockerd-stop.sh" "$NAME"
  p=$(pids_with_arg "--exec-root=$RIG_RUN/$NAME"; pids_with_arg "$RIG_RUN/$NAME/containerd.toml"; pids_with_arg "$RIG_RUN/$NAME/ctrd/c.sock")
  [[ -z $p ]] || fail "processes of $NAME left: $p"
  m=$(awk -v a="$DATA" -v b="$RIG_RUN/$NAME" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo)
  [[ -z $m ]] || fail "mounts of $NAME left: $m"
  [[ ! -e $DATA && ! -e $RIG_RUN/$NAME ]] || fail "data-root or exec-root of $NAME left"
  if [[ -f $E2E_WORK/plugin-ids ]]; then
    while read -r id; do
      [[ ! -e /run/docker/plugins/$id ]] || fail "plugin dir /run/docker/plugins/$id left"
    done <"$E2E_WORK/plugin-ids"
  fi
  [[ -z $(plugin_links) ]] || fail "links of the plugin left: $(plugin_links | paste -sd" ")"
  echo "ok: nothing of $NAME left (processes, mounts, dirs, plugin dirs, links)"
}

# --- the scenarios --------------------------------------------------------------------

# Bad options are refused by the plugin with an error naming the bad value, through
# `docker network create`; nothing is left behind; good options then work.
scenario_bad_options() {
  local p s=10.$E.1.0/24
  p=$(new_parent)
  fails_with "requested kind 'bogus' is not valid" mknet bo1 --subnet "$s" -o parent="$p" -o kind=bogus
  fails_with "parent interface nonexistent0 does not exist" mknet bo2 --subnet "$s" -o parent=nonexistent0 -o kind=macvlan
  fails_with 'unknown option "frobnicate"' mknet bo3 --subnet "$s" -o parent="$p" -o kind=macvlan -o frobnicate=1
  fails_with "macvlan mode 'weird' is not valid" mknet bo4 --subnet "$s" -o parent="$p" -o kind=macvlan -o macvlan_mode=weird
  fails_with '"ipvlan_mode" applies to kind=ipvlan' mknet bo5 --subnet "$s" -o parent="$p" -o kind=macvlan -o ipvlan_mode=l3
  fails_with 'invalid mtu "12x"' mknet bo6 --subnet "$s" -o parent="$p" -o kind=macvlan -o com.docker.network.driver.mtu=12x
  fails_with 'loopback' mknet bo7 --subnet "$s" -o parent=lo -o kind=macvlan
  eq "$(docker network ls -q --filter name=bo)" "" "networks left by the failed creates"
  no_links_on "$p"
  # the failed creates left no address behind: a good network on the same subnet
  # starts at the bottom again. Engine 20 always reserves a gateway (.1, so the first
  # container gets .2); 28 asks the plugin (GwAllocCheck), which wants none without
  # --gateway (so the first container gets .1).
  mknet ok --subnet "$s" -o parent="$p" -o kind=macvlan
  ctr c1 --network ok
  if [[ $E == 20 ]]; then
    eq "$(gw4 c1)" "10.$E.1.1" "c1 default gateway (reserved by the engine)"
    eq "$(addr4 c1)" "10.$E.1.2/24" "c1 address"
  else
    eq "$(n_defaults c1)" 0 "c1 default routes (no gateway)"
    eq "$(addr4 c1)" "10.$E.1.1/24" "c1 address"
  fi
  # a second network on the same parent with a conflicting kind is refused, naming the other network
  fails_with "already used by network $(docker network inspect -f '{{.Id}}' ok | cut -c1-12)" \
    mknet conflict --subnet "10.$E.2.0/24" -o parent="$p" -o kind=ipvlan
}

# The quick start of the top-level README.md, command for command: with only the
# parent (a veth of the scenario's), the plugin reference, the subnet, gateway
# and range (10.$E.28.x for 192.168.1.x) and the image substituted, plus
# `-o kind=macvlan`: the default kind is ipvlan and this host's kernel has none
# (the VM suite, make test-vm, covers ipvlan). The web page is written before
# httpd starts (bare `httpd -f -p 80` serves no page: busybox httpd lists no
# directories). Outcomes: the container has the first address of --ip-range and
# its default route via the gateway, wget by name returns the page, `network
# inspect` lists the container with that address.
scenario_quick_start() {
  local p n=10.$E.28 page
  p=$(new_parent)
  # step 1 finds the host's uplink; the scenario uses its own parent instead
  x ip route show default
  x docker network create -d "$P" --ipam-driver "$P" \
    --subnet "$n.0/24" --gateway "$n.1" --ip-range "$n.192/27" \
    -o parent="$p" -o kind=macvlan lan
  x docker run -d --name web --network lan "$BB" sh -c 'echo "hello from web" >index.html && httpd -f -p 80'
  eq "$(addr4 web)" "$n.192/24" "web's address (the first of --ip-range)"
  eq "$(gw4 web)" "$n.1" "web's default gateway"
  # `docker run -d` returns when the container has started, not httpd
  wait_for 60 listens web 80 || fail "waited 60 s for httpd in web to listen on port 80"
  echo "+ docker run --rm --network lan $BB wget -qO- http://web/"
  page=$(docker run --rm --network lan "$BB" wget -qO- http://web/)
  eq "$page" "hello from web" "the page wget got from http://web/"
  x docker network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{"\n"}}{{end}}' lan
  eq "$(docker network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{"\n"}}{{end}}' lan | sed '/^$/d')" \
    "web $n.192/24" "containers network inspect lists"
}

# Two containers: the expected addresses and routes; they ping each other by IP,
# by name and by alias; only eth0 (no docker_gwbridge); own MAC addresses.
scenario_two_containers() {
  local p m1 m2 mp
  p=$(new_parent)
  mknet n --subnet "10.$E.10.0/24" --gateway "10.$E.10.1" -o parent="$p" -o kind=macvlan
  ctr c1 --network n
  ctr c2 --network n --network-alias web
  show c1
  show c2
  eq "$(addr4 c1)" "10.$E.10.2/24" "c1 address"
  eq "$(addr4 c2)" "10.$E.10.3/24" "c2 address"
  eq "$(gw4 c1)" "10.$E.10.1" "c1 default gateway"
  eq "$(gw4 c2)" "10.$E.10.1" "c2 default gateway"
  matches "$(ex c1 ip -4 route)" "10\.$E\.10\.0/24 dev eth0 .*src 10\.$E\.10\.2" "c1 subnet route"
  eq "$(ifaces c1 | paste -sd' ')" "eth0" "c1 interfaces"
  eq "$(net_addrs n | paste -sd' ')" "10.$E.10.2 10.$E.10.3" "addresses docker reports"
  pings c1 "10.$E.10.3"
  pings c2 "10.$E.10.2"
  pings c1 c2
  pings c2 c1
  pings c1 web
  m1=$(ex c1 cat /sys/class/net/eth0/address)
  m2=$(ex c2 cat /sys/class/net/eth0/address)
  mp=$(cat "/sys/class/net/$p/address")
  [[ $m1 != "$m2" && $m1 != "$mp" && $m2 != "$mp" ]] || fail "macvlan MACs not distinct: $m1 $m2 parent $mp"
  echo "ok: MACs $m1 $m2, parent $mp"
  # the container links live in the containers, none in the host namespace
  no_links_on "$p"
}

# IPAM: --subnet, --gateway, --ip-range, --aux-address, --ip; serial allocation
# from the range that skips aux addresses; conflicts refused by name.
scenario_ipam_v4() {
  local p n=10.$E.11
  p=$(new_parent)
  mknet ip --subnet "$n.0/24" --gateway "$n.254" --ip-range "$n.128/28" \
    --aux-address r1="$n.129" --aux-address r2="$n.130" -o parent="$p" -o kind=macvlan
  echo "IPAM: $(docker network inspect -f '{{json .IPAM.Config}}' ip)"
  ctr c1 --network ip
  ctr c2 --network ip
  ctr c3 --network ip --ip "$n.20"
  eq "$(addr4 c1)" "$n.128/24" "c1: first address of the range"
  eq "$(addr4 c2)" "$n.131/24" "c2: next one, aux addresses .129 .130 skipped"
  eq "$(addr4 c3)" "$n.20/24" "c3: static address outside the range"
  eq "$(gw4 c1)" "$n.254" "c1 default gateway"
  eq "$(gw4 c3)" "$n.254" "c3 default gateway"
  fails_with "$n\.254 is already in use" docker run --rm --network ip --ip "$n.254" "$BB" true
  fails_with "$n\.129 is already in use" docker run --rm --network ip --ip "$n.129" "$BB" true
  fails_with "$n\.20 is already in use" docker run --rm --network ip --ip "$n.20" "$BB" true
  ctr c4 --network ip
  eq "$(addr4 c4)" "$n.132/24" "c4: the refused requests took no address"
  unique "$(net_addrs ip)" "addresses on ip"
  pings c1 "$n.20"
  pings c3 "$n.131"
  pings c4 c1
}

# Dual stack: IPv4 + IPv6 addresses, both default routes, pings over both families
# by address and by name.
scenario_dual_stack() {
  local p n=10.$E.12 s6=fd$E:e2e:12
  p=$(new_parent)
  mknet ds --ipv6 --subnet "$n.0/24" --gateway "$n.1" --subnet "$s6::/64" --gateway "$s6::1" \
    -o parent="$p" -o kind=macvlan
  ctr c1 --network ds
  ctr c2 --network ds --ip "$n.99" --ip6 "$s6::99"
  show c1
  eq "$(addr4 c1)" "$n.2/24" "c1 IPv4"
  eq "$(addr6 c1)" "$s6::2/64" "c1 IPv6"
  eq "$(addr4 c2)" "$n.99/24" "c2 IPv4"
  eq "$(addr6 c2)" "$s6::99/64" "c2 IPv6"
  eq "$(gw4 c1)" "$n.1" "c1 IPv4 default gateway"
  eq "$(gw6 c1)" "$s6::1" "c1 IPv6 default gateway"
  eq "$(gw6 c2)" "$s6::1" "c2 IPv6 default gateway"
  unique "$(net_addrs ds 6)" "IPv6 addresses on ds"
  pings c1 "$s6::99"
  pings c2 "$s6::2"
  pings c1 c2 -6
  pings c2 c1 -6
  pings c1 c2 -4
  pings c2 c1 -4
}

# IPv6-only network (--ipv4=false, engines 28 and later): the containers get IPv6
# addresses and routes only, no IPv4 address or route on eth0, and reach each
# other over IPv6.
skip_ipv6_only() {
  ((E >= 28)) && return 1
  echo "engine $E has no --ipv4=false: IPv6-only networks came with Docker 28.0"
}
scenario_ipv6_only() {
  local p s6=fd$E:e2e:30
  p=$(new_parent)
  mknet v6 --ipv4=false --ipv6 --subnet "$s6::/64" --gateway "$s6::1" -o parent="$p" -o kind=macvlan
  eq "$(docker network inspect -f '{{.EnableIPv4}} {{.EnableIPv6}}' v6)" "false true" "v6 EnableIPv4 EnableIPv6"
  ctr c1 --network v6
  ctr c2 --network v6 --ip6 "$s6::99"
  show c1
  eq "$(ex c1 ip -4 -o addr show dev eth0)" "" "c1 IPv4 addresses on eth0"
  eq "$(ex c1 ip -4 route show)" "" "c1 IPv4 routes"
  eq "$(net_addr c1 v6)" "" "c1 IPv4 address docker reports"
  eq "$(addr6 c1)" "$s6::2/64" "c1 IPv6"
  eq "$(addr6 c2)" "$s6::99/64" "c2 IPv6"
  matches "$(ex c1 ip -6 route show)" "$s6::/64 dev eth0" "c1 IPv6 subnet route"
  eq "$(gw6 c1)" "$s6::1" "c1 IPv6 default gateway"
  eq "$(gw6 c2)" "$s6::1" "c2 IPv6 default gateway"
  eq "$(ifaces c1 | paste -sd' ')" "eth0" "c1 interfaces"
  pings c1 "$s6::99"
  pings c2 c1 -6
}

# Gateway priority (engines 28 and later): a container on two networks of the
# plugin gets its default route from the one the engine picks, the highest
# gw-priority, at docker run and at docker network connect / disconnect.
skip_gw_priority() {
  ((E >= 28)) && return 1
  echo "engine $E has no gw-priority: it came with Docker 28.0"
}
scenario_gw_priority() {
  local pa pb a=10.$E.31 b=10.$E.32
  pa=$(new_parent)
  pb=$(new_parent)
  mknet ga --subnet "$a.0/24" --gateway "$a.1" -o parent="$pa" -o kind=macvlan
  mknet gb --subnet "$b.0/24" --gateway "$b.1" -o parent="$pb" -o kind=macvlan
  ctr c1 --network name=ga --network name=gb,gw-priority=1
  ctr c2 --network name=ga,gw-priority=1 --network name=gb
  show c1
  eq "$(gw4 c1)" "$b.1" "c1 default gateway (gb has gw-priority 1)"
  eq "$(gw4 c2)" "$a.1" "c2 default gateway (ga has gw-priority 1)"
  eq "$(n_defaults c1)" 1 "c1 default routes"
  eq "$(n_defaults c2)" 1 "c2 default routes"
  eq "$(ifaces c1 | wc -l)" 2 "c1 interfaces"
  ctr c3 --network ga
  eq "$(gw4 c3)" "$a.1" "c3 default gateway (ga alone)"
  x docker network connect --gw-priority 10 gb c3
  eq "$(gw4 c3)" "$b.1" "c3 default gateway after connect gb --gw-priority 10"
  eq "$(n_defaults c3)" 1 "c3 default routes"
  x docker network disconnect gb c3
  eq "$(gw4 c3)" "$a.1" "c3 default gateway after disconnect gb"
  pings c1 "$(net_addr c2 gb)"
  pings c3 "$(net_addr c2 ga)"
}

# --internal: no default route (IPv4 or IPv6), but the containers reach each
# other; the MTU option reaches the container links.
scenario_internal() {
  local p n=10.$E.13 s6=fd$E:e2e:13
  p=$(new_parent)
  mknet in --internal --ipv6 --subnet "$n.0/24" --subnet "$s6::/64" \
    -o parent="$p" -o kind=macvlan -o com.docker.network.driver.mtu=1280
  ctr c1 --network in
  ctr c2 --network in
  show c1
  eq "$(n_defaults c1)" 0 "c1 default routes"
  eq "$(n_defaults c2)" 0 "c2 default routes"
  eq "$(ifaces c1 | paste -sd' ')" "eth0" "c1 interfaces"
  eq "$(ex c1 cat /sys/class/net/eth0/mtu)" 1280 "c1 eth0 MTU"
  matches "$(addr4 c1)" "^10\.$E\.13\.[0-9]+/24$" "c1 IPv4"
  matches "$(addr6 c2)" "^fd$E:e2e:13::[0-9a-f]+/64$" "c2 IPv6"
  unique "$(net_addrs in; net_addrs in 6)" "addresses on in"
  pings c1 c2 -4
  pings c2 c1 -6
}

# No --subnet: a pool from the plugin's DEFAULT_POOLS, distinct per network. No
# --gateway: engine 20 reserves one anyway (.1, the default route), engine 28 asks
# the plugin, which wants none (no default route). Either way the container has
# eth0 only, no docker_gwbridge.
scenario_default_pool() {
  local p gwb_before s1 s2 g
  p=$(new_parent)
  gwb_before=$(link_exists docker_gwbridge && echo yes || echo no)
  mknet dp -o parent="$p" -o kind=macvlan
  mknet dp2 -o parent="$p" -o kind=macvlan
  s1=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' dp)
  s2=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' dp2)
  g=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' dp)
  matches "$s1" '^172\.30\.[0-9]+\.0/24$' "dp subnet from DEFAULT_POOLS"
  matches "$s2" '^172\.30\.[0-9]+\.0/24$' "dp2 subnet from DEFAULT_POOLS"
  [[ $s1 != "$s2" ]] || fail "dp and dp2 got the same pool $s1"
  ctr c1 --network dp
  ctr c2 --network dp
  show c1
  matches "$(addr4 c1)" "^${s1%.0/24}\.[0-9]+/24$" "c1 address in $s1"
  if [[ $E == 20 ]]; then
    eq "$g" "${s1%.0/24}.1" "dp gateway (reserved by engine 20)"
    eq "$(gw4 c1)" "$g" "c1 default gateway"
  else
    eq "$g" "" "dp gateway (none: the plugin answers GwAllocCheck with skip)"
    eq "$(n_defaults c1)" 0 "c1 default routes"
  fi
  eq "$(ifaces c1 | paste -sd' ')" "eth0" "c1 interfaces (no docker_gwbridge)"
  eq "$(link_exists docker_gwbridge && echo yes || echo no)" "$gwb_before" "docker_gwbridge on the host"
  pings c1 c2
}

# docker network connect / disconnect (dynamic and --ip), reconnect.
scenario_connect_disconnect() {
  local pa pb a=10.$E.14 b=10.$E.15 old addr
  pa=$(new_parent a)
  pb=$(new_parent b)
  mknet na --subnet "$a.0/24" --gateway "$a.1" -o parent="$pa" -o kind=macvlan
  mknet nb --subnet "$b.0/24" --gateway "$b.1" -o parent="$pb" -o kind=macvlan
  ctr k1 --network na
  ctr k2 --network nb
  eq "$(ifaces k1 | paste -sd' ')" "eth0" "k1 interfaces before connect"
  x docker network connect nb k1
  show k1
  eq "$(ifaces k1 | sort | paste -sd' ')" "eth0 eth1" "k1 interfaces after connect"
  eq "$(addr4 k1 eth0)" "$a.2/24" "k1 eth0 (na)"
  eq "$(addr4 k1 eth1)" "$b.3/24" "k1 eth1 (nb)"
  matches "$(ex k1 ip -4 route)" "$b\.0/24 dev eth1" "k1 route to nb"
  pings k1 "$b.2"
  pings k2 k1
  x docker network connect --ip "$a.50" na k2
  eq "$(addr4 k2 eth1)" "$a.50/24" "k2 eth1 (na, --ip)"
  pings k1 "$a.50"
  pings k1 k2
  x docker network disconnect nb k1
  eq "$(ifaces k1 | paste -sd' ')" "eth0" "k1 interfaces after disconnect"
  eq "$(net_addrs nb | paste -sd' ')" "$b.2" "addresses on nb after disconnect"
  no_ping k2 "$b.3"
  no_links_on "$pb"
  old=$b.3
  x docker network connect nb k1
  # engine 20 names the new interface eth2, 28 eth1 again: find it by address
  addr=$(net_addr k1 nb)
  matches "$addr" "^$b\.[0-9]+$" "k1 address on nb after reconnect"
  has_addr k1 "$addr"
  none_of "$addr" "$old" "reconnect address (serial allocation)"
  eq "$(ifaces k1 | wc -l)" 2 "k1 interfaces after reconnect ($(ifaces k1 | paste -sd' '))"
  pings k2 k1
  unique "$(net_addrs na; net_addrs nb)" "addresses on na and nb"
}

# docker stop / start / restart: endpoints go and come back, static addresses kept.
scenario_stop_start() {
  local p n=10.$E.16
  p=$(new_parent)
  mknet ss --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr s1 --network ss
  ctr s2 --network ss --ip "$n.50"
  eq "$(addr4 s1)" "$n.2/24" "s1 address"
  stop_by_sigterm s1 s2
  eq "$(state s1) $(state s2)" "exited exited" "states after stop"
  eq "$(net_addrs ss)" "" "endpoints on ss after stop"
  no_links_on "$p"
  x docker start s1 s2 >/dev/null
  wait_running s1
  wait_running s2
  show s1
  matches "$(addr4 s1)" "^$n\.[0-9]+/24$" "s1 address after start"
  eq "$(addr4 s2)" "$n.50/24" "s2 static address after start"
  eq "$(gw4 s1)" "$n.1" "s1 default gateway after start"
  pings s1 s2
  pings s2 s1
  x docker restart -t 5 s1 >/dev/null
  wait_running s1
  pings s2 s1
  unique "$(net_addrs ss)" "addresses on ss"
}

# docker network rm: refused while in use; afterwards no host links remain and the
# same network can be made again.
scenario_network_rm() {
  local p n=10.$E.17
  p=$(new_parent)
  mknet nr --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr c1 --network nr
  ctr c2 --network nr
  pings c1 c2
  fails_with "active endpoints" docker network rm nr
  x docker rm -f c1 c2 >/dev/null
  x docker network rm nr >/dev/null
  eq "$(docker network ls -q --filter name=nr)" "" "networks named nr"
  no_links_on "$p"
  [[ -n $(ip -o link show "$p") ]] || fail "the parent $p was deleted (the plugin did not create it)"
  # again, same name, subnet and parent: the plugin kept nothing of the old one
  mknet nr --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr c3 --network nr
  eq "$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' nr)" "$n.1" "gateway of the new nr"
  matches "$(addr4 c3)" "^$n\.[0-9]+/24$" "c3 address"
  x docker rm -f c3 >/dev/null
  x docker network rm nr >/dev/null
  no_links_on "$p"
}

# `make install` again on an engine that runs the plugin (scripts/create-plugin.sh
# and `make enable`, as `make install` runs them, on the suite's bundle): the
# plugin is re-created, and keeps its state
# (pools, addresses, endpoints) and its `docker plugin set` values. Running
# containers keep their addresses, a pinned address is still held, a new container
# gets an address no running one has, and the network is removed cleanly.
scenario_reinstall_keeps_state() {
  local p n=10.$E.29 mark id before after level a1addr
  p=$(new_parent)
  mark=$(log_mark)
  mknet ri --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr a1 --network ri
  ctr a2 --network ri --ip "$n.50"
  before=$(net_addrs ri)
  a1addr=$(addr4 a1)
  id=$(docker plugin inspect -f '{{.Id}}' "$P")
  level=$(docker plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$P" | grep '^LOG_LEVEL=')
  # what `make create enable` runs, on the suite's bundle: `make create` would
  # rebuild target/bundle, and later scenarios expect the suite's marker file
  x env DOCKER=docker "$ROOT/scripts/create-plugin.sh" "$P" "$BASE_BUNDLE"
  x make -C "$ROOT" --no-print-directory enable
  [[ $(docker plugin inspect -f '{{.Id}}' "$P") != "$id" ]] || fail "make create did not re-create $P"
  docker plugin inspect -f '{{.Id}}' "$P" >>"$E2E_WORK/plugin-ids"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" true "plugin enabled after make create enable"
  eq "$(docker plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$P" | grep '^LOG_LEVEL=')" "$level" "LOG_LEVEL carried over"
  eq "$(addr4 a1)" "$a1addr" "a1's address after the reinstall"
  eq "$(addr4 a2)" "$n.50/24" "a2's pinned address after the reinstall"
  pings a1 a2
  no_plugin_errors "$mark"
  fails_with "already in use" docker run --rm --network ri --ip "$n.50" "$BB" true
  # the refusal above is logged as a warning, on purpose
  mark=$(log_mark)
  ctr b1 --network ri
  after=$(addr4 b1 | cut -d/ -f1)
  none_of "$after" "$before" "the address of a container made after the reinstall"
  unique "$(net_addrs ri)" "addresses on ri"
  pings b1 a2
  stop_by_sigterm a1 a2
  x docker rm -f a1 a2 b1 >/dev/null
  x docker network rm ri >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# docker plugin disable -f + enable with containers running: the old containers keep
# working and stop cleanly; new ones get fresh, non-duplicate addresses (the IPAM
# state was kept).
scenario_plugin_disable_enable() {
  local p n=10.$E.18 mark before after
  p=$(new_parent)
  mark=$(log_mark)
  mknet de --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr a1 --network de
  ctr a2 --network de
  ctr a3 --network de --ip "$n.50"
  before=$(net_addrs de)
  x docker plugin disable -f "$P"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" false "plugin enabled after disable -f"
  pings a1 a2
  x docker plugin enable "$P"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" true "plugin enabled after enable"
  pings a1 a2
  ctr b1 --network de
  ctr b2 --network de
  after=$(addr4 b1 | cut -d/ -f1; addr4 b2 | cut -d/ -f1)
  none_of "$after" "$before" "addresses of the new containers"
  unique "$(net_addrs de)" "addresses on de"
  pings b1 a1
  pings a2 b2
  pings b1 a3
  # a new network works too
  mknet de2 --subnet "10.$E.19.0/24" -o parent="$p" -o kind=macvlan
  ctr b3 --network de2
  matches "$(addr4 b3)" "^10\.$E\.19\.[0-9]+/24$" "b3 on a network made after enable"
  stop_by_sigterm a1 a2 a3
  eq "$(net_addrs de | paste -sd' ')" "$(printf '%s\n' "$after" | sort | paste -sd' ')" "endpoints left on de after stopping the old containers"
  x docker rm a1 a2 a3 >/dev/null
  x docker rm -f b1 b2 b3 >/dev/null
  x docker network rm de de2 >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# dockerd restart (graceful, data kept) with --restart always containers: they come
# back with working networking, state kept (no duplicates), the rest stays stopped.
scenario_daemon_restart() {
  local p n=10.$E.20 mark before
  p=$(new_parent)
  mknet rs --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr r1 --network rs --restart always
  ctr r2 --network rs --restart always --ip "$n.50"
  ctr r3 --network rs
  before=$(net_addrs rs)
  pings r1 r2
  x env KEEP_DATA=1 "$RIG/dockerd-stop.sh" "$NAME"
  if command docker version >/dev/null 2>&1; then fail "daemon still answers after stop"; fi
  no_links_on "$p"
  mark=$(log_mark)
  x rig dockerd-start.sh "$NAME" "$E" >/dev/null
  wait_running r1
  wait_running r2
  eq "$(state r3)" exited "r3 (no restart policy) after the restart"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" true "plugin enabled after the restart"
  show r1
  matches "$(addr4 r1)" "^$n\.[0-9]+/24$" "r1 address after the restart"
  eq "$(addr4 r2)" "$n.50/24" "r2 static address after the restart"
  eq "$(gw4 r1)" "$n.1" "r1 default gateway after the restart"
  pings r1 r2
  pings r2 r1
  ctr c1 --network rs
  x docker start r3 >/dev/null
  wait_running r3
  unique "$(net_addrs rs)" "addresses on rs"
  pings c1 r1
  pings r3 c1
  no_plugin_errors "$mark"
}

# live_restore_daemon: the suite's daemon restarted (data kept) with --live-restore
live_restore_daemon() {
  x env KEEP_DATA=1 "$RIG/dockerd-stop.sh" "$NAME"
  x rig dockerd-start.sh "$NAME" "$E" --live-restore >/dev/null
  eq "$(docker info -f '{{.LiveRestoreEnabled}}')" true "live-restore enabled"
}
# plain_daemon: the suite's daemon again, without --live-restore
plain_daemon() {
  x env KEEP_DATA=1 "$RIG/dockerd-stop.sh" "$NAME"
  x rig dockerd-start.sh "$NAME" "$E" >/dev/null
}
# restart_dockerd_only C: SIGTERM to dockerd alone (containerd, the plugin and the
# containers stay), dockerd started again with --live-restore; container C kept
# running through it (its start time unchanged)
restart_dockerd_only() {
  local pidf=/run/ipvlan-rs-test/$NAME.pid dpid started
  started=$(docker inspect -f '{{.State.StartedAt}}' "$1")
  dpid=$(cat "$pidf")
  x kill -TERM "$dpid"
  wait_for 90 gone "$dpid" || fail "dockerd (pid $dpid) still runs 90 s after its SIGTERM"
  x env DOCKERD_ONLY=1 "$RIG/dockerd-start.sh" "$NAME" "$E" --live-restore >/dev/null
  eq "$(state "$1")" running "$1 after the live-restore restart"
  eq "$(docker inspect -f '{{.State.StartedAt}}' "$1")" "$started" "$1 start time (kept running)"
}

# dockerd restarted with --live-restore while containers run: they keep
# running with their network (the engine calls no driver for them), and
# afterwards every Docker command on the network works without duplicates.
scenario_daemon_restart_live_restore() {
  local p n=10.$E.24 mark
  live_restore_daemon
  p=$(new_parent)
  mknet lr --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr l1 --network lr
  ctr l2 --network lr --ip "$n.50"
  pings l1 l2
  mark=$(log_mark)
  restart_dockerd_only l1
  eq "$(addr4 l2)" "$n.50/24" "l2 address after the restart"
  pings l1 l2
  pings l2 l1
  ctr l3 --network lr
  unique "$(net_addrs lr)" "addresses on lr"
  pings l3 l1
  x docker stop l1 >/dev/null
  x docker rm l1 >/dev/null
  ctr l4 --network lr
  unique "$(net_addrs lr)" "addresses on lr"
  pings l4 l2
  no_plugin_errors "$mark"
  x docker rm -f l2 l3 l4 >/dev/null
  x docker network rm lr >/dev/null
  no_links_on "$p"
  plain_daemon
}

# The release target against a local registry: `make release` creates and pushes
# $(VERSION) and latest (one bundle: same digest) and removes them locally; then
# `docker plugin install` from the registry and a container on a network of it.
scenario_registry_release_install() {
  local name=e2e$E/ipvlan-rs ref d1 d2 p n=10.$E.21 id
  ref=$REG/$name
  # BUNDLE of its own: target/bundle stays as it is (someone may be using it)
  x make -C "$ROOT" --no-print-directory release REGISTRY="$REG" PLUGIN_NAME="$name" DOCKER=docker \
    BUNDLE="$SDIR/bundle"
  d1=$(manifest_digest "$name" "$VERSION")
  d2=$(manifest_digest "$name" latest)
  matches "$d1" '^sha256:[0-9a-f]{64}$' "registry digest of $name:$VERSION"
  eq "$d2" "$d1" "registry digest of $name:latest"
  eq "$(docker plugin ls --format '{{.Name}}' | paste -sd' ')" "$P" "plugins in the engine after make release"
  x docker plugin install --grant-all-permissions "$ref:$VERSION"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$ref:$VERSION")" true "installed plugin enabled"
  id=$(docker plugin inspect -f '{{.Id}}' "$ref:$VERSION")
  echo "$id" >>"$E2E_WORK/plugin-ids"
  installed_plugin_serves "$ref:$VERSION" "$n"
}

# installed_plugin_serves PLUGIN N: a macvlan network of PLUGIN (driver and
# IPAM driver, on a parent of its own, subnet N.0/24) gives two containers the
# first addresses and the gateway, and they ping each other; then containers,
# network and the plugin (disabled, removed) go, leaving no link.
installed_plugin_serves() {
  local plugin=$1 n=$2 p
  p=$(new_parent)
  x docker network create -d "$plugin" --ipam-driver "$plugin" \
    --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan rg >/dev/null
  eq "$(docker network inspect -f '{{.Driver}} {{.IPAM.Driver}}' rg)" "$plugin $plugin" "drivers of the network"
  ctr c1 --network rg
  ctr c2 --network rg
  eq "$(addr4 c1)" "$n.2/24" "c1 address (plugin $plugin)"
  eq "$(gw4 c1)" "$n.1" "c1 default gateway"
  pings c1 c2
  pings c2 "$n.2"
  x docker rm -f c1 c2 >/dev/null
  x docker network rm rg >/dev/null
  no_links_on "$p"
  x docker plugin disable "$plugin"
  x docker plugin rm "$plugin"
}

# `make push REGISTRY=...` alone, as a release job on a clean tree runs it: no
# plugin of that name in the engine and no bundle beforehand; it builds,
# bundles, creates and pushes. A second `make push` re-creates the plugin that
# is there now (never enabled: no state to carry) and pushes it. Then the
# README's install on a node: `docker plugin install --alias`, one short name
# for the networks.
scenario_push_alone_install_alias() {
  local name=e2e$E/pushed ref alias=e2e$E/alias:latest d1 d2 n=10.$E.41 id
  ref=$REG/$name:latest
  ! docker plugin inspect "$ref" >/dev/null 2>&1 || fail "$ref exists before make push"
  [[ -z $(manifest_digest "$name" latest) ]] || fail "$name:latest is in the registry before make push"
  x make -C "$ROOT" --no-print-directory push REGISTRY="$REG" PLUGIN_NAME="$name" DOCKER=docker \
    BUNDLE="$SDIR/bundle"
  d1=$(manifest_digest "$name" latest)
  matches "$d1" '^sha256:[0-9a-f]{64}$' "registry digest of $name:latest after make push"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$ref")" false "$ref in the engine after make push"
  id=$(docker plugin inspect -f '{{.Id}}' "$ref")
  x make -C "$ROOT" --no-print-directory push REGISTRY="$REG" PLUGIN_NAME="$name" DOCKER=docker \
    BUNDLE="$SDIR/bundle"
  [[ $(docker plugin inspect -f '{{.Id}}' "$ref") != "$id" ]] || fail "the second make push did not re-create $ref"
  # the bundle is laid out anew, so the rootfs layer (file times) and the digest change
  d2=$(manifest_digest "$name" latest)
  matches "$d2" '^sha256:[0-9a-f]{64}$' "registry digest of $name:latest after a second make push (was $d1)"
  x docker plugin rm "$ref"
  x docker plugin install --grant-all-permissions --alias "$alias" "$ref"
  id=$(docker plugin inspect -f '{{.Id}}' "$alias")
  echo "$id" >>"$E2E_WORK/plugin-ids"
  eq "$(docker plugin inspect -f '{{.Name}} {{.PluginReference}} {{.Enabled}}' "$alias")" "$alias $ref true" \
    "plugin installed with --alias (name, reference, enabled)"
  eq "$(docker plugin ls --format '{{.Name}}' | grep -cxF "$alias")" 1 "docker plugin ls lists the alias"
  installed_plugin_serves "$alias" "$n"
}

# `make release ARCH=arm64`: :VERSION-arm64 and :latest-arm64 (one digest) next
# to the amd64 tags, which it leaves alone. A plugin manifest names no
# platform, so this amd64 engine installs it (under --alias, as a mixed Swarm
# cluster's arm64 nodes do): its rootfs holds the static aarch64 binary that
# `make build ARCH=arm64` made, its config is the amd64 plugin's; enabling it
# here fails with "exec format error" (unless the host runs aarch64 binaries
# through binfmt_misc). That the binary works on arm64 is make test-vm-arm64's part.
scenario_release_arm64_install() {
  local name=e2e$E/ipvlan-rs alias=e2e$E/arm:latest ref d1 d2 d64 id bin mark
  ref=$REG/$name:latest-arm64
  x make -C "$ROOT" --no-print-directory release ARCH=arm64 REGISTRY="$REG" PLUGIN_NAME="$name" \
    DOCKER=docker BUNDLE="$SDIR/bundle"
  d1=$(manifest_digest "$name" "$VERSION-arm64")
  d2=$(manifest_digest "$name" latest-arm64)
  matches "$d1" '^sha256:[0-9a-f]{64}$' "registry digest of $name:$VERSION-arm64"
  eq "$d2" "$d1" "registry digest of $name:latest-arm64"
  d64=$(manifest_digest "$name" latest)
  if [[ -n $d64 ]]; then
    [[ $d64 != "$d1" ]] || fail "$name:latest (amd64) has the arm64 digest"
    echo "ok: $name:latest is still the amd64 plugin ($d64)"
  fi
  eq "$(docker plugin ls --format '{{.Name}}' | paste -sd' ')" "$P" "plugins in the engine after make release ARCH=arm64"
  x docker plugin install --grant-all-permissions --disable --alias "$alias" "$ref"
  id=$(docker plugin inspect -f '{{.Id}}' "$alias")
  echo "$id" >>"$E2E_WORK/plugin-ids"
  eq "$(docker plugin inspect -f '{{.PluginReference}}' "$alias")" "$ref" "reference of the arm64 plugin"
  eq "$(docker plugin inspect -f '{{json .Config.Interface}} {{json .Config.Linux.Capabilities}}' "$alias")" \
    "$(docker plugin inspect -f '{{json .Config.Interface}} {{json .Config.Linux.Capabilities}}' "$P")" \
    "config of the arm64 plugin (interface, capabilities) against the amd64 one"
  bin=$DATA/plugins/$id/rootfs/ipvlan-rs
  matches "$(file -b "$bin")" 'ARM aarch64.*statically linked' "the arm64 plugin's binary"
  eq "$(sha256sum <"$bin")" "$(sha256sum <"$ROOT/target/aarch64-unknown-linux-musl/release/ipvlan-rs")" \
    "the arm64 plugin's binary against make build ARCH=arm64's"
  if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    note "this host runs aarch64 binaries through binfmt_misc: enable not tried"
  else
    # the engine reports that the plugin's socket never came; the plugin's
    # own output (in the engine's log) says why
    mark=$(log_mark)
    fails_with "$id/ipvlan-rs.sock" docker plugin enable "$alias"
    tail -n +"$((mark + 1))" "$DLOG" | grep "plugin=$id" | grep -q 'exec format error' ||
      fail "no 'exec format error' of plugin $id in $DLOG"
    echo "ok: the engine's log has the plugin's 'exec /ipvlan-rs: exec format error'"
  fi
  x docker plugin rm -f "$alias"
}

# docker plugin upgrade to a tag with a different rootfs (a marker file), with a
# network and containers: state kept (propagatedMount), old network works, new
# containers get non-duplicate addresses, old ones stop cleanly.
scenario_plugin_upgrade() {
  local p n=10.$E.22 new=$REG/e2e$E/ipvlan-rs:upgrade id id2 mark before after refbefore
  p=$(new_parent)
  mknet up --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr u1 --network up
  ctr u2 --network up
  ctr u3 --network up --ip "$n.50"
  before=$(net_addrs up)
  # the new version: this bundle with a marker file, pushed to the registry
  rm -rf "$SDIR/bundle"
  cp -a "$BASE_BUNDLE" "$SDIR/bundle"
  echo "upgrade-$E" >"$SDIR/bundle/rootfs/e2e-marker"
  x docker plugin create "$new" "$SDIR/bundle"
  x docker plugin push "$new"
  x docker plugin rm "$new"
  id=$(docker plugin inspect -f '{{.Id}}' "$P")
  refbefore=$(docker plugin inspect -f '{{.PluginReference}}' "$P")
  eq "$(cat "$DATA/plugins/$id/rootfs/e2e-marker")" "e2e base bundle" "marker before the upgrade"
  mark=$(log_mark)
  x docker plugin disable -f "$P"
  x docker plugin upgrade --grant-all-permissions --skip-remote-check "$P" "$new"
  x docker plugin enable "$P"
  id2=$(docker plugin inspect -f '{{.Id}}' "$P")
  eq "$id2" "$id" "plugin ID after the upgrade"
  eq "$(docker plugin inspect -f '{{.PluginReference}}' "$P")" "$new" "plugin reference after the upgrade (was $refbefore)"
  eq "$(cat "$DATA/plugins/$id/rootfs/e2e-marker")" "upgrade-$E" "marker after the upgrade"
  eq "$(docker plugin inspect -f '{{.Enabled}}' "$P")" true "plugin enabled after the upgrade"
  pings u1 u2
  pings u2 u3
  ctr v1 --network up
  ctr v2 --network up
  after=$(addr4 v1 | cut -d/ -f1; addr4 v2 | cut -d/ -f1)
  none_of "$after" "$before" "addresses of containers made after the upgrade"
  unique "$(net_addrs up)" "addresses on up"
  pings v1 u1
  pings u3 v2
  stop_by_sigterm u1 u2 u3
  x docker rm u1 u2 u3 >/dev/null
  x docker rm -f v1 v2 >/dev/null
  x docker network rm up >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# Overlapping subnets on two networks (allowed by the plugin): one address space, so
# no address is handed out twice across them.
scenario_overlapping_subnets() {
  local pa pb n=10.$E.23 all
  pa=$(new_parent a)
  pb=$(new_parent b)
  mknet o1 --subnet "$n.0/24" --gateway "$n.1" -o parent="$pa" -o kind=macvlan
  mknet o2 --subnet "$n.0/24" --gateway "$n.254" -o parent="$pb" -o kind=macvlan
  ctr c1 --network o1
  ctr c2 --network o2
  ctr c3 --network o1
  ctr c4 --network o2
  fails_with "$n\.1 is already in use" docker run --rm --network o2 --ip "$n.1" "$BB" true
  all=$(net_addrs o1; net_addrs o2)
  unique "$all" "addresses on o1 and o2"
  none_of "$all" "$n.1
$n.254" "container addresses vs the gateways"
  eq "$(gw4 c1)" "$n.1" "c1 default gateway"
  eq "$(gw4 c2)" "$n.254" "c2 default gateway"
  pings c1 c3
  pings c2 c4
}

# The plugin process is killed (SIGKILL) with containers running: the engine starts
# it again; its state is read back (no duplicate addresses), the old containers work
# and stop cleanly, the network can be removed.
scenario_plugin_kill9() {
  local p n=10.$E.24 mark before after
  p=$(new_parent)
  mknet k9 --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr a1 --network k9
  ctr a2 --network k9
  before=$(net_addrs k9)
  mark=$(log_mark)
  kill9_plugin
  pings a1 a2
  ctr b1 --network k9
  ctr b2 --network k9
  after=$(addr4 b1 | cut -d/ -f1; addr4 b2 | cut -d/ -f1)
  none_of "$after" "$before" "addresses of containers made after the kill"
  unique "$(net_addrs k9)" "addresses on k9"
  pings b1 a1
  stop_by_sigterm a1 a2
  x docker rm a1 a2 b1 b2 -f >/dev/null
  x docker network rm k9 >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# --ipam-opt com.docker.network.ipam.serial=false: lowest-free allocation, a freed
# address is handed out again at once; a full --ip-range gives a clear error. The
# container links take the parent's MTU when no MTU option is given.
scenario_ipam_lowest_free() {
  local p n=10.$E.25 i
  p=$(new_parent)
  x ip link set "$p" mtu 1450
  mknet lf --subnet "$n.0/24" --gateway "$n.1" --ip-range "$n.4/30" \
    --ipam-opt com.docker.network.ipam.serial=false -o parent="$p" -o kind=macvlan
  for i in 1 2 3 4; do ctr "l$i" --network lf; done
  eq "$(net_addrs lf | paste -sd' ')" "$n.4 $n.5 $n.6 $n.7" "addresses of l1..l4 (the whole range)"
  fails_with "no available addresses in $n\.4/30" docker run --rm --network lf "$BB" true
  x docker rm -f l2 >/dev/null
  ctr l5 --network lf
  eq "$(addr4 l5)" "$n.5/24" "l5: the address l2 freed (lowest free)"
  eq "$(ex l5 cat /sys/class/net/eth0/mtu)" 1450 "l5 eth0 MTU (the parent's)"
  unique "$(net_addrs lf)" "addresses on lf"
  pings l5 l1
}

# A second instance of the plugin in the same network namespace (the plugin of
# another engine on this host, or the plugin's own test binary run on this host)
# must leave this instance's host-side links alone. The link at stake is one this
# instance keeps in the host namespace on purpose and until it is used: the link
# of a removed container of a churning network, kept for reuse (LINK_REUSE_MS
# far longer than any run). The second instance, this bundle's binary with a
# socket and state dir of its own, starts while that link waits and is stopped
# once its socket is up (it binds it after its start-up reconcile); the next
# container must get the kept link. Every step waits for an event: nothing
# depends on the machine's speed. (The first version caught the original bug
# with a link in flight between Join and the move into the container, found by
# polling every 2 ms with dockerd then frozen: a window a fast or a loaded
# machine could miss.)
scenario_second_instance() {
  local p n=10.$E.26 bin=$BASE_BUNDLE/rootfs/ipvlan-rs kept index bp
  plugin_settings LINK_REUSE_MS=600000
  p=$(new_parent)
  mknet si --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr c0 --network si
  ctr c1 --network si
  x docker rm -f c1 >/dev/null
  kept=$(ivr_links)
  [[ -n $kept && $kept != *$'\n'* ]] || fail "want one link kept for reuse after rm -f c1, got '$kept'"
  index=$(cat "/sys/class/net/$kept/ifindex")
  echo "ok: $kept (ifindex $index) kept for reuse"
  echo "+ $bin --socket $SDIR/b.sock --state-dir $SDIR/b (second instance, until its socket is up)"
  "$bin" --socket "$SDIR/b.sock" --state-dir "$SDIR/b" --log-level info >"$SDIR/b.log" 2>&1 8<&- &
  bp=$!
  wait_for 60 test -S "$SDIR/b.sock" || { kill "$bp"; fail "waited 60 s for the second instance's socket $SDIR/b.sock"; }
  kill -TERM "$bp"
  wait "$bp" || true
  note "the second instance logged:"
  sed -E 's/\x1b\[[0-9;]*m//g; s/^/  | /' "$SDIR/b.log"
  link_exists "$kept" || fail "the second instance's start-up reconcile deleted $kept, a link of this instance (it must reconcile only its own link group)"
  eq "$(cat "/sys/class/net/$kept/ifindex")" "$index" "ifindex of $kept after the second instance ran"
  ctr c2 --network si
  eq "$(ex c2 cat /sys/class/net/eth0/ifindex)" "$index" "ifindex of c2's eth0 (the kept link)"
  eq "$(addr4 c0)" "$n.2/24" "c0 (link inside its container) keeps its address"
  pings c2 c0
  x docker rm -f c0 c2 >/dev/null
  x docker network rm si >/dev/null
  no_links_on "$p"
}

# Link reuse under churn (LINK_REUSE_MS, here far longer than any run, so that
# no machine's speed decides whether the link is kept):
# the link of a removed container is kept and given to the next container of
# the network, through the engine's real moves between namespaces: r3's eth0 is
# r1's former link (same ifindex) with a new MAC, and traffic crosses it. With
# the network, the spare goes; the harness puts the default back.
scenario_link_reuse() {
  local p n=10.$E.27 mark ma ia mc ic kept
  plugin_settings LINK_REUSE_MS=600000
  p=$(new_parent)
  mark=$(log_mark)
  mknet ru --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  ctr r1 --network ru
  ctr r2 --network ru
  ma=$(ex r1 cat /sys/class/net/eth0/address)
  ia=$(ex r1 cat /sys/class/net/eth0/ifindex)
  x docker rm -f r1 >/dev/null
  kept=$(ivr_links)
  [[ -n $kept ]] || fail "no link kept for reuse after rm -f r1 on a churning network"
  echo "ok: $kept kept for reuse"
  ctr r3 --network ru
  mc=$(ex r3 cat /sys/class/net/eth0/address)
  ic=$(ex r3 cat /sys/class/net/eth0/ifindex)
  [[ -z $(ivr_links) ]] || fail "the kept link was not given to r3: $(ivr_links)"
  eq "$ic" "$ia" "ifindex of r3's eth0 (r1's former link)"
  [[ $mc != "$ma" ]] || fail "the reused link kept r1's MAC $ma"
  echo "ok: r3 got r1's link with MAC $mc (r1 had $ma)"
  matches "$(tail -n +"$((mark + 1))" "$DLOG")" "joined with a reused link" "plugin log"
  pings r3 r2
  pings r2 r3
  x docker rm -f r2 r3 >/dev/null
  x docker network rm ru >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# -o host_link=on (issue #20): the host reaches the network's containers through
# a link of its own on the parent (ivh + the network ID's prefix, address from
# the plugin's IPAM as a /32, a route per container), ping and TCP; containers
# reach the host at the link's address; a LAN peer finds the host's own address
# at the parent's MAC only (the host link answers ARP for its own address alone);
# a network without host_link stays out of the host's reach; after kill -9 of the plugin, and after disable -f and
# enable, the host still reaches them;
# network rm leaves no ivh link, route or address behind.
scenario_host_link() {
  local p q n=10.$E.44 m=10.$E.45 id hl c mark lan
  p=$(new_parent a)
  q=$(new_parent b)
  mknet hl --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan -o host_link=on
  mknet nohl --subnet "$m.0/24" --gateway "$m.1" -o parent="$q" -o kind=macvlan
  id=$(docker network inspect -f '{{.Id}}' hl)
  hl=ivh${id:0:12}
  link_exists "$hl" || fail "no host link $hl for network hl ($id)"
  x ip -d link show "$hl"
  matches "$(ip -d link show "$hl")" "@$p: .* macvlan mode bridge" "host link $hl"
  eq "$(ip -4 -o addr show dev "$hl" | awk '{print $4}')" "$n.2/32" "host link address (the pool's first free, as a /32)"
  ctr c1 --network hl
  ctr c2 --network hl
  ctr d1 --network nohl
  eq "$(addr4 c1)" "$n.3/24" "c1 address (the host link holds $n.2)"
  eq "$(addr4 c2)" "$n.4/24" "c2 address"
  x ip -4 route show dev "$hl"
  eq "$(ip -4 route show dev "$hl" | awk '{print $1}' | sort | paste -sd' ')" "$n.3 $n.4" "routes through $hl"
  for c in c1 c2; do
    x docker exec -d "$c" sh -c "hostname >index.html && httpd -f -p 80"
  done
  for c in c1 c2; do
    wait_for 60 listens "$c" 80 || fail "waited 60 s for httpd in $c to listen on port 80"
  done
  host_pings "$n.3"
  host_pings "$n.4"
  eq "$(busybox wget -qO- "http://$n.3/")" "$(ex c1 hostname)" "page the host got from c1 over TCP"
  eq "$(busybox wget -qO- "http://$n.4/")" "$(ex c2 hostname)" "page the host got from c2 over TCP"
  pings c1 "$n.2"
  pings c2 "$n.2"
  # the host link answers ARP only for its own address and has no IPv6 (set over
  # netlink: the managed plugin's /proc/sys is read-only): a LAN peer beyond the
  # parent finds the host's own address ($n.10 on the parent) at the parent's
  # MAC alone
  eq "$(cat "/proc/sys/net/ipv4/conf/$hl/arp_ignore")" 1 "arp_ignore of $hl"
  eq "$(ip -6 -o addr show dev "$hl")" "" "IPv6 addresses of $hl"
  lan=$(lan_peer "irselan$E-$SIDX" "$p" "$n.250/24")
  x ip addr add "$n.10/24" dev "$p"
  eq "$(arp_macs "$lan" "${p}p" "$n.10")" "$(cat "/sys/class/net/$p/address")" "MACs answering ARP for the host's $n.10"
  x ip addr del "$n.10/24" dev "$p"
  # without host_link the host's parent filters traffic to its slaves, as before:
  # with an address of the subnet on the parent the host has a route to d1, and
  # still no reply comes
  x ip addr add "$m.10/24" dev "$q"
  host_no_ping "$(addr4 d1 | cut -d/ -f1)"
  x ip addr del "$m.10/24" dev "$q"

  # the plugin killed: the engine starts it again, its reconcile keeps the link
  mark=$(log_mark)
  kill9_plugin
  host_pings "$n.3"
  host_pings "$n.4"
  eq "$(busybox wget -qO- "http://$n.3/")" "$(ex c1 hostname)" "page from c1 after the kill"
  ctr c3 --network hl
  host_pings "$(addr4 c3 | cut -d/ -f1)"
  # disable -f and enable: the plugin stopped (SIGTERM) and started again
  x docker plugin disable -f "$P"
  x docker plugin enable "$P"
  host_pings "$n.4"
  pings c3 "$n.2"

  x docker rm -f c1 c2 c3 d1 >/dev/null
  x docker network rm hl nohl >/dev/null
  ! link_exists "$hl" || fail "host link $hl left after network rm"
  eq "$(ip -4 route show | grep -F "$n." || true)" "" "routes to $n.0/24 left"
  eq "$(ip -4 -o addr show | grep -F "$n." || true)" "" "addresses in $n.0/24 left"
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# metric NAME TEXT: the value of the sample NAME (with its labels) in /metrics TEXT, 0 if none
metric() { awk -v k="$1" '$1 == k {v = $2} END {print v + 0}' <<<"$2"; }

# The operator's view on a real engine (README, "Operating it"): `ipvlan-rs status`
# run from the plugin's rootfs on the host shows the network, the joined container's
# endpoint (its link in the container, which is not drift) and its pool; GET /metrics
# counts the Join; a stray link of the plugin's group shows as drift.
scenario_operator_status() {
  local p n=10.$E.41 id sock bin net ep out before after group k
  p=$(new_parent)
  id=$(docker plugin inspect -f '{{.Id}}' "$P")
  sock=/run/docker/plugins/$id/ipvlan-rs.sock
  mknet op --subnet "$n.0/24" --gateway "$n.1" -o parent="$p" -o kind=macvlan
  before=$(curl -sS --max-time "$E2E_CMD_TIMEOUT" --unix-socket "$sock" http://plugin/metrics)
  ctr o1 --network op
  bin=$DATA/plugins/$id/rootfs/ipvlan-rs
  net=$(docker network inspect -f '{{.Id}}' op)
  ep=$(docker inspect -f '{{(index .NetworkSettings.Networks "op").EndpointID}}' o1)
  echo "+ $bin status --socket $sock"
  out=$("$bin" status --socket "$sock") || fail "ipvlan-rs status failed"
  printf '  | %s\n' "$out"
  matches "$out" "${net:0:12} +macvlan +bridge +$p +up " "the network's line"
  matches "$out" "${ep:0:12} +${net:0:12} +ivr[0-9a-f]+ +$n\.2/24 +- +- +yes +-" "o1's endpoint: joined, link in the container"
  matches "$out" "local/$n\.0/24 +local +$n\.0/24 +- +1 +2 +252" "the pool: gateway and o1 allocated"
  matches "$out" "none: the kernel matches the records" "drift"
  echo "+ curl --unix-socket $sock http://plugin/metrics"
  after=$(curl -sS --max-time "$E2E_CMD_TIMEOUT" --unix-socket "$sock" http://plugin/metrics)
  for k in 'ipvlan_rs_calls_total{call="NetworkDriver.Join",outcome="ok"}' ipvlan_rs_container_links_created_total; do
    eq "$(($(metric "$k" "$after") - $(metric "$k" "$before")))" 1 "$k moved by o1's start"
  done
  # a link of the plugin's group that belongs to nothing
  group=$(sed -n 's/.*, link group \([0-9]*\)$/\1/p' <<<"$out")
  x ip link add ivr0000deadbeef link "$p" group "$group" type macvlan mode bridge
  out=$("$bin" status --socket "$sock") || fail "ipvlan-rs status failed"
  matches "$out" "orphan container link ivr0000deadbeef" "drift after a stray link"
  x ip link del ivr0000deadbeef
  x docker rm -f o1 >/dev/null
  x docker network rm op >/dev/null
  no_links_on "$p"
}
# --- addresses from the LAN's DHCP server (-o dhcp=on) ----------------------------------
#
# The LAN is the far end of the scenario's veth parent: its peer in a namespace of
# its own where Debian's dnsmasq serves $n.100-$n.150/24 (router $n.254) with
# leases of 2 minutes (dnsmasq's minimum) and T1 of $T1 seconds (3 unless set:
# renewals within a scenario). The network: --ipam-driver null -o dhcp=on,
# kind=macvlan.

# lan_peer NS PARENT ADDR/LEN: the far end of veth PARENT moved to namespace NS
# (the LAN), up, with ADDR/LEN; prints NS (del_dhcp_servers removes it after the
# scenario)
lan_peer() {
  local ns=$1 p=$2
  ip netns del "$ns" 2>/dev/null || true
  echo "$ns" >>"$SDIR/dhcp-servers"
  ip netns add "$ns"
  ip link set "${p}p" netns "$ns"
  ip -n "$ns" link set "${p}p" up
  ip -n "$ns" addr add "$3" dev "${p}p"
  echo "$ns"
}
# arp_macs NS IFACE ADDR: the MACs that answer ARP for ADDR on IFACE in NS (three
# broadcast requests, busybox arping), sorted, space-separated
arp_macs() {
  echo "+ arping -b -c3 -I $2 $3 (in $1)" >&2
  { ip netns exec "$1" busybox arping -b -c 3 -w 4 -I "$2" "$3" || true; } |
    grep -o '\[[0-9a-f:]*\]' | tr -d '[]' | sort -u | paste -sd' '
}

# dhcp_server PARENT N [dnsmasq options...]: serve DHCP for 10.$E.N.0/24 beyond
# PARENT; prints the namespace (del_dhcp_servers removes it after the scenario)
dhcp_server() {
  local p=$1 n=10.$E.$2 ns
  shift 2
  ns=$(lan_peer "irsedhcp$E-$SIDX" "$p" "$n.1/24")
  command -v dnsmasq >/dev/null || fail "no dnsmasq (apt-get install dnsmasq-base)"
  dhcp_resume "$ns" "${p}p" "$n" "$@"
  echo "$ns"
}
# dhcp_resume NS IFACE PREFIX [options]: (re)start dnsmasq in NS, its lease file kept
dhcp_resume() {
  local ns=$1 ifc=$2 n=$3
  shift 3
  echo "$ifc $n $*" >"$SDIR/$ns.args"
  rm -f "$SDIR/$ns.pid"
  ip netns exec "$ns" dnsmasq --conf-file=/dev/null --port=0 --user=root --bind-interfaces \
    --interface="$ifc" --dhcp-range="$n.100,$n.150,255.255.255.0,2m" \
    --dhcp-option=3,"$n.254" --dhcp-option=option:T1,"${T1:-3}" --dhcp-option=option:T2,110 \
    --dhcp-authoritative --no-ping --log-dhcp --log-facility="$SDIR/$ns.log" \
    --dhcp-leasefile="$SDIR/$ns.leases" --pid-file="$SDIR/$ns.pid" "$@" >&2
  wait_for 60 test -s "$SDIR/$ns.pid" || fail "dnsmasq in $ns did not start: $(cat "$SDIR/$ns.log" 2>/dev/null)"
}
# dhcp_stop NS: the LAN's server goes silent
dhcp_stop() {
  kill "$(cat "$SDIR/$1.pid")"
  wait_for 60 gone "$(cat "$SDIR/$1.pid")" || fail "dnsmasq in $1 did not stop"
}
# dhcp_leases NS: the server's lease file, "ADDRESS MAC CLIENT-ID" a line. dnsmasq
# rewrites the file in place: a read may find it empty for a moment, so the checks
# below are predicates for wait_for.
dhcp_leases() { awk '{print $3, $2, $5}' "$SDIR/$1.leases" 2>/dev/null | sort; }
# leased NS ADDRESS [MAC]: the server holds a lease of ADDRESS (for MAC), with a client-id
leased() { dhcp_leases "$1" | grep -q "^$2 ${3:-[^ ]*} 00:"; }
not_leased() { ! leased "$@"; }
# n_leases NS N: the server holds N leases
n_leases() { [[ $(dhcp_leases "$1" | wc -l) == "$2" ]]; }
# n_client_ids NS N: under N distinct client-ids
n_client_ids() { [[ $(dhcp_leases "$1" | awk '{print $3}' | sort -u | wc -l) == "$2" ]]; }
# rm_releases NS C: docker rm -f C gives C's lease back to the server in NS
rm_releases() {
  local a
  a=$(addr4 "$2")
  a=${a%/*}
  x docker rm -f "$2" >/dev/null
  wait_for 60 not_leased "$1" "$a" || fail "the server still holds $a 60 s after docker rm $2"
  echo "ok: docker rm $2 released $a"
}
# mkdhcpnet NAME PARENT: a dhcp=on network of the documented form
mkdhcpnet() {
  x docker network create -d "$P" --ipam-driver null -o parent="$2" -o kind=macvlan -o dhcp=on "$1" >/dev/null
}
# in_lease_range ADDRESS/LEN N: ADDRESS is one of 10.$E.N.100-150, /24
in_lease_range() {
  local a=${1%/*} len=${1#*/} last
  last=${a##*.}
  if ! [[ $len == 24 && ${a%.*} == "10.$E.$2" ]] || ((last < 100 || last > 150)); then
    fail "address $1 is not in the server's range 10.$E.$2.100-150/24"
  fi
  echo "ok: $1 is in the server's range"
}
# extended_since MARK COUNT: COUNT lease renewals logged since MARK
extended_since() { (($(tail -n +"$(($1 + 1))" "$DLOG" | grep -c 'DHCP lease extended') >= $2)); }

# Containers get their addresses from the LAN's server: in its range, its router as
# the default route, the MAC the server saw; distinct client-ids in its lease file;
# leases renewed; docker rm gives the lease back. (Renewals for longer than two
# lease times, and across plugin and daemon restarts: dhcp_lease_lifetime.)
scenario_dhcp_leases() {
  local p ns N=40 n=10.$E.40 a1 a2 m1 mark
  p=$(new_parent)
  ns=$(dhcp_server "$p" "$N")
  # with a subnet (an IPAM that assigns addresses) the plugin refuses, saying the form
  fails_with "with --ipam-driver null and without --subnet" mknet dlsub --subnet "$n.0/24" \
    -o parent="$p" -o kind=macvlan -o dhcp=on
  mark=$(log_mark)
  mkdhcpnet dl "$p"
  ctr d1 --network dl
  ctr d2 --network dl
  a1=$(addr4 d1) a2=$(addr4 d2)
  in_lease_range "$a1" "$N"
  in_lease_range "$a2" "$N"
  [[ $a1 != "$a2" ]] || fail "d1 and d2 both have $a1"
  eq "$(gw4 d1)" "$n.254" "d1's default gateway (the server's router option)"
  eq "$(net_addr d1 dl)" "${a1%/*}" "d1's address as docker inspect shows it"
  m1=$(ex d1 cat /sys/class/net/eth0/address)
  wait_for 60 leased "$ns" "${a1%/*}" "$m1" || fail "no lease of ${a1%/*} for d1's MAC $m1 with a client-id: $(dhcp_leases "$ns")"
  wait_for 60 leased "$ns" "${a2%/*}" || fail "no lease of ${a2%/*}: $(dhcp_leases "$ns")"
  wait_for 60 n_client_ids "$ns" 2 || fail "not two distinct client-ids: $(dhcp_leases "$ns")"
  printf '  | %s\n' "$(dhcp_leases "$ns")"
  echo "ok: the server holds d1's lease for its MAC $m1 and d2's, under two client-ids"
  wait_for 60 extended_since "$mark" 4 || fail "waited 60 s for four lease renewals (T1 is 3 s)"
  echo "ok: leases renewed"
  rm_releases "$ns" d1
  wait_for 60 leased "$ns" "${a2%/*}" || fail "d2's lease went with d1's"
  rm_releases "$ns" d2
  x docker network rm dl >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# lease_expiry NS ADDRESS: the expiry (epoch seconds) of ADDRESS's lease in the
# server's file
lease_expiry() { awk -v a="$2" '$3 == a {print $1}' "$SDIR/$1.leases" 2>/dev/null; }
# expires_after NS ADDRESS T: ADDRESS's lease in the server's file expires after T
expires_after() {
  local x
  x=$(lease_expiry "$1" "$2")
  [[ -n $x ]] && ((x > $3))
}
# past MS: the clock (now_ms) has reached MS
past() { (($(now_ms) >= $1)); }
# one_lease_of NS ADDRESS WHEN: the server holds one lease, of ADDRESS
one_lease_of() {
  wait_for 60 n_leases "$1" 1 || fail "$3: the server holds other than one lease (a second one?): $(dhcp_leases "$1")"
  wait_for 60 leased "$1" "$2" || fail "$3: the server no longer holds $2: $(dhcp_leases "$1")"
  echo "ok: $3: the server holds one lease, $2"
}

# A lease lives longer than two lease times (dnsmasq's minimum, 2 minutes; T1 30 s)
# and through what restarts the plugin or the engine: docker plugin disable -f +
# enable (the engine leaves the containers running; the plugin reloads the lease
# from its store) and a dockerd restart with --live-restore. Throughout, the
# container keeps its address, the plugin logs renewals in every minute, the
# server's file holds one lease whose expiry moves on. One engine (28): the code
# path is the engine's the same, and the wait is the lease's (about 4 minutes).
skip_dhcp_lease_lifetime() {
  ((E == 28)) && return 1
  echo "runs on engine 28 only (a 4-minute wait; the same code path on every engine)"
}
scenario_dhcp_lease_lifetime() {
  local p ns N=44 a ip t0 exp0 start mark until minute
  live_restore_daemon
  start=$(log_mark)
  p=$(new_parent)
  ns=$(T1=30 dhcp_server "$p" "$N")
  mkdhcpnet dw "$p"
  ctr w1 --network dw
  t0=$(now_ms)
  a=$(addr4 w1)
  ip=${a%/*}
  in_lease_range "$a" "$N"
  one_lease_of "$ns" "$ip" "at the start"
  exp0=$(lease_expiry "$ns" "$ip")

  # docker plugin disable -f + enable
  mark=$(log_mark)
  x docker plugin disable -f "$P"
  eq "$(state w1)" running "w1 after docker plugin disable -f"
  x docker plugin enable "$P"
  wait_for 90 extended_since "$mark" 1 || fail "waited 90 s for the re-enabled plugin to renew the lease (T1 30 s)"
  echo "ok: the re-enabled plugin renews the lease"
  eq "$(addr4 w1)" "$a" "w1's address after disable -f + enable"
  one_lease_of "$ns" "$ip" "after disable -f + enable"
  no_plugin_errors "$mark"

  # dockerd alone goes down and comes back (--live-restore): the plugin and w1 run on
  mark=$(log_mark)
  restart_dockerd_only w1
  wait_for 90 extended_since "$mark" 1 || fail "waited 90 s for a lease renewal after the dockerd restart (T1 30 s)"
  echo "ok: renewals go on after the dockerd restart"
  eq "$(addr4 w1)" "$a" "w1's address after the dockerd restart"
  one_lease_of "$ns" "$ip" "after the dockerd restart"

  # on, minute by minute, to more than two lease times (240 s) since the lease was
  # taken, a renewal logged in every minute
  until=$((t0 + 250000))
  while ! past "$until"; do
    mark=$(log_mark)
    minute=$(($(now_ms) + 60000))
    wait_for 70 past "$minute" || true
    extended_since "$mark" 1 || fail "no lease renewal logged in the last minute (T1 30 s)"
  done
  note "$((($(now_ms) - t0) / 1000)) s since w1's lease was taken (two leases: 240 s)"
  eq "$(state w1)" running "w1 after two lease times"
  eq "$(addr4 w1)" "$a" "w1's address after two lease times"
  eq "$(net_addr w1 dw)" "$ip" "w1's address as docker inspect shows it after two lease times"
  one_lease_of "$ns" "$ip" "after two lease times"
  expires_after "$ns" "$ip" "$exp0" || fail "the lease of $ip expires at $(lease_expiry "$ns" "$ip"), not after its first expiry $exp0: not renewed"
  echo "ok: the lease's expiry moved from $exp0 to $(lease_expiry "$ns" "$ip")"
  no_plugin_errors "$start"
  rm_releases "$ns" w1
  x docker network rm dw >/dev/null
  no_links_on "$p"
  plain_daemon
}

# kill -9 of the plugin mid-lease: the engine restarts it, it reloads the leases
# and goes on renewing them; the container keeps its address and no second lease
# is taken.
scenario_dhcp_plugin_kill9() {
  local p ns N=41 a mark
  p=$(new_parent)
  ns=$(dhcp_server "$p" "$N")
  mkdhcpnet dk "$p"
  ctr k1 --network dk
  a=$(addr4 k1)
  in_lease_range "$a" "$N"
  mark=$(log_mark)
  kill9_plugin
  wait_for 60 extended_since "$mark" 2 || fail "waited 60 s for the restarted plugin to renew the lease"
  echo "ok: the restarted plugin renews the lease"
  eq "$(addr4 k1)" "$a" "k1's address after the kill"
  wait_for 60 n_leases "$ns" 1 || fail "the server holds other than one lease (a second one?): $(dhcp_leases "$ns")"
  wait_for 60 leased "$ns" "${a%/*}" || fail "the server no longer holds ${a%/*}"
  echo "ok: the server holds one lease, ${a%/*}"
  rm_releases "$ns" k1
  x docker network rm dk >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}

# The LAN's server is silent: docker run fails with an error naming the parent
# within the bound (DHCP_TIMEOUT_MS, 5 s by default; the guard here is the
# command timeout), and nothing is left allocated.
scenario_dhcp_silent_server() {
  local p ns N=42 t0
  p=$(new_parent)
  ns=$(T1=100 dhcp_server "$p" "$N")
  mkdhcpnet ds "$p"
  dhcp_stop "$ns"
  t0=$(now_ms)
  fails_with "no DHCP server answered on $p" docker run -d --init --name s1 --network ds "$BB" sleep 3600
  note "docker run failed after $(($(now_ms) - t0)) ms (DHCP_TIMEOUT_MS 5000; not asserted)"
  docker rm -f s1 >/dev/null 2>&1 || true
  eq "$(docker network inspect -f '{{len .Containers}}' ds)" 0 "containers on ds"
  # the server back: the next container gets an address
  local args
  read -r -a args <"$SDIR/$ns.args"
  dhcp_resume "$ns" "${args[@]}"
  ctr s2 --network ds
  in_lease_range "$(addr4 s2)" "$N"
  x docker rm -f s2 >/dev/null
  x docker network rm ds >/dev/null
  no_links_on "$p"
}

# Twenty containers started at once all get distinct leases.
scenario_dhcp_twenty_at_once() {
  local p ns N=43 i pids=() addrs mark
  p=$(new_parent)
  # no renewals while twenty containers come and go
  ns=$(T1=100 dhcp_server "$p" "$N")
  mark=$(log_mark)
  mkdhcpnet dt "$p"
  echo "+ 20 x docker run -d --network dt (at once)"
  for i in $(seq 1 20); do
    docker run -d --init --name "t$i" --network dt "$BB" sleep 3600 >"$SDIR/t$i.out" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "docker run t$((i + 1)) failed: $(cat "$SDIR/t$((i + 1)).out")"
  done
  addrs=$(for i in $(seq 1 20); do addr4 "t$i"; done)
  unique "$addrs" "addresses of t1..t20"
  eq "$(sed '/^$/d' <<<"$addrs" | wc -l)" 20 "containers with an address"
  for a in $addrs; do in_lease_range "$a" "$N" >/dev/null; done
  wait_for 60 n_leases "$ns" 20 || fail "the server does not hold 20 leases: $(dhcp_leases "$ns")"
  echo "ok: the server holds 20 leases"
  # shellcheck disable=SC2046
  x docker rm -f $(seq -f 't%g' 1 20) >/dev/null
  wait_for 60 none_left dhcp_leases "$ns" || fail "leases left 60 s after docker rm: $(dhcp_leases "$ns")"
  x docker network rm dt >/dev/null
  no_links_on "$p"
  no_plugin_errors "$mark"
}
