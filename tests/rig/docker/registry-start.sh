#!/bin/bash
# Run Debian's docker-registry binary (not its service) on 127.0.0.1:PORT with a
# config of our own: no auth, filesystem storage in a fresh dir, deletes enabled.
# 127.0.0.0/8 is an insecure registry by default in dockerd, so
# `docker push 127.0.0.1:PORT/x` and `docker plugin push/install` work over http.
#
# Usage:  tests/rig/docker/registry-start.sh PORT     -> prints REGISTRY=ADDR:PORT
# Env:    NETNS=name  run it in /var/run/netns/name (nsenter --net), e.g. the
#                     switch namespace of a multi-node test
#         ADDR=ip     listen address (default 127.0.0.1; daemons need
#                     --insecure-registry=ADDR:PORT for any other)
# Files:  /run/ipvlan-rs-test/registry-PORT/{config.yml,pid},
#         storage /var/lib/ipvlan-rs-test/registry-PORT, log $LOG_DIR/registry-PORT.log
# A registry already answering on PORT from an earlier call is reused; stale
# files of a killed one are replaced (its storage is wiped).
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"

[[ $# -eq 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 && $1 -lt 65536 ]] || die "usage: $0 PORT"
PORT=$1
DIR=$RIG_RUN/registry-$PORT
STORE=$RIG_DATA/registry-$PORT
LOGF=$RIG_LOG/registry-$PORT.log
ADDR=${ADDR:-127.0.0.1}
URL=http://$ADDR:$PORT/v2/
REG=$(command -v docker-registry) || die "no docker-registry: run install-engines.sh"
IN_NS=()
if [[ -n ${NETNS:-} ]]; then
  [[ -e /var/run/netns/$NETNS ]] || die "no network namespace /var/run/netns/$NETNS"
  IN_NS=(nsenter "--net=/var/run/netns/$NETNS")
fi

up() { [[ $("${IN_NS[@]}" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL") == 200 ]]; }

if pid=$(live_pid "$DIR/pid" docker-registry) && up; then
  log "registry on port $PORT already running (pid $pid)"
  echo "REGISTRY=$ADDR:$PORT"
  exit 0
fi
"$HERE/registry-stop.sh" "$PORT"
if up || "${IN_NS[@]}" bash -c "exec 3<>/dev/tcp/$ADDR/$PORT" 2>/dev/null; then
  die "port $PORT is taken by something else"
fi

mkdir -p "$DIR" "$STORE" "$RIG_LOG"
cat >"$DIR/config.yml" <<CFG
version: 0.1
log:
  level: info
  fields: {service: registry}
storage:
  filesystem: {rootdirectory: $STORE}
  delete: {enabled: true}
http:
  addr: $ADDR:$PORT
  headers:
    X-Content-Type-Options: [nosniff]
CFG
echo "=== $(date -Is) registry on $ADDR:$PORT${NETNS:+ in netns $NETNS}" >>"$LOGF"
setsid "${IN_NS[@]}" "$REG" serve "$DIR/config.yml" </dev/null >>"$LOGF" 2>&1 &
echo $! >"$DIR/pid"
for ((i = 0; i < 600; i++)); do
  up && { echo "REGISTRY=$ADDR:$PORT"; exit 0; }
  is_alive "$(cat "$DIR/pid")" || break
  sleep 0.1
done
tail -n 20 "$LOGF" >&2
die "registry on port $PORT did not answer 200 on $URL within 60 s"
