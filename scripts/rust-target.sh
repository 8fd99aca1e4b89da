#!/bin/bash
# make build: the Rust standard library for TARGET must be installed before
# cargo can build for it. With rustup, add it when missing (a clean CI machine
# has only the host's); without rustup, say what is missing. The arm64 target
# links with rust-lld, which comes with the toolchain (.cargo/config.toml), so
# no cross C toolchain is needed: every dependency is pure Rust.
#   rust-target.sh TARGET
set -euo pipefail
target=$1
sysroot=$(rustc --print sysroot)
[[ -d $sysroot/lib/rustlib/$target/lib ]] && exit 0
if command -v rustup >/dev/null; then
  echo "rust-target: adding the Rust target $target"
  rustup target add "$target"
else
  echo "rust-target: the Rust target $target is not installed in $sysroot and there is no rustup to add it" >&2
  exit 1
fi
