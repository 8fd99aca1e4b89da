#!/bin/bash
# make audit: cargo audit of Cargo.lock and fuzz/Cargo.lock (the fuzz targets'
# own workspace) against the RustSec advisory database.
#   AUDIT_DB=DIR   a local copy of the database (a clone of $LIVE), used as it
#                  is (--no-fetch)
#   (unset)        the live database, which cargo audit fetches, if this
#                  machine reaches it; otherwise say how to get a copy, exit 2
# Fails on any vulnerability and on any warning (unmaintained, unsound,
# yanked) not in ALLOWED; each allowed one has its reason in README.md
# (Security). Installs cargo-audit from crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
LIVE=https://github.com/rustsec/advisory-db.git
CARGO_AUDIT_VERSION=${CARGO_AUDIT_VERSION:-0.22.2}
# RUSTSEC ids of allowed warnings (README.md, Security, says why for each)
ALLOWED=()

if ! cargo audit --version >/dev/null 2>&1; then
  echo "audit: installing cargo-audit $CARGO_AUDIT_VERSION from crates.io"
  cargo install --locked cargo-audit --version "$CARGO_AUDIT_VERSION"
fi

args=(--deny warnings)
for id in "${ALLOWED[@]}"; do args+=(--ignore "$id"); done
if [[ -n ${AUDIT_DB:-} ]]; then
  if [[ ! -d $AUDIT_DB/crates ]]; then
    echo "audit: AUDIT_DB=$AUDIT_DB is not a copy of the advisory database (it has no crates/ directory)" >&2
    exit 2
  fi
  echo "audit: advisory database $AUDIT_DB (local copy, not fetched)"
  args+=(--db "$AUDIT_DB" --no-fetch)
elif timeout 30 git ls-remote --exit-code "$LIVE" HEAD >/dev/null 2>&1; then
  echo "audit: advisory database $LIVE (live, fetched by cargo audit)"
else
  cat >&2 <<MSG
audit: no advisory database: AUDIT_DB is not set, and this machine does not
reach $LIVE.
Get a copy on a machine that reaches GitHub:
  git clone --depth 1 $LIVE advisory-db
bring the directory here, and run:
  make audit AUDIT_DB=/path/to/advisory-db
MSG
  exit 2
fi
rc=0
for lock in Cargo.lock fuzz/Cargo.lock; do
  echo "audit: $lock"
  cargo audit --file "$lock" "${args[@]}" || rc=1
done
exit $rc
