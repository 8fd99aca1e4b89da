#!/bin/bash
# Runs cargo test suites N times in a row and counts the runs that failed,
# for whoever touches anything with a timing in it (`make test-repeat`).
# A run's failure log is kept in target/test-repeat/run-K.log.
#   N=20                          how many runs
#   TESTS='--workspace'           what `cargo test` runs, e.g. '-p ipvlan-rs --test kernel'
set -uo pipefail
cd "$(dirname "$0")/.."
n=${N:-20}
read -r -a what <<<"${TESTS:---workspace}"
logs=target/test-repeat
mkdir -p "$logs"
cargo test --locked "${what[@]}" --no-run -q || exit 1
passed=0 failed=0
t0=$(date +%s)
for ((k = 1; k <= n; k++)); do
  if cargo test --locked "${what[@]}" >"$logs/run-$k.log" 2>&1; then
    passed=$((passed + 1))
    rm -f "$logs/run-$k.log"
    echo "run $k/$n: ok"
  else
    failed=$((failed + 1))
    echo "run $k/$n: FAILED (log: $logs/run-$k.log)"
    grep -E '^(test .* FAILED|---- |panicked at|thread .* panicked)' "$logs/run-$k.log" | head -20 | sed 's/^/  | /'
  fi
done
echo "test-repeat (${what[*]}): $n runs in $(($(date +%s) - t0)) s"
echo "repeat: $passed passed, $failed failed"
((failed == 0))
