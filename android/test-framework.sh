#!/usr/bin/env bash
# The Android layer against the Android framework, without the Android SDK:
# compiles every Kotlin source under android/vigil (generated bindings,
# src/main, src/androidOnly) against Robolectric's Android 14 (API 34)
# framework jar and the AndroidX AARs' classes, warnings as errors, then runs
# the Robolectric tests (android/framework-tests) through the host build of
# libvigil_bindings. First proves that the build rejects a source calling a
# BluetoothGatt method that does not exist. Maven fetches everything it
# needs; nothing else is downloaded. Needs java and mvn.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for tool in java mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-framework.sh: '$tool' not found; install it (Debian: apt-get install default-jdk-headless maven)" >&2
        exit 1
    fi
done

# The tests run on Java 21 or newer (Robolectric's newest framework classes,
# which its shadows name, are Java 21 class files); Maven and the compiler
# keep the default java.
test_java="${VIGIL_TEST_JAVA:-}"
if [ -z "$test_java" ]; then
    for candidate in /usr/lib/jvm/*/bin/java; do
        [ -x "$candidate" ] || continue
        major="$("$candidate" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
        if [ "${major:-0}" -ge 21 ] 2>/dev/null; then test_java="$candidate"; break; fi
    done
fi
[ -n "$test_java" ] || {
    echo "test-framework.sh: no Java 21 or newer under /usr/lib/jvm; set VIGIL_TEST_JAVA (Debian: a temurin or openjdk-21+ JDK)" >&2
    exit 1
}

target_dir="${CARGO_TARGET_DIR:-$root/target}"
cargo build -p vigil-bindings -p vigil-ingest --locked
lib="$target_dir/debug/libvigil_bindings.so"
[ -f "$lib" ] || { echo "test-framework.sh: $lib was not built" >&2; exit 1; }
out="$target_dir/uniffi/kotlin"
rm -rf "$out"
cargo run -q -p vigil-bindings --locked --bin uniffi-bindgen -- \
    generate --library "$lib" --language kotlin --no-format --out-dir "$out"

offline=()
if [ "${VIGIL_MVN_OFFLINE:-}" = 1 ]; then offline=(-o); fi
pom=android/framework-tests/pom.xml
props=(-Dvigil.generated="$out" -Dvigil.libdir="$target_dir/debug" -Dvigil.ingest="$target_dir/debug/vigil-ingest"
    -Dvigil.test.jvm="$test_java")

# Fetch the AndroidX AARs and take out their classes.jar (Maven resolves a
# plugin's dependencies before it runs, so this is its own invocation).
mvn -q -B "${offline[@]}" -f "$pom" "${props[@]}" initialize

# A misspelt BluetoothGatt method must fail the build.
probe_log="$(mktemp)"
if mvn -q -B "${offline[@]}" -f "$pom" "${props[@]}" \
    -Dvigil.probe="$root/android/framework-tests/src/probe-misspelt/kotlin" compile >"$probe_log" 2>&1; then
    echo "test-framework.sh: a source calling BluetoothGatt.discoverService (no such method) compiled" >&2
    exit 1
fi
grep -q "Unresolved reference 'discoverService'" "$probe_log" || {
    echo "test-framework.sh: the misspelt-API probe failed for another reason:" >&2
    cat "$probe_log" >&2
    exit 1
}
rm -f "$probe_log"
echo "test-framework.sh: a misspelt BluetoothGatt method fails the build, as it must"

mvn -B "${offline[@]}" -f "$pom" "${props[@]}" test
echo "test-framework.sh: Android layer compiled against API 34 and its Robolectric tests passed"
