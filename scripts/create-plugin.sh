#!/bin/bash
# make create: (re)creates the plugin REF from the bundle BUNDLE in the engine
# that $DOCKER talks to, keeping what a running plugin already has.
#
# `docker plugin rm` deletes the plugin's propagated mount, and with it every
# pool, address and endpoint record: the next container on an existing
# network would fail ("unknown pool"), or, had the pool come back empty, get
# an address a running container holds. So when REF exists, its state
# directory and its settings (`docker plugin set` values) are carried over
# into the new plugin, which is then enabled if the old one was. The old
# plugin is disabled first, so its state files are closed and whole.
#   create-plugin.sh REF BUNDLE
set -euo pipefail
ref=$1 bundle=$2
DOCKER=${DOCKER:-docker}
d() { $DOCKER "$@"; }

if ! id=$(d plugin inspect -f '{{.Id}}' "$ref" 2>/dev/null); then
  d plugin create "$ref" "$bundle"
  exit 0
fi

root=$(d info -f '{{.DockerRootDir}}')
mount=$root/plugins/$id/propagated-mount
enabled=$(d plugin inspect -f '{{.Enabled}}' "$ref")
mapfile -t settings < <(d plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$ref" | sed '/^$/d')
[[ -d $root/plugins/$id ]] || { echo "create-plugin: $ref has no directory $root/plugins/$id; is $DOCKER the engine at $root?" >&2; exit 1; }
if [[ ! -d $mount ]]; then
  # never enabled (make create, make push): no state yet, only settings to keep
  [[ $enabled == false ]] || { echo "create-plugin: $ref is enabled but has no state directory at $mount" >&2; exit 1; }
  mkdir -p "$mount"
fi

# Networks of this plugin keep working containers while it is down; new
# containers on them wait for the enable below.
if [[ $enabled == true ]]; then
  echo "create-plugin: disabling $ref to carry its state over"
  d plugin disable -f "$ref" >/dev/null
fi
keep=$(mktemp -d "$root/plugins/.ipvlan-rs-state.XXXXXX")
cp -a "$mount/." "$keep/"
echo "create-plugin: state of $ref ($id) kept in $keep"
d plugin rm -f "$ref" >/dev/null
if ! d plugin create "$ref" "$bundle"; then
  echo "create-plugin: creating $ref failed; its state is still in $keep" >&2
  exit 1
fi
new=$(d plugin inspect -f '{{.Id}}' "$ref")
mkdir -p "$root/plugins/$new/propagated-mount"
cp -a "$keep/." "$root/plugins/$new/propagated-mount/"
mapfile -t defaults < <(d plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$ref" | sed '/^$/d')
changed=()
for s in "${settings[@]}"; do
  printf '%s\n' "${defaults[@]}" | grep -qxF -- "$s" || changed+=("$s")
done
if ((${#changed[@]})); then
  echo "create-plugin: settings carried over: ${changed[*]}"
  d plugin set "$ref" "${changed[@]}"
fi
rm -rf "$keep"
echo "create-plugin: $ref re-created with the state and settings of $id"
if [[ $enabled == true ]]; then
  d plugin enable "$ref"
fi
