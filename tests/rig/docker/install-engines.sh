#!/bin/bash
# Make two Docker engines available for the end-to-end tests, without ever
# starting or relying on a system daemon, and print where they are:
#   ENGINE_20_BIN_DIR=DIR   the machine's dockerd if it has one, else Debian
#                           bookworm's docker.io 20.10 (apt-get install)
#   ENGINE_28_BIN_DIR=DIR   Docker 28.5 + containerd from Debian unstable,
#                           apt-get download + dpkg -x into the cache, never installed
#   ENGINE_20_VERSION=...   ENGINE_28_VERSION=...
#   with DOCKERD=/path/to/dockerd also, for its major version N (e.g. 29):
#   ENGINE_N_BIN_DIR=DIR ENGINE_N_VERSION=... ENGINE_DOCKERD=N
#                           (nothing installed for it: DOCKER_BINDIR=DIR or the
#                           dockerd's own directory gives its containerd, shim and
#                           runc, else engine 28's containerd and the machine's runc)
# Each DIR holds symlinks (dockerd containerd containerd-shim-runc-v2 ctr
# docker-proxy docker-init runc) and goes first on PATH for that engine's dockerd.
# Also installs busybox-static docker-registry iproute2 iptables curl (and runc
# when the machine has none). Idempotent; a second run takes about a second.
#
# Usage:  eval "$(tests/rig/docker/install-engines.sh)"
# Env:    IPVLAN_RS_CACHE   cache root (default /var/cache/ipvlan-rs-test); the
#                           28 engine lives in $IPVLAN_RS_CACHE/docker-28
#         ENGINE_28_WANT    version prefix the unstable engine must have (default "28.");
#                           set to e.g. "29." once unstable has moved on and you accept it
#         SKIP_ENGINE_28=1  only do the 20.10 side
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

[[ $(id -u) == 0 ]] || die "must run as root"
ENGINE_28_WANT=${ENGINE_28_WANT:-28.}
D28=$RIG_CACHE/docker-28
SVC_FILE=$RIG_CACHE/services-to-keep-stopped   # services of packages this script installed
mkdir -p "$RIG_CACHE"
exec 9>"$RIG_CACHE/install.lock"
flock 9                                        # one install at a time
export DEBIAN_FRONTEND=noninteractive

# --- helpers -----------------------------------------------------------------

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

