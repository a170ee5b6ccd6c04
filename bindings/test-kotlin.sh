#!/usr/bin/env bash
# Builds the host cdylib, generates the Kotlin bindings into target/, and
# runs the JVM tests (android/jvm-tests) against it, one of them syncing to
# a real vigil-ingest process: the generated code and
# the platform-independent Kotlin layer, compiled from the same source tree
# the Android library uses. Needs java and mvn (Debian: default-jdk-headless
# maven); fails loudly without them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for tool in java mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-kotlin.sh: '$tool' not found; install it (Debian: apt-get install default-jdk-headless maven)" >&2
        exit 1
    fi
done

target_dir="${CARGO_TARGET_DIR:-$root/target}"
# The bindings, and the real ingest service the sync test talks to.
cargo build -p vigil-bindings -p vigil-ingest --locked
lib="$target_dir/debug/libvigil_bindings.so"
[ -f "$lib" ] || { echo "test-kotlin.sh: $lib was not built" >&2; exit 1; }

out="$target_dir/uniffi/kotlin"
rm -rf "$out"
cargo run -q -p vigil-bindings --locked --bin uniffi-bindgen -- \
    generate --library "$lib" --language kotlin --no-format --out-dir "$out"

# Maven uses its local repository when it has everything (offline-friendly);
# otherwise it fetches from Maven Central once.
offline=()
if [ "${VIGIL_MVN_OFFLINE:-}" = 1 ]; then offline=(-o); fi
mvn -q -B "${offline[@]}" -f android/jvm-tests/pom.xml \
    -Dvigil.generated="$out" -Dvigil.libdir="$target_dir/debug" \
    -Dvigil.ingest="$target_dir/debug/vigil-ingest" test
echo "test-kotlin.sh: Kotlin JVM tests passed"
