#!/bin/bash
# Stop registries started by registry-start.sh and remove their config and storage.
#
# Usage:  tests/rig/docker/registry-stop.sh [PORT]     (no PORT: all of them)
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"

if [[ $# -ge 1 ]]; then
  [[ $1 =~ ^[0-9]+$ ]] || die "usage: $0 [PORT]"
  ports=("$1")
else
  ports=()
  for d in "$RIG_RUN"/registry-* "$RIG_DATA"/registry-*; do
    [[ -e $d ]] && ports+=("${d##*/registry-}")
  done
  # registries whose dir is gone: "serve /run/ipvlan-rs-test/registry-PORT/config.yml"
  while read -r a; do
    a=${a#"$RIG_RUN/registry-"}; ports+=("${a%/config.yml}")
  done < <(args_matching "$RIG_RUN/registry-[0-9]+/config.yml")
fi
for port in $(printf '%s\n' "${ports[@]}" | sort -u); do
  [[ -n $port ]] || continue
  DIR=$RIG_RUN/registry-$port
  pids=$( { live_pid "$DIR/pid" docker-registry || true; pids_with_arg "$DIR/config.yml"; } | sort -u)
  # shellcheck disable=SC2086
  term_wait_kill 30 $pids
  rm -rf --one-file-system "$DIR" "$RIG_DATA/registry-$port"
done