apt_install() {  # never removes anything (--no-remove), e.g. docker-ce's containerd.io
  local opts=(-y -q --no-install-recommends --no-remove -o DPkg::Lock::Timeout=300
              -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! apt-get install "${opts[@]}" "$@" >&2; then
    log "apt-get install failed; retrying after apt-get update"
    apt-get update -q >&2
    apt-get install "${opts[@]}" "$@" >&2
  fi
}

# Stop and disable system services: our tests never use a system daemon.
# systemctl may be absent or present without systemd as PID 1: handle both.
stop_disable() {
  local u n
  for u in "$@"; do
    if command -v systemctl >/dev/null; then
      # unit-file operations work even when systemd is not PID 1 (containers)
      if systemctl is-enabled -q "$u" 2>/dev/null; then
        log "disabling system unit $u"
        systemctl disable -q "$u" >&2 2>&1 || true
      fi
      if [[ -d /run/systemd/system ]] && systemctl is-active -q "$u" 2>/dev/null; then
        log "stopping system unit $u"
        systemctl stop "$u" >&2 2>&1 || true
      fi
    fi
    n=${u%.service}
    [[ $n == *.* ]] && continue                  # docker.socket: systemd only
    if [[ -x /etc/init.d/$n && ! -d /run/systemd/system ]]; then
      if /etc/init.d/"$n" status >/dev/null 2>&1; then
        log "stopping init script $n"
        /etc/init.d/"$n" stop >&2 2>&1 || true
      fi
      update-rc.d "$n" disable >/dev/null 2>&1 || true
    fi
  done
}

# The machine's Debian archive URI for its own release, read from its apt
# sources (one-line .list and deb822 .sources), never written down here.
debian_mirror() {
  local codename files=() f uri
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release"
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  uri=$( ((${#files[@]})) && awk -v cn="$codename" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false)$/ && (" " suites " ") ~ (" " cn " ") && (" " comps " ") ~ / main /) {
        split(uris, u, " "); print u[1]; found = 1; exit
      }
      types = uris = suites = comps = enabled = ""
    }
    FNR == 1 { if (NR > 1) flush(); deb822 = (FILENAME ~ /\.sources$/) }
    /^[ \t]*#/ { next }
    !deb822 {
      line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, w, " ")
      if (w[1] == "deb" && w[3] == cn) { for (i = 4; i <= n; i++) if (w[i] == "main") { print w[2]; found = 1; exit } }
      next
    }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { next }
    { k = tolower($1); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
      if (k == "types:") types = v; else if (k == "uris:") uris = v
      else if (k == "suites:") suites = v; else if (k == "components:") comps = v
      else if (k == "enabled:") enabled = tolower(v) }
    END { if (!found && deb822) flush() }
  ' "${files[@]}" || true)
  if [[ -z $uri ]]; then   # fall back to what apt itself reports
    uri=$(apt-cache policy 2>/dev/null | awk -v s="$codename/main" '$3 == s {print $2; exit}')
  fi
  [[ -n $uri ]] || die "cannot find this machine's Debian mirror for $codename in its apt sources"
  echo "${uri%/}"
}

# First match for $1 among the given dirs, then the system PATH (never our cache).
find_bin() {
  local name=$1 d p; shift
  for d in "$@"; do [[ -x $d/$name ]] && { echo "$d/$name"; return 0; }; done
  p=$(PATH=$SEARCH_PATH command -v "$name" 2>/dev/null) && [[ -x $p ]] && { echo "$p"; return 0; }
  return 1
}

# Fill a bin dir with symlinks; dockerd and containerd are mandatory.
link_bins() {  # DIR NAME=TARGET...
  local dir=$1 kv; shift
  mkdir -p "$dir"
  for kv in "$@"; do
    [[ -n ${kv#*=} ]] || continue
    ln -sfn "${kv#*=}" "$dir/${kv%%=*}"
  done
}

# --- system packages -----------------------------------------------------------

# the user's PATH minus our own engine dirs, plus the usual system dirs
SEARCH_PATH=$(tr ':' '\n' <<<"$PATH" | grep -vF "$RIG_CACHE" | paste -sd:):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

want=()
new_services=()
DOCKERD20=$(PATH=$SEARCH_PATH command -v dockerd || true)
if [[ -z $DOCKERD20 ]]; then
  want+=(docker.io)
  installed docker.io || new_services+=(docker.service docker.socket)
  installed containerd || new_services+=(containerd.service)
fi
for p in busybox-static docker-registry iproute2 iptables curl; do
  installed "$p" || want+=("$p")
done
installed docker-registry || new_services+=(docker-registry.service)
# runc: any runc the machine has (docker-ce's containerd.io ships /usr/bin/runc and
# conflicts with Debian's runc package); Debian's otherwise
if ! PATH=$SEARCH_PATH command -v runc >/dev/null && [[ ! -x /usr/sbin/runc ]]; then want+=(runc); fi

if ((${#want[@]})); then
  log "apt-get install ${want[*]}"
  apt_install "${want[@]}"
fi
if ((${#new_services[@]})); then
  touch "$SVC_FILE"
  printf '%s\n' "${new_services[@]}" >>"$SVC_FILE"
  sort -u -o "$SVC_FILE" "$SVC_FILE"
fi
# every run: keep the services of packages we installed stopped (a killed run may
# have left them started by a postinst)
if [[ -s $SVC_FILE ]]; then
  mapfile -t svcs <"$SVC_FILE"
  stop_disable "${svcs[@]}"
fi

RUNC=$(find_bin runc /usr/sbin) || die "no runc after installing"
TINI=$(find_bin tini-static /usr/bin || find_bin docker-init /usr/sbin /usr/libexec/docker /usr/lib/docker || true)

# --- engine "20.10": the machine's dockerd or bookworm's docker.io ----------------

DOCKERD20=$(PATH=$SEARCH_PATH command -v dockerd) || die "no dockerd after installing docker.io"
DOCKERD20=$(readlink -f "$DOCKERD20")
d20=$(dirname "$DOCKERD20")
E20=$RIG_CACHE/engine-20/bin
link_bins "$E20" \
  dockerd="$DOCKERD20" \
  containerd="$(find_bin containerd "$d20" /usr/bin)" \
  containerd-shim-runc-v2="$(find_bin containerd-shim-runc-v2 "$d20" /usr/bin)" \
  containerd-shim="$(find_bin containerd-shim "$d20" /usr/bin || true)" \
  ctr="$(find_bin ctr "$d20" /usr/bin || true)" \
  docker-proxy="$(find_bin docker-proxy "$d20" /usr/sbin /usr/libexec/docker || true)" \
  docker-init="$(find_bin docker-init "$d20" /usr/sbin /usr/libexec/docker || echo "$TINI")" \
  runc="$RUNC"
[[ -x $E20/containerd ]] || die "engine 20: no containerd found"
V20=$("$E20/dockerd" --version)
log "engine 20: $V20 ($(readlink -f "$E20/dockerd")); $("$E20/containerd" --version)"

# --- engine "28.5": Debian unstable, downloaded and unpacked, never installed -----

works28() {
  [[ -x $D28/root/usr/sbin/dockerd && -x $D28/root/usr/bin/containerd ]] || return 1
  "$D28/root/usr/sbin/dockerd" --version 2>/dev/null | grep -q "^Docker version ${ENGINE_28_WANT//./\\.}" || return 1
  "$D28/root/usr/bin/containerd" --version >/dev/null 2>&1
}

if [[ -z ${SKIP_ENGINE_28:-} ]]; then
  if works28; then
    log "engine 28: already unpacked in $D28/root"
  else
    mirror=$(debian_mirror)
    log "engine 28: fetching docker.io + containerd from $mirror sid"
    A=$D28/apt
    rm -rf "$A" "$D28/debs" "$D28/root.new"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$D28/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$A/sources.list"
    APT=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache"
         -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
         -o APT::Default-Release= -o DPkg::Lock::Timeout=300)
    apt-get "${APT[@]}" update -q >&2
    # apt-get download runs as _apt and warns that it cannot write here: harmless
    (cd "$D28/debs" && apt-get "${APT[@]}" download docker.io containerd 2>&1 | grep -v unsandboxed >&2 || true)
    ls "$D28"/debs/docker.io_*.deb "$D28"/debs/containerd_*.deb >/dev/null || die "engine 28: download failed"
    mkdir -p "$D28/root.new"
    for deb in "$D28"/debs/*.deb; do dpkg -x "$deb" "$D28/root.new"; done
    # unstable's runc needs glibc >= 2.38: the machine's runc is used instead
    find "$D28/root.new" -name runc \( -type f -o -type l \) -delete
    rm -rf "$D28/root.old"
    [[ -e $D28/root ]] && mv "$D28/root" "$D28/root.old"
    mv "$D28/root.new" "$D28/root"
    rm -rf "$D28/root.old" "$A/cache" "$D28/debs"
    works28 || die "engine 28: unpacked dockerd is not version $ENGINE_28_WANT*: $("$D28/root/usr/sbin/dockerd" --version 2>&1) (set ENGINE_28_WANT to accept it)"
  fi
  R=$D28/root
  E28=$D28/bin
  init28=$R/usr/bin/docker-init
  [[ -e $init28 ]] || init28=$TINI     # its docker-init is a symlink to tini-static
  link_bins "$E28" \
    dockerd="$R/usr/sbin/dockerd" \
    docker-proxy="$R/usr/sbin/docker-proxy" \
    containerd="$R/usr/bin/containerd" \
    containerd-shim-runc-v2="$R/usr/bin/containerd-shim-runc-v2" \
    ctr="$R/usr/bin/ctr" \
    docker-init="$init28" \
    runc="$RUNC"
  V28=$("$E28/dockerd" --version)
  log "engine 28: $V28; $("$E28/containerd" --version); runc: $RUNC"
fi

echo "ENGINE_20_BIN_DIR=$E20"
echo "ENGINE_20_VERSION='$V20'"
if [[ -z ${SKIP_ENGINE_28:-} ]]; then
  echo "ENGINE_28_BIN_DIR=$E28"
  echo "ENGINE_28_VERSION='$V28'"
fi

# --- any dockerd: DOCKERD=/path/to/dockerd, named by its major version ---------------
if [[ -n ${DOCKERD:-} ]]; then
  N=$(dockerd_engine)
  EN=$(dockerd_bin_dir)
  VN=$("$EN/dockerd" --version)
  log "engine $N (DOCKERD): $VN ($(readlink -f "$EN/dockerd")); $("$EN/containerd" --version); $("$EN/runc" --version | head -1)"
  echo "ENGINE_${N}_BIN_DIR=$EN"
  echo "ENGINE_${N}_VERSION='$VN'"
  echo "ENGINE_DOCKERD=$N"
fi
