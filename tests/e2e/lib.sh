# shellcheck shell=bash disable=SC2153  # globals (E, P, BB, ...) come from the suite
# The end-to-end suites' runner and the helpers their scenarios use. Sourced by
# run.sh (one private dockerd per engine) and swarm.sh (a three-node Swarm per
# engine); each supplies only its set-up and its scenarios.
#
# Runner: a scenario is a function `scenario_NAME`; run_scenario runs it in a
# subshell with `set -euo pipefail` (and inherit_errexit), its output in a log of
# its own ($E2E_LOGS/<engine>-<n>-<name>.log), reports PASS/FAIL/SKIP with its
# duration (E2E_ONLY / E2E_SKIP filter), counts, then calls the suite's tidy hook
# and the one leak check: no link of the plugin (container links ivr*, dummy
# parents ivd*, parents it created, see plugin_links) in any namespace of
# E2E_LINK_NAMESPACES, no link on the scenario's veth parents. On a failure it
# prints the scenario's output and, for each log of E2E_DAEMON_LOGS, the lines of
# the scenario's time span (the plugins log into their dockerd's log).
#
# A suite sets before it runs scenarios:
#   E                    engine (20|28; names the logs), E2E_LABEL (e.g. e2e[28])
#   E2E_LOGS, E2E_WORK   logs dir (fresh_log_dir), scratch dir (a dir SDIR per scenario)
#   E2E_DAEMON_LOGS      dockerd logs to show on failure
#   E2E_LINK_NAMESPACES  network namespaces of the leak check ("" the host's)
#   P, BB                plugin reference, test image (for the helpers)
# and defines suite_tidy: remove what a scenario left (run after every scenario
# but those run as `run_scenario NAME notidy`). Per engine: engine_begin,
# run_scenario..., engine_end; at the end e2e_summary (the exit status).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
RIG=$ROOT/tests/rig/docker
# shellcheck source=tests/rig/docker/common.sh
. "$RIG/common.sh"

# shellcheck disable=SC2034  # variables used by the suites and the scenarios
E2E_VETH_PREFIX=irse          # every veth of run.sh: irse<engine>s<idx><letter>[p]
# seconds any one docker command may take: a guard against a hung daemon
export E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-120}

# --- output -----------------------------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# In a scenario: stop it with a reason.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
note() { echo "# $*"; }

# Show and run a command.
x() {
  echo "+ $*"
  "$@"
}

# rig SCRIPT ARGS...: a script of tests/rig/docker. Long-lived processes it starts
# (daemons, registry) must not inherit a suite's lock (fd 8): a killed run would
# leave the lock held by them and lock the next run out of its own clean-up.
rig() { "$RIG/$1" "${@:2}" 8<&-; }

# suite_lock NAME: one run of the suite NAME on this machine at a time, whichever
# checkout it runs from (a second run would stop the first one's daemons); a
# second run waits for the first, saying so. The lock is fd 8 (see rig).
suite_lock() {
  # /run/lock, not $RIG_RUN: the lock outlives the run, and the suites' last test
  # checks that the rig's own dirs hold nothing
  exec 8>"/run/lock/ipvlan-rs-test-$1.lock"
  if ! flock -n 8; then
    echo "# waiting for another run of $1 on this machine to finish" >&2
    flock 8
  fi
}

# --- docker -------------------------------------------------------------------

# Every docker call has a time limit so a hung daemon fails the scenario
# instead of hanging the suite.
docker() { timeout "$E2E_CMD_TIMEOUT" docker "$@"; }

# docker run/create print this on every run (the rig runs dockerd with
# --ip-forward=false in the host namespace): not an error.
filter_fwd_warning() { grep -v 'IPv4 forwarding is disabled' || true; }

# ctr NAME [docker run options...]: a detached container of the test image
# running `sleep` under docker-init (SIGTERM stops it at once).
ctr() {
  local name=$1 out rc=0
  shift
  echo "+ docker run -d --init --name $name $* $BB sleep 3600"
  out=$(docker run -d --init --name "$name" "$@" "$BB" sleep 3600 2>&1) || rc=$?
  filter_fwd_warning <<<"$out"
  ((rc == 0)) || fail "docker run $name failed (rc $rc)"
}

