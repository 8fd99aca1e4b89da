# ipvlan-rs: build, bundle, install and test the Docker network plugin.
# `make install` and `make test` are the two commands a newcomer needs.

# ARCH: the platform the plugin is built for, amd64 (default) or arm64. A managed
# plugin is single-platform (the engine reads single-platform manifests only,
# moby#44870), so arm64 gets tags of its own: latest-arm64, VERSION-arm64.
ARCH        ?= amd64
ifneq ($(filter $(ARCH),amd64 x86_64),)
TARGET      := x86_64-unknown-linux-gnu
ELF_MACHINE := x86-64
ARCH_SUFFIX :=
else ifneq ($(filter $(ARCH),arm64 aarch64),)
TARGET      := aarch64-unknown-linux-musl
ELF_MACHINE := ARM aarch64
ARCH_SUFFIX := -arm64
else
$(error ARCH=$(ARCH): amd64 or arm64)
endif

PLUGIN_NAME ?= org/ipvlan-rs
PLUGIN_TAG  ?= latest$(ARCH_SUFFIX)
DOCKER      ?= docker
REGISTRY    ?=
VERSION     ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
BINARY      := target/$(TARGET)/release/ipvlan-rs
BUNDLE      ?= target/bundle$(ARCH_SUFFIX)
PLUGIN_REF  := $(if $(REGISTRY),$(REGISTRY)/)$(PLUGIN_NAME)

export CARGO_TERM_COLOR ?= never

.PHONY: all build bundle create enable install push release test test-unit test-repeat test-vm test-powercut test-fuzz e2e e2e-swarm soak bench lint clean
.PHONY: test-unit-arm64 test-vm-arm64 audit

all: build

## build: the static release binary (runs in a FROM scratch rootfs) for ARCH;
##   the Rust target is added if missing (arm64 links with rust-lld, which ships
##   with the toolchain: .cargo/config.toml)
build:
	scripts/rust-target.sh $(TARGET)
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target $(TARGET) -p ipvlan-rs
	@file $(BINARY) 2>/dev/null | grep -Eq 'statically linked|static-pie linked' || { echo "$(BINARY) is not static" >&2; exit 1; }
	@file $(BINARY) 2>/dev/null | grep -q '$(ELF_MACHINE)' || { echo "$(BINARY) is not a $(ELF_MACHINE) binary" >&2; exit 1; }

## bundle: target/bundle/{config.json,rootfs/} for `docker plugin create`
bundle: build
	rm -rf $(BUNDLE)
	mkdir -p $(BUNDLE)/rootfs/run/docker/plugins $(BUNDLE)/rootfs/var/lib/ipvlan-rs $(BUNDLE)/rootfs/etc
	install -m 0755 $(BINARY) $(BUNDLE)/rootfs/ipvlan-rs
	: > $(BUNDLE)/rootfs/etc/hosts
	: > $(BUNDLE)/rootfs/etc/resolv.conf
	cp config.json $(BUNDLE)/config.json

## create: (re)create the plugin in the engine from the bundle; a plugin that
## exists keeps its state (pools, addresses, endpoints) and its settings
create: bundle
	DOCKER='$(DOCKER)' scripts/create-plugin.sh $(PLUGIN_REF):$(PLUGIN_TAG) $(BUNDLE)

## enable: enable the created plugin (if it is not already)
enable:
	$(DOCKER) plugin inspect -f '{{.Enabled}}' $(PLUGIN_REF):$(PLUGIN_TAG) | grep -qx true || \
	  $(DOCKER) plugin enable $(PLUGIN_REF):$(PLUGIN_TAG)

## install: build + bundle + create + enable in the local engine (re-runnable)
install: create enable
	@echo "installed $(PLUGIN_REF):$(PLUGIN_TAG); a first network: README.md, Quick start"

## push: build, bundle, (re)create $(REGISTRY)/$(PLUGIN_NAME):$(PLUGIN_TAG) in the
##   engine and push it (needs `docker login REGISTRY` where the registry asks)
push: create
	$(DOCKER) plugin push $(PLUGIN_REF):$(PLUGIN_TAG)

