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

# --- engines ------------------------------------------------------------------
# An engine is named by its major version: 20 and 28 are the packaged ones
# (install-engines.sh), any other dockerd binary is given as DOCKERD=/path/to/dockerd
# and named by the major version it reports (e.g. 29). Its companions
# (containerd, containerd-shim-runc-v2, ctr, runc, docker-proxy, docker-init) come
# from DOCKER_BINDIR, then the dockerd's own directory, then engine 28's
# unpacked containerd and the machine's runc and tini.

# dockerd_engine: the engine name of $DOCKERD (its major version)
dockerd_engine() {
  local v
  [[ -x ${DOCKERD:-} && ! -d $DOCKERD ]] || die "DOCKERD=${DOCKERD:-} is not an executable dockerd"
  v=$("$DOCKERD" --version 2>/dev/null) || die "DOCKERD=$DOCKERD: '--version' failed"
  [[ $v =~ ^Docker\ version\ ([0-9]+)\. ]] || die "DOCKERD=$DOCKERD: cannot read a version from '$v'"
  echo "$((10#${BASH_REMATCH[1]}))"
}

# dockerd_bin_dir: a directory of symlinks for $DOCKERD and its companions (see
# above), one per DOCKERD + DOCKER_BINDIR pair, in the cache; made on every call
# (cheap) so that it follows the binaries given
dockerd_bin_dir() {
  local dockerd own key dir n t d runc_v major
  dockerd=$(readlink -f "$DOCKERD")
  own=$(dirname "$dockerd")
  key=$(printf '%s\n%s\n' "$dockerd" "${DOCKER_BINDIR:-}" | md5sum | cut -c1-10)
  dir=$RIG_CACHE/dockerd-$key/bin
  mkdir -p "$dir"
  ln -sfn "$dockerd" "$dir/dockerd"
  for n in containerd containerd-shim-runc-v2 ctr runc docker-proxy docker-init; do
    t=
    for d in ${DOCKER_BINDIR:+"$DOCKER_BINDIR"} "$own" "$RIG_CACHE/docker-28/bin"; do
      [[ -x $d/$n ]] && { t=$(readlink -f "$d/$n"); break; }
    done
    if [[ -z $t ]]; then
      case $n in
        runc) t=$(command -v runc || echo /usr/sbin/runc);;
        docker-init) t=$(command -v tini-static || command -v docker-init || true);;
      esac
    fi
    if [[ -n $t && -x $t ]]; then ln -sfn "$t" "$dir/$n"; else rm -f "$dir/$n"; fi
  done
  [[ -x $dir/containerd ]] || die "DOCKERD=$DOCKERD: no containerd in DOCKER_BINDIR, $own or engine 28 (run install-engines.sh)"
  [[ -x $dir/runc ]] || die "DOCKERD=$DOCKERD: no runc in DOCKER_BINDIR, $own or on PATH"
  # Docker 29 runs plugins in a time namespace, which runc before 1.2 refuses
  # ("namespace {"time" ""} does not exist" at plugin enable)
  major=$(dockerd_engine)
  runc_v=$("$dir/runc" --version 2>/dev/null | sed -n 's/^runc version \([0-9]*\.[0-9]*\).*/\1/p')
  if ((major >= 29)) && [[ -n $runc_v ]] && ((${runc_v%%.*} == 1 && 10#${runc_v#*.} < 2)); then
    die "DOCKERD=$DOCKERD is Docker $major, which needs runc >= 1.2 (plugins run in a time namespace); $dir/runc is $runc_v: put a newer runc in DOCKER_BINDIR"
  fi
  echo "$dir"
}

# engine_bin_dir ENGINE: the directory to put first on PATH so that dockerd,
# containerd, shims, docker-proxy, docker-init and runc resolve to ENGINE: the
# engine of DOCKERD when that is set and ENGINE is its name, else 20 or 28
# (made by install-engines.sh), else ENGINE_<ENGINE>_BIN_DIR when exported
engine_bin_dir() {
  local d v
  if [[ -n ${DOCKERD:-} && $1 == "$(dockerd_engine)" ]]; then
    d=$(dockerd_bin_dir)
  else
    v=ENGINE_${1}_BIN_DIR
    case $1 in
      20) d=${ENGINE_20_BIN_DIR:-$RIG_CACHE/engine-20/bin};;
      28) d=${ENGINE_28_BIN_DIR:-$RIG_CACHE/docker-28/bin};;
      *) [[ $1 =~ ^[0-9]+$ && -n ${!v:-} ]] ||
           die "engine must be 20, 28 or the major version of DOCKERD=/path/to/dockerd, not '$1'${DOCKERD:+ (DOCKERD is $(dockerd_engine))}"
         d=${!v};;
    esac
  fi
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