# mknet NAME [docker network create options...]: a network of the plugin (driver + IPAM)
mknet() {
  local name=$1
  shift
  x docker network create -d "$P" --ipam-driver "$P" "$@" "$name" >/dev/null
}

# ex C CMD...: run CMD in container C
ex() {
  local c=$1
  shift
  docker exec "$c" "$@"
}

# addr4 C [IF]: the IPv4 address/prefix of IF (default eth0) in container C
addr4() { ex "$1" ip -4 -o addr show dev "${2:-eth0}" | awk '{print $4}'; }
# addr6 C [IF]: the global IPv6 address/prefix of IF in container C
addr6() { ex "$1" ip -6 -o addr show dev "${2:-eth0}" scope global | awk '{print $4}'; }
# net_addr C NET: C's IPv4 address on NET as docker reports it (no prefix)
net_addr() { docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1"; }
# has_addr C ADDR: some interface of C carries ADDR
has_addr() {
  ex "$1" ip -o addr show | awk '{sub(/\/.*/, "", $4); print $4}' | grep -qxF "$2" ||
    fail "$1 has no interface with address $2"
  echo "ok: $1 has $2"
}
# gw4 C / gw6 C: the default route's gateway in container C (empty: none)
gw4() { ex "$1" ip -4 route show default | awk '$1 == "default" {print $3; exit}'; }
gw6() { ex "$1" ip -6 route show default | awk '$1 == "default" {print $3; exit}'; }
# n_defaults C: number of default routes (v4 + v6) in container C
n_defaults() {
  local r
  r=$(ex "$1" ip -4 route show default; ex "$1" ip -6 route show default)
  grep -c '^default' <<<"$r" || true
}
# ifaces C: interface names in container C other than lo, one a line
ifaces() { ex "$1" ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); if ($2 != "lo") print $2}'; }

# listens C PORT: a TCP socket in container C listens on PORT (busybox netstat)
listens() {
  local re="[:.]$2 +[^ ]+ +LISTEN"
  [[ $(ex "$1" netstat -ltn) =~ $re ]]
}
# show C: log a container's addresses and routes (for the scenario's output)
show() {
  echo "--- $1: ip addr / ip route / ip -6 route"
  ex "$1" ip -o addr show | grep -v ' lo ' | sed 's/\\.*//'
  ex "$1" ip route
  ex "$1" ip -6 route | grep -v '^multicast' || true
}

# pings C TARGET [-4|-6]: C reaches TARGET (an address or a name)
pings() {
  local c=$1 t=$2 fam=${3:-}
  echo "+ docker exec $c ping ${fam:+$fam }-c1 -W10 $t"
  # -W10: a guard for the one reply (ARP first) on a loaded machine, not a measurement
  # shellcheck disable=SC2086
  ex "$c" ping $fam -c1 -W10 "$t" >/dev/null || fail "$c cannot ping $t${fam:+ ($fam)} (no reply within 10 s)"
}
# no_ping C TARGET: C does not reach TARGET. The 1 s wait cannot fail a correct
# run (a slow machine could only let a wrong one pass); the scenarios that use it
# also assert the state behind it (the address gone from the network).
no_ping() {
  echo "+ docker exec $1 ping -c1 -W1 $2 (must fail)"
  if ex "$1" ping -c1 -W1 "$2" >/dev/null 2>&1; then fail "$1 can still ping $2"; fi
}

# net_addrs NET [4|6]: every container address on NET (no prefix), one a line
net_addrs() {
  local f='{{range .Containers}}{{.IPv4Address}}{{"\n"}}{{end}}'
  [[ ${2:-4} == 4 ]] || f='{{range .Containers}}{{.IPv6Address}}{{"\n"}}{{end}}'
  docker network inspect -f "$f" "$1" | sed '/^$/d; s,/.*,,' | sort
}

