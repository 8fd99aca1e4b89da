#!/bin/bash
# Short fuzz run of every target in fuzz/ (cargo-fuzz + libFuzzer), on the
# stable toolchain: `-s none` (no sanitizer) needs no -Z flag, so no nightly.
# Fails loudly when a target cannot be built or run, when a target runs no
# input, or when the fuzzer finds a crash (the input is left in
# fuzz/artifacts/<target>/, reproduce with
# `cargo fuzz run -s none -a <target> fuzz/artifacts/<target>/<file>`).
#
#   tests/fuzz-short.sh                      # every target, 20 s each
#   FUZZ_SECONDS=600 tests/fuzz-short.sh decode   # one target, 10 minutes
#
# cargo-fuzz is installed with `cargo install cargo-fuzz --locked` if
# missing. Seeds: fuzz/seeds/<target>/ (from the engine captures, see
# fuzz/make_seeds.py); what a run finds is kept in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_TERM_COLOR=never

secs=${FUZZ_SECONDS:-20}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode network_options ipam_config)

fail() { echo "fuzz-short: FAIL: $*" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-short: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || fail "cannot install cargo-fuzz"
fi
command -v c++ >/dev/null || fail "libfuzzer-sys needs a C++ compiler (apt-get install g++)"

# -s none: no sanitizer (stable toolchain); -a: debug assertions, so
# integer overflow panics instead of wrapping. -timeout=60: one input taking a
# minute is a hang (an input normally takes microseconds); a shorter limit could
# be crossed by a loaded machine and report a "timeout" crash that is none.
flags=(-s none -a)
echo "fuzz-short: $(cargo fuzz --version), $(rustc --version), ${secs}s per target"
cargo fuzz build "${flags[@]}" || fail "cannot build the fuzz targets"

declare -A execs
for t in "${targets[@]}"; do
  [ -d "seeds/$t" ] || fail "no seeds for target $t (fuzz/seeds/$t)"
  mkdir -p "corpus/$t"
  log=$(mktemp)
  echo "fuzz-short: $t for ${secs}s"
  if ! cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    rm -f "$log"
    fail "$t: the fuzzer failed or found a crash (see fuzz/artifacts/$t/)"
  fi
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  rm -f "$log"
  [ -n "$n" ] && [ "$n" -gt 0 ] || fail "$t ran no input"
  execs[$t]=$n
  echo "fuzz-short: $t: $n execs ($rate/s), $cov, corpus $(ls "corpus/$t" | wc -l) files, no crash"
done

echo "fuzz-short: summary"
for t in "${targets[@]}"; do
  printf '  %-16s %12s execs\n' "$t" "${execs[$t]}"
done
echo "fuzz: ${#targets[@]} passed, 0 failed"
