#!/usr/bin/env bash
# The Swift symbol check that runs without a Swift compiler: generates the
# Swift bindings from the host build of libvigil_bindings, then checks that
# every generated symbol the wrapper (Sources/Vigil/*.swift, and the tests)
# uses exists there, failing with the missing names; the same for the
# Swift snippet in docs/mobile.md. Also runs the
# checker's own tests, which prove it fails on a drifted wrapper.
#
# Usage: ios/check-swift-symbols.sh      (from anywhere; ~1 min on a warm target/)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/uniffi/swift"

cd "$root"
cargo build --quiet -p vigil-bindings
case "$(uname -s)" in
    Darwin) lib="target/debug/libvigil_bindings.dylib" ;;
    *) lib="target/debug/libvigil_bindings.so" ;;
esac
rm -rf "$out"
cargo run --quiet -p vigil-bindings --bin uniffi-bindgen -- \
    generate --library "$lib" --language swift --no-format --out-dir "$out"
# One file per uniffi component: the shared vocabulary (VigilModel.swift),
# the core's types (VigilCore.swift) and the SDK object (VigilFFI.swift).
# All compile into the one `Vigil` module, so the wrapper may use a symbol
# of any of them: check against them together.
for f in VigilModel VigilCore VigilFFI; do
    [[ -f "$out/$f.swift" ]] || { echo "expected $f.swift in $out" >&2; exit 1; }
done
generated="$root/target/uniffi/swift-generated-all.swift"
cat "$out"/*.swift >"$generated"

python3 "$here/symbols/check_swift_symbols.py" \
    --generated "$generated" \
    --platform-names "$here/symbols/platform-names.txt" \
    "$here"/Sources/Vigil/*.swift "$here"/Tests/VigilTests/*.swift

# The "iOS in a few lines" snippet in docs/mobile.md must match too.
snippet="$root/target/uniffi/docs-mobile-snippet.swift"
awk '/^```swift/{f=1;next} /^```/{f=0} f' "$root/docs/mobile.md" >"$snippet"
[[ -s "$snippet" ]] || { echo "no Swift snippet found in docs/mobile.md" >&2; exit 1; }
python3 "$here/symbols/check_swift_symbols.py" \
    --generated "$generated" \
    --platform-names "$here/symbols/platform-names.txt" \
    "$here"/Sources/Vigil/*.swift "$snippet"

VIGIL_GENERATED_SWIFT="$generated" PYTHONDONTWRITEBYTECODE=1 \
    timeout 120 python3 -m unittest discover -s "$here/symbols/tests" -t "$here/symbols/tests"