# state C: the container's state (running, exited, ...)
state() { docker inspect -f '{{.State.Status}}' "$1"; }

# wait_for SECONDS CMD...: until CMD succeeds (polled every 0.1 s); status 1
# if it has not after SECONDS. Waits are for events (a state, a log line, a
# socket); SECONDS is only a guard against a hang, never a measurement, so give
# it room for a loaded machine (60 s and more) and name what was awaited in the
# failure: `wait_for 60 is_running c1 || fail "c1 is not running after 60 s"`.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.1
  done
}

# none_left CMD...: CMD prints nothing (a predicate for wait_for)
none_left() { [[ -z $("$@") ]]; }
# plugin_restarted ID PID: managed plugin ID runs as a process other than PID
plugin_restarted() {
  local now
  now=$(plugin_pid "$1")
  [[ -n $now && $now != "$2" ]]
}
# gone PID: the process has exited (is_alive: tests/rig/docker/common.sh)
gone() { ! is_alive "$1"; }
# is_running C: C's state is running
is_running() { [[ $(state "$1" 2>/dev/null) == running ]]; }
# wait_running C: until C runs (guard 60 s)
wait_running() {
  wait_for 60 is_running "$1" || fail "waited 60 s for $1 to run; its state: $(state "$1" 2>&1)"
}

# stop_by_sigterm C...: docker stop, and each C ended by the SIGTERM: docker-init
# (--init) exits 128+15 = 143 when its child dies of SIGTERM; a container killed
# after the stop timeout (30 s, only a guard) would show 137. No time is measured.
stop_by_sigterm() {
  local c
  x docker stop -t 30 "$@" >/dev/null
  for c in "$@"; do
    eq "$(docker inspect -f '{{.State.ExitCode}}' "$c")" 143 "$c exit code after docker stop (143: ended by SIGTERM; 137: killed after the stop timeout)"
  done
}

# plugin_settings KEY=VALUE...: the plugin $P disabled (no network may use it),
# set, and enabled again
plugin_settings() {
  x docker plugin disable "$P"
  x docker plugin set "$P" "$@"
  x docker plugin enable "$P"
}

# kill9_plugin: kill -9 the process of plugin $P and wait until the engine has
# started it again (guard 60 s)
kill9_plugin() {
  local id pid
  id=$(docker plugin inspect -f '{{.Id}}' "$P")
  pid=$(plugin_pid "$id")
  [[ -n $pid ]] || fail "no process of plugin $id"
  x kill -KILL "$pid"
  # the engine sees the process exit and starts it again
  wait_for 60 plugin_restarted "$id" "$pid" || fail "waited 60 s for the engine to start plugin $id again (pid $pid killed)"
  note "plugin restarted: pid $pid -> $(plugin_pid "$id")"
}

# plugin_pid ID: the pid of managed plugin ID's process (its cgroup path names the ID)
plugin_pid() {
  local pid
  for pid in $(pgrep -x ipvlan-rs || true); do
    if grep -qF "$1" "/proc/$pid/cgroup" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
  done
}

# --- assertions -----------------------------------------------------------------

eq() { # eq ACTUAL EXPECTED WHAT
  [[ $1 == "$2" ]] || fail "$3: got '$1', want '$2'"
  echo "ok: $3 = '$1'"
}
matches() { # matches ACTUAL ERE WHAT
  [[ $1 =~ $2 ]] || fail "$3: '$1' does not match /$2/"
  echo "ok: $3 = '$1' ~ /$2/"
}
# unique LIST WHAT: no line of LIST twice (empty lines ignored)
unique() {
  local dups
  dups=$(sed '/^$/d' <<<"$1" | sort | uniq -d)
  [[ -z $dups ]] || fail "$2: duplicate addresses: $(echo "$dups" | tr '\n' ' ')"
  echo "ok: $2 unique: $(sed '/^$/d' <<<"$1" | paste -sd' ')"
}
# none_of LIST FORBIDDEN WHAT: no line of LIST is a line of FORBIDDEN
none_of() {
  local common
  common=$(comm -12 <(sed '/^$/d' <<<"$1" | sort -u) <(sed '/^$/d' <<<"$2" | sort -u))
  [[ -z $common ]] || fail "$3: reused $(echo "$common" | tr '\n' ' ')"
  echo "ok: $3: none of [$(sed '/^$/d' <<<"$1" | paste -sd' ')] in [$(sed '/^$/d' <<<"$2" | paste -sd' ')]"
}
# fails_with ERE CMD...: CMD must fail and its output must match ERE
fails_with() {
  local re=$1 out rc=0
  shift
  echo "+ $* (must fail)"
  out=$("$@" 2>&1) || rc=$?
  out=$(filter_fwd_warning <<<"$out")
  printf '  | %s\n' "$out"
  ((rc != 0)) || fail "'$*' succeeded"
  [[ $out =~ $re ]] || fail "error of '$*' does not match /$re/"
  echo "ok: failed with /$re/"
}

