#!/usr/bin/env bash
# Runs every test Vigil has, on a fresh Debian machine.
#
# Installs what the suite needs from Debian's packages when run as root;
# otherwise names what is missing and fails. Nothing is skipped silently:
# a step that cannot run fails the whole command.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's heading carries the minutes and seconds since the start, so a
# slow step shows in CI's log.
started=$SECONDS
say() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }

# need CMD PACKAGE: make sure CMD exists, installing PACKAGE when root.
need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ -z "${VIGIL_APT_UPDATED:-}" ]; then
      apt-get update -qq
      export VIGIL_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  else
    echo "missing: '$cmd' (Debian package '$pkg'); install it or run this as root" >&2
    exit 1
  fi
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "missing: cargo (install Rust with rustup: https://rustup.rs)" >&2
  exit 1
fi
need cc gcc
need c++ g++
need pkg-config pkg-config
# The btleplug suite runs the real Linux backend against an emulated BlueZ
# on a private system bus (tests/fake-bluez); libdbus itself is vendored.
need dbus-daemon dbus-daemon
# The ingest service's PostgreSQL tests start a throwaway server
# (tests/pg-harness); Debian keeps initdb off PATH, under
# /usr/lib/postgresql/<version>/bin.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  need initdb postgresql
fi
# The dashboard's browser test (cloud-ingest/tests/browser.rs) drives the
# system Chromium headless over the DevTools protocol; nothing downloads one.
need chromium chromium
# The Kotlin bindings are compiled and run on the JVM against the host
# library (android/jvm-tests), and the service's FHIR is validated by HAPI
# FHIR on the JVM (cloud-ingest/fhir-validator); the Swift symbol check is a
# Python script.
need java default-jdk-headless
need mvn maven
need python3 python3

say "format"
cargo fmt --all -- --check

say "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "phone feature set: the core without btleplug and simulation, both transports refused by type"
cargo test -p vigil-core --no-default-features --locked --test phone_features

say "crate graph: the cloud links the shared model, never the phone SDK"
bash xtask/crate-graph.sh

say "unit, property, fuzz and integration tests"
cargo test --workspace --locked

say "benchmarks compile and run once (figures: bench/RESULTS.md)"
cargo test --workspace --benches --locked

say "Kotlin bindings and the Kotlin layer, compiled and tested on the JVM"
bash bindings/test-kotlin.sh

say "FHIR output validated by HAPI FHIR's R4 validator"
bash cloud-ingest/test-fhir-validator.sh

say "Android layer compiled against the Android 14 framework (API 34) and tested under Robolectric"
bash android/test-framework.sh

say "Swift wrapper uses only symbols the generated Swift bindings declare"
bash ios/check-swift-symbols.sh

say "libFuzzer targets build, and each survives a short uninstrumented run"
# Not --locked: the fuzz crate is its own workspace whose lock trails the
# core's dependencies; cargo adds only what a core change needs.
cargo build --manifest-path core/fuzz/Cargo.toml
for target in core/fuzz/fuzz_targets/*.rs; do
  name=$(basename "$target" .rs)
  core/fuzz/target/debug/"$name" -runs=20000 -seed=1 2>/dev/null \
    || { echo "fuzz target $name failed" >&2; exit 1; }
done

say "all tests passed"