## release: create $(PLUGIN_REF):$(VERSION) and :latest from one bundle and push both
##   (CI: make release REGISTRY=ghcr.io PLUGIN_NAME=owner/ipvlan-rs VERSION=1.2.3;
##   ARCH=arm64: :$(VERSION)-arm64 and :latest-arm64). Each tag
##   is removed from the engine after its push: an engine refuses a second plugin with a
##   byte-identical rootfs. Tags that already exist in the engine are not touched.
RELEASE_TAGS = $(VERSION)$(ARCH_SUFFIX) latest$(ARCH_SUFFIX)
release: bundle
	@test -n "$(VERSION)" || { echo "release: VERSION is empty" >&2; exit 1; }
	@for t in $(RELEASE_TAGS); do \
	  if $(DOCKER) plugin inspect $(PLUGIN_REF):$$t >/dev/null 2>&1; then \
	    echo "release: $(PLUGIN_REF):$$t already exists in this engine; remove it first" >&2; exit 1; \
	  fi; \
	done
	@set -e; for t in $(RELEASE_TAGS); do \
	  echo "release: $(PLUGIN_REF):$$t"; \
	  $(DOCKER) plugin create $(PLUGIN_REF):$$t $(BUNDLE); \
	  $(DOCKER) plugin push $(PLUGIN_REF):$$t || { $(DOCKER) plugin rm $(PLUGIN_REF):$$t; exit 1; }; \
	  $(DOCKER) plugin rm $(PLUGIN_REF):$$t; \
	done

## test: every test: unit, conformance, kernel (netns), kernel-in-VM, power cuts, Docker end-to-end
test: lint test-unit test-unit-arm64 test-vm test-vm-arm64 test-powercut test-fuzz e2e e2e-swarm

test-unit:
	tests/require-root.sh
	@need=; command -v dnsmasq >/dev/null || need="$$need dnsmasq-base"; \
	  command -v dhcpd >/dev/null || need="$$need isc-dhcp-server"; \
	  command -v busybox >/dev/null || need="$$need busybox-static"; \
	  [ -z "$$need" ] || { echo "test-unit: installing$$need (DHCP servers, ping)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need; }
	cargo test --workspace --locked

## test-repeat: the unit, conformance, kernel and crash suites N times in a row
##   (default 20), counting failed runs: for any change that touches timing.
##   TESTS narrows it, e.g. make test-repeat N=20 TESTS='-p ipvlan-rs --test kernel'
N ?= 20
TESTS ?= --workspace
test-repeat:
	tests/require-root.sh
	N=$(N) TESTS='$(TESTS)' tests/repeat.sh

## test-vm: ipvlan/802.1Q/dummy cases on a real Debian kernel under qemu
test-vm:
	tests/vm-guest/run.sh

## test-unit-arm64: the unit and integration tests of the library crates
##   (protocol, store, ipam, driver) built for aarch64-unknown-linux-musl and
##   run under qemu-aarch64 (Debian's qemu-user, installed if missing). The
##   plugin's system tests spawn the plugin binary, which qemu-user cannot
##   follow into (no binfmt_misc); the kernel cases on arm64 are test-vm-arm64's
ARM64_UNIT_CRATES ?= -p ipvlan-rs-protocol -p ipvlan-rs-store -p ipvlan-rs-ipam -p ipvlan-rs-driver
test-unit-arm64:
	command -v qemu-aarch64 >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user; }
	scripts/rust-target.sh aarch64-unknown-linux-musl
	cargo test --locked --target aarch64-unknown-linux-musl $(ARM64_UNIT_CRATES) --lib --tests

## test-vm-arm64: the same VM cases with the guest program built for arm64, on
##   Debian's arm64 kernel under qemu-system-aarch64 (TCG)
test-vm-arm64:
	ARCH=arm64 tests/vm-guest/run.sh