# --- the plugin's log ------------------------------------------------------------

# log_mark: the current end of the daemon's log (for no_plugin_errors)
log_mark() { wc -l <"$DLOG"; }
# no_plugin_errors MARK: no WARN or ERROR line of a plugin in the daemon's log since MARK
no_plugin_errors() {
  local bad
  bad=$(tail -n +"$(($1 + 1))" "$DLOG" | grep -E 'plugin=[0-9a-f]{64}' | grep -E '[0-9]Z +(WARN|ERROR) ' || true)
  [[ -z $bad ]] || fail "the plugin logged warnings or errors:
$bad"
  echo "ok: no plugin warnings or errors since log line $1"
}

# --- host links -----------------------------------------------------------------

# link_exists NAME: NAME is a link in the host namespace
link_exists() { ip link show "$1" >/dev/null 2>&1; }
# host_links: every link name in the host namespace, one a line
host_links() { ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}'; }
# ivr_links: container links of the plugin left in the host namespace
ivr_links() { host_links | grep '^ivr' || true; }
# plugin_links [NETNS]: every link the plugin makes, in the host namespace (or in
# NETNS), one a line: container links ivr*, dummy parents ivd*, and the parents
# it creates (802.1Q <parent>.<vid>), which carry the alias "ipvlan-rs:..."
# (SLAVE_PREFIX, DUMMY_PREFIX, ALIAS_PREFIX in crates/ipvlan-driver/src/lib.rs)
# shellcheck disable=SC2120  # called with NETNS too
plugin_links() {
  ip ${1:+-n "$1"} -o link show | awk -F': ' '{n = $2; sub(/@.*/, "", n); if (n ~ /^iv[rd]/ || / alias ipvlan-rs:/) print n}'
}
# children PARENT: macvlan/ipvlan links on PARENT in the host namespace
children() {
  local t
  for t in macvlan ipvlan; do
    ip -o link show type "$t" 2>/dev/null |
      awk -F': ' -v p="$1" '{n = $2; sub(/@.*/, "", n); l = $2; sub(/^[^@]*@?/, "", l); if (l == p) print n}'
  done
}

# new_parent [LETTER]: a veth pair irse<E>s<idx><LETTER> + ...p, both up; the
# harness deletes it after the scenario. Prints the name.
new_parent() {
  local v="${E2E_VETH_PREFIX}${E}s${SIDX}${1:-a}"
  ip link del "$v" 2>/dev/null || true
  ip link add "$v" type veth peer name "${v}p"
  ip link set "$v" up
  ip link set "${v}p" up
  echo "$v" >>"$SDIR/veths"
  echo "$v"
}

