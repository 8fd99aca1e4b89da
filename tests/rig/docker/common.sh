# Shared paths and helpers for the private-dockerd test rig. Sourced, not run.
# Usage: . "$(dirname "$0")/common.sh"
# Env:   IPVLAN_RS_CACHE  engine cache            (default /var/cache/ipvlan-rs-test)
#        LOG_DIR          daemon and registry logs (default /var/log/ipvlan-rs-test)

# shellcheck disable=SC2034  # used by the scripts that source this
RIG_RUN=/run/ipvlan-rs-test            # exec-roots, sockets, pidfiles (keep short: 108-byte socket paths)
RIG_DATA=/var/lib/ipvlan-rs-test       # data-roots, registry storage
RIG_CACHE=${IPVLAN_RS_CACHE:-/var/cache/ipvlan-rs-test}
RIG_LOG=${LOG_DIR:-/var/log/ipvlan-rs-test}
# Docker keeps managed-plugin state at this static path whatever --exec-root says
# (moby: getPluginExecRoot() on Linux, "socket paths cannot exceed 108 bytes").
DOCKER_PLUGIN_RUN=/run/docker/plugins

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "$(basename "$0"): $*" >&2; }

# A daemon NAME becomes part of paths, link names and containerd namespaces.
check_name() {
  [[ $1 =~ ^[a-z0-9][a-z0-9_-]{0,23}$ ]] || die "bad daemon name '$1' (want [a-z0-9][a-z0-9_-]{0,23})"
}

# Directory to put first on PATH so dockerd, containerd, shims, docker-proxy,
# docker-init and runc resolve to engine $1 (20|28). Made by install-engines.sh.
# The files of daemon NAME; dockerd-start.sh and dockerd-stop.sh must agree on them.
daemon_paths() {
  EXEC=$RIG_RUN/$1
  DATA=$RIG_DATA/$1
  SOCK=$RIG_RUN/$1.sock
  PIDF=$RIG_RUN/$1.pid
  CPIDF=$RIG_RUN/$1.containerd.pid
  STATE=$RIG_RUN/$1.env
  CDIR=$EXEC/ctrd                 # containerd state; its socket: $CDIR/c.sock
  CSOCK=$CDIR/c.sock
}

engine_bin_dir() {
  local d
  case $1 in
    20) d=${ENGINE_20_BIN_DIR:-$RIG_CACHE/engine-20/bin};;
    28) d=${ENGINE_28_BIN_DIR:-$RIG_CACHE/docker-28/bin};;
    *) die "engine must be 20 or 28, not '$1'";;
  esac
  [[ -x $d/dockerd && -x $d/containerd ]] || die "engine $1 not found in $d: run install-engines.sh first"
  echo "$d"
}

# A process counts as alive unless gone or a zombie: here PID 1 (not an init that
# reaps promptly) leaves exited daemons as zombies for ~2 s.
is_alive() {
  local st
  st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

# pid from a pidfile if that process is alive and its command is $2 (dockerd, containerd, ...)
live_pid() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [[ -n $pid ]] && is_alive "$pid" || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]] || return 1
  echo "$pid"
}

# pids with an argv element equal to the fixed string $1 (one grep over all cmdlines;
# the pattern comes from a file so that grep cannot match its own argv)
pids_with_arg() {
  { grep -lzxF -f <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null || true; } | cut -d/ -f3
}

# argv elements (all processes) matching the extended regex $1 as a whole, one a line
args_matching() {
  { grep -ahzxE -f <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null || true; } | tr '\0' '\n'
}

# SIGTERM the pids, wait until they are gone (guard: $1 seconds), then SIGKILL the
# survivors and wait for them (guard: 30 s). The guards bound a hang; a process
# normally ends long before.
term_wait_kill() {
  local timeout=$1 p alive i; shift
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    alive=()
    for p in "$@"; do if is_alive "$p"; then alive+=("$p"); fi; done
    [[ ${#alive[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
  log "SIGKILL after ${timeout}s: ${alive[*]}"
  kill -KILL "${alive[@]}" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    alive=()
    for p in "$@"; do if is_alive "$p"; then alive+=("$p"); fi; done
    [[ ${#alive[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
}

# Lazily unmount everything at or below each given path, deepest first.
unmount_under() {
  local root m
  for root in "$@"; do
    [[ -n $root && $root != / ]] || continue
    # /proc/self/mountinfo field 5 is the mount point (octal escapes for spaces etc.)
    while read -r m; do
      m=$(printf '%b' "$m")
      umount -l "$m" 2>/dev/null || log "cannot unmount $m"
    done < <(awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print length($5) " " $5}' /proc/self/mountinfo |
             sort -rn | cut -d' ' -f2- | uniq)
  done
}