## test-powercut: the plugin in the VM with its state on a virtio disk (ext4
##   and xfs), the power cut POWERCUT_CUTS times each (default 33; make soak
##   500), every acknowledged change checked at the next boot (issue #18);
##   then one run of POWERCUT_REPLAY_CALLS calls (default 30; make soak 200)
##   recorded under dm-log-writes and the store checked at every state of the
##   disk a cut could leave (every flush, FUA write and acknowledgement)
POWERCUT_CUTS ?= 33
POWERCUT_REPLAY_CALLS ?= 30
test-powercut: build
	POWERCUT_CUTS=$(POWERCUT_CUTS) POWERCUT_REPLAY_CALLS=$(POWERCUT_REPLAY_CALLS) \
	  POWERCUT_REPLAY_POINTS=all tests/powercut/run.sh

## test-fuzz: every cargo-fuzz target for 20 s (FUZZ_SECONDS=600 for a long run)
test-fuzz:
	tests/fuzz-short.sh

## e2e: real-Docker end-to-end suite: private dockerds (20.10, 28.5), a local registry, the bundle
e2e: bundle
	tests/require-root.sh
	tests/e2e/run.sh

## e2e-swarm: the plugin in a three-node Swarm (each node a private dockerd in a
## netns, the plugin installed on each from a local registry), global and local scope
e2e-swarm: bundle
	tests/require-root.sh
	tests/e2e/swarm.sh

## soak: the long versions: CRASH_KILLS kill -9 storms (default 200) on one
## state dir, SOAK_POWERCUTS power cuts per file system (default 500), a
## replay check of SOAK_REPLAY_CALLS recorded calls at every state (default
## 200), and FUZZ_SECONDS of fuzzing per target (default 600)
CRASH_KILLS ?= 200
SOAK_POWERCUTS ?= 500
SOAK_REPLAY_CALLS ?= 200
FUZZ_SECONDS ?= 600
soak: build
	tests/require-root.sh
	CRASH_KILLS=$(CRASH_KILLS) cargo test --locked -p ipvlan-rs --test crash_ipam --test crash_driver -- --nocapture
	POWERCUT_CUTS=$(SOAK_POWERCUTS) POWERCUT_REPLAY_CALLS=$(SOAK_REPLAY_CALLS) \
	  POWERCUT_REPLAY_POINTS=all tests/powercut/run.sh
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz-short.sh

## bench: benchmarks (not tests): load generators against the release binary;
## each prints ratios against a baseline of the same run and records its
## report in BENCHMARKS.md. BENCH=ipam runs one of them; `docker` starts
## private dockerds of the test rig (as root); `instructions` runs the
## plugin under valgrind's callgrind (installed if missing); `dhcp` runs
## dnsmasq beyond a veth parent (installed if missing).
BENCH ?= ipam lifecycle store instructions footprint docker dhcp
bench: build
	case " $(BENCH) " in *" instructions "*) command -v callgrind_control >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind; } ;; esac
	case " $(BENCH) " in *" dhcp "*) command -v dnsmasq >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends dnsmasq-base; } ;; esac
	cargo build --release --locked -p ipvlan-rs-bench
	for b in $(BENCH); do target/release/ipvlan-rs-bench --plugin $(BINARY) --record BENCHMARKS.md $$b || exit 1; done

## audit: cargo audit (RustSec advisories) of Cargo.lock. AUDIT_DB=DIR: a local
##   copy of the advisory database (a clone of github.com/rustsec/advisory-db),
##   not fetched; without it, the live database if this machine reaches it.
##   Installs cargo-audit (crates.io) if missing. Allowed warnings: README, Security.
AUDIT_DB ?=
CARGO_AUDIT_VERSION ?= 0.22.2
audit:
	AUDIT_DB='$(AUDIT_DB)' CARGO_AUDIT_VERSION='$(CARGO_AUDIT_VERSION)' scripts/audit.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	# the fuzz targets are a workspace of their own: built here so a change
	# to a type they match on fails the lint, not the fuzz run
	cargo check --manifest-path fuzz/Cargo.toml --bins --locked

clean:
	cargo clean