# plugin_links_left: the plugin's links in each namespace of E2E_LINK_NAMESPACES
# once its reaper is done, a line "NAMESPACE: LINK..." each (empty: none left).
# DeleteEndpoint answers before the reaper deletes the link (and a link of a
# churning network may be kept for LINK_REUSE_MS): waits for them to go (guard
# 60 s a namespace).
plugin_links_left() {
  local ns
  for ns in "${E2E_LINK_NAMESPACES[@]}"; do
    wait_for 60 none_left plugin_links "$ns" || echo "${ns:-host}: $(plugin_links "$ns" | paste -sd' ')"
  done
}
# no_plugin_links: none of the plugin's links left (plugin_links_left)
no_plugin_links() {
  local l
  l=$(plugin_links_left)
  [[ -z $l ]] || fail "links of the plugin left 60 s after their release: $l"
  echo "ok: no links of the plugin in ${E2E_LINK_NAMESPACES[*]:-the host namespace}"
}
# no_children PARENT: no links on PARENT once the reaper is done (guard 60 s);
# status 1 and the links named if some are left
no_children() {
  wait_for 60 none_left children "$1" || { echo "links left on $1: $(children "$1" | paste -sd' ')"; return 1; }
}
# no_links_on PARENT: no container links left on PARENT, none of the plugin
no_links_on() {
  no_children "$1" || fail "links left on $1 60 s after their release"
  echo "ok: no links left on $1"
  no_plugin_links
}

# --- the registry -----------------------------------------------------------------

# manifest_digest REPO TAG: the registry's digest of REPO:TAG (empty: none)
manifest_digest() {
  curl -sfI --max-time "$E2E_CMD_TIMEOUT" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/$1/manifests/$2" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}'
}

# --- the engines and the logs -------------------------------------------------------

# e2e_engines ENGINE...: the engines installed or unpacked on first use
# (tests/rig/docker/install-engines.sh; its ENGINE_* variables set and exported),
# DOCKERD's among them when set; a missing one ends the suite
e2e_engines() {
  local out e v
  out=$("$RIG/install-engines.sh") || die "install-engines.sh failed: the engines are missing"
  eval "$(grep '^ENGINE_' <<<"$out")"
  while read -r v; do export "${v?}"; done < <(grep -o '^ENGINE_[0-9]*_BIN_DIR' <<<"$out")
  for e in "$@"; do
    v=ENGINE_${e}_BIN_DIR
    [[ -n ${!v:-} && -x ${!v}/dockerd ]] || die "engine $e is not available (no $v from install-engines.sh${DOCKERD:+; DOCKERD=$DOCKERD is engine ${ENGINE_DOCKERD:-?}})"
  done
}
# suite_engines DEFAULT...: the engines a suite runs, as ENGINES: those of the
# variable named by SUITE_ENGINES_VAR when set, else DOCKERD's alone when
# DOCKERD is set, else DEFAULT
suite_engines() {
  local var=$SUITE_ENGINES_VAR e
  if [[ -n ${!var:-} ]]; then
    read -r -a ENGINES <<<"${!var}"
  elif [[ -n ${DOCKERD:-} ]]; then
    ENGINES=("$(dockerd_engine)")
  else
    ENGINES=("$@")
  fi
  ((${#ENGINES[@]})) || die "$var is empty"
  for e in "${ENGINES[@]}"; do
    [[ $e =~ ^[0-9]{2}$ ]] || die "$var: engine '$e' is not a two-digit major version (it names subnets and links)"
  done
}
# engine_version E: the version install-engines.sh reported for engine E
engine_version() {
  local v=ENGINE_${1}_VERSION
  sed -E 's/^Docker version ([^,]+).*/\1/' <<<"${!v:-?}"
}

# fresh_log_dir NAME [FILE...]: E2E_LOGS=$RIG_LOG/NAME, empty; the previous run's
# logs (that dir and the FILEs) moved to $RIG_LOG/NAME.prev
fresh_log_dir() {
  local prev=$RIG_LOG/$1.prev f
  E2E_LOGS=$RIG_LOG/$1
  mkdir -p "$RIG_LOG"
  rm -rf "$prev"
  mkdir "$prev"
  for f in "$E2E_LOGS" "${@:2}"; do
    [[ ! -e $f ]] || mv "$f" "$prev/"
  done
  mkdir -p "$E2E_LOGS"
}

# --- the runner -------------------------------------------------------------------

# isolated NAME LOG: run scenario_NAME in a subshell with errexit, nounset and
# pipefail (inherited by command substitutions), output to LOG; its status.
# Call it as a plain command with errexit off (`set +e; isolated ...; rc=$?`):
# in a `||` or `if` context bash would ignore errexit inside the scenario, and a
# failing step would not stop it.
isolated() {
  (
    set -euo pipefail
    shopt -s inherit_errexit
    "scenario_$1"
  ) >"$2" 2>&1 </dev/null
}

E2E_PASSED=0 E2E_FAILED=0 E2E_SKIPPED=0 E2E_FAILED_NAMES=() E2E_SUMMARY=()
E2E_T0=$(now_ms)

# leaks: links a scenario left: the plugin's in every namespace of
# E2E_LINK_NAMESPACES, any on its veth parents (both waited for, see
# plugin_links_left)
leaks() {
  local v l bad=0
  if [[ -f $SDIR/veths ]]; then
    while read -r v; do no_children "$v" || bad=1; done <"$SDIR/veths"
  fi
  l=$(plugin_links_left)
  [[ -z $l ]] || { echo "leak: links of the plugin left: $l"; bad=1; }
  return $bad
}

# del_dhcp_servers: stop the scenario's DHCP servers (dhcp_server in
# scenarios.sh) and delete their namespaces
del_dhcp_servers() {
  local ns
  [[ -f $SDIR/dhcp-servers ]] || return 0
  while read -r ns; do
    [[ -f $SDIR/$ns.pid ]] && kill "$(cat "$SDIR/$ns.pid")" 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
  done <"$SDIR/dhcp-servers"
}

del_veths() {
  local v
  [[ -f $SDIR/veths ]] || return 0
  while read -r v; do ip link del "$v" 2>/dev/null || true; done <"$SDIR/veths"
}

# log_lines: the line count of every log of E2E_DAEMON_LOGS (where a scenario starts)
log_lines() {
  local f
  for f in "${E2E_DAEMON_LOGS[@]}"; do { wc -l <"$f"; } 2>/dev/null || echo 0; done
}

# report_failure SLOG FROM...: the failing scenario's output (log SLOG) and, for
# each log of E2E_DAEMON_LOGS, its lines after line FROM (its count when the
# scenario started): dockerd's own and the plugin's (plugin=<id>, no DEBUG/TRACE)
report_failure() {
  local slog=$1 re='plugin=[0-9a-f]{64}' i f from
  shift
  echo "    ---- scenario output (last ${E2E_TAIL:-60} lines of $slog)"
  tail -n "${E2E_TAIL:-60}" "$slog" | sed 's/^/    | /'
  for i in "${!E2E_DAEMON_LOGS[@]}"; do
    f=${E2E_DAEMON_LOGS[i]} from=${*:i+1:1}
    echo "    ---- dockerd log tail ($f, this scenario, without plugin lines)"
    tail -n +"$((from + 1))" "$f" 2>/dev/null | grep -Ev "$re" | tail -n 25 | sed 's/^/    | /' || true
    echo "    ---- plugin log ($f lines with $re, this scenario, without DEBUG/TRACE)"
    tail -n +"$((from + 1))" "$f" 2>/dev/null | grep -E "$re" | grep -Ev '[0-9]Z (DEBUG|TRACE) ' |
      sed -E 's/^time="[^"]*" level=[a-z]+ msg="//; s/" plugin=([0-9a-f]{12})[0-9a-f]{52}$/ [plugin \1]/; s/\\"/"/g' |
      tail -n 30 | sed 's/^/    | /' || true
  done
}

# result NAME STATUS TEXT: a result line
result() { printf '%s %-28s %s %s\n' "$E2E_LABEL" "$1" "$2" "$3"; }

# run_scenario NAME [notidy]: run scenario_NAME and record PASS/FAIL; notidy: no
# suite_tidy afterwards (set-up and teardown scenarios). setup, teardown and
# nothing_left always run; E2E_ONLY / E2E_SKIP (regexes) filter the others.
run_scenario() {
  local name=$1 notidy=${2:-} slog t0 ms rc=0 from status why
  SIDX=$(printf %02d $((10#$SIDX + 1)))
  SDIR=$E2E_WORK/$E-$SIDX-$name
  mkdir -p "$SDIR"
  slog=$E2E_LOGS/$E-$SIDX-$name.log
  if [[ ! $name =~ ^(setup|teardown|nothing_left)$ ]] &&
    { [[ -n ${E2E_ONLY:-} && ! $name =~ ^(${E2E_ONLY})$ ]] || [[ -n ${E2E_SKIP:-} && $name =~ ^(${E2E_SKIP})$ ]]; }; then
    E2E_SKIPPED=$((E2E_SKIPPED + 1))
    result "$name" SKIP "(E2E_ONLY/E2E_SKIP)"
    return 0
  fi
  # a scenario the engine cannot run says why in skip_NAME (status 0 = skip)
  if declare -F "skip_$name" >/dev/null && why=$("skip_$name"); then
    E2E_SKIPPED=$((E2E_SKIPPED + 1))
    result "$name" SKIP "($why)"
    return 0
  fi
  : >"$slog"
  from=$(log_lines)
  t0=$(now_ms)
  set +e
  isolated "$name" "$slog"
  rc=$?
  # what the scenario left: removed now, leaks fail it
  {
    echo "==== harness: tidy"
    [[ -n $notidy ]] || suite_tidy || { echo "FAIL: tidy after the scenario failed"; ((rc)) || rc=1; }
    leaks || { echo "FAIL: the scenario left links behind"; ((rc)) || rc=1; }
    del_dhcp_servers
    del_veths
  } >>"$slog" 2>&1
  set -e
  ms=$(($(now_ms) - t0))
  if ((rc == 0)); then
    status=PASS
    E2E_PASSED=$((E2E_PASSED + 1))
  else
    status=FAIL
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILED_NAMES+=("$E:$name")
  fi
  result "$name" "$status" "$(printf '%6d ms' "$ms")"
  if [[ $status == FAIL ]]; then
    # shellcheck disable=SC2086  # one count a log
    report_failure "$slog" $from
  elif [[ -n ${E2E_VERBOSE:-} ]]; then
    sed 's/^/    | /' "$slog"
  fi
  return 0
}

# not_run NAME WHY: a scenario that cannot run counts as failed
not_run() {
  E2E_FAILED=$((E2E_FAILED + 1))
  E2E_FAILED_NAMES+=("$E:$1")
  result "$1" FAIL "(not run: $2)"
}

# run_engine SCENARIO...: setup, then the scenarios (each not run if setup
# failed), then teardown, each a scenario of the suite; the engine's counts recorded
run_engine() {
  local s p0=$E2E_PASSED f0=$E2E_FAILED t0
  t0=$(now_ms)
  SIDX=00
  run_scenario setup notidy
  if ((E2E_FAILED > f0)); then
    for s in "$@"; do not_run "$s" "setup failed"; done
  else
    for s in "$@"; do run_scenario "$s"; done
  fi
  run_scenario teardown notidy
  E2E_SUMMARY+=("$E2E_LABEL: $((E2E_PASSED - p0)) passed, $((E2E_FAILED - f0)) failed in $((($(now_ms) - t0) / 1000)) s (engine $(engine_version "$E"))")
  echo "${E2E_SUMMARY[-1]}"
}

# e2e_summary SUITE: every engine's counts and the total; status 0 only if every
# scenario passed (and there were some)
e2e_summary() {
  local skipped=
  printf '%s\n' "${E2E_SUMMARY[@]}"
  ((E2E_SKIPPED == 0)) || skipped=", $E2E_SKIPPED skipped (E2E_ONLY/E2E_SKIP, or the engine cannot run them)"
  echo "$1: $E2E_PASSED passed, $E2E_FAILED failed$skipped in $((($(now_ms) - E2E_T0) / 1000)) s${E2E_FAILED_NAMES[*]:+ (failed: ${E2E_FAILED_NAMES[*]})} (logs: $E2E_LOGS)"
  ((E2E_FAILED == 0 && E2E_PASSED > 0))
}
