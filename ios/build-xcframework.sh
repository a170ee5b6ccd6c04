#!/usr/bin/env bash
# Builds VigilFFI_ffi.xcframework for the Swift package: the Rust core as a
# static library for iOS devices (aarch64-apple-ios) and the simulator
# (aarch64-apple-ios-sim and x86_64-apple-ios, merged with lipo), with the
# phone release profile ([profile.mobile] in the root Cargo.toml); then
# the uniffi Swift bindings, their C header and module map.
#
# Needs macOS with Xcode, and:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#
# Usage: ios/build-xcframework.sh [--profile <cargo profile>]   (default: mobile)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="mobile"
if [[ "${1:-}" == "--profile" ]]; then
    profile="${2:?--profile needs a value}"
fi

die() { echo "build-xcframework.sh: $*" >&2; exit 1; }

[[ "$(uname -s)" == "Darwin" ]] || die "needs macOS with Xcode (xcodebuild, lipo); this is $(uname -s)"
command -v xcodebuild >/dev/null || die "xcodebuild is missing: install Xcode and run xcode-select"
command -v lipo >/dev/null || die "lipo is missing: install the Xcode command line tools"
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
for target in "${targets[@]}"; do
    rustup target list --installed | grep -qx "$target" \
        || die "Rust target $target is missing: rustup target add $target"
done

lib="libvigil_bindings.a"
out="$root/target/xcframework"
generated="$here/Sources/Vigil/Generated"
xcframework="$here/VigilFFI_ffi.xcframework"
rm -rf "$out" "$xcframework"
mkdir -p "$out/headers" "$out/simulator" "$generated"

cd "$root"
# The phone feature set (no btleplug, no simulated peripherals:
# `TransportMode::Simulated` answers `NotAvailable`) for the device slice,
# which is what ships in an app. The simulator slices, which never reach a
# phone, keep the simulated transport so the XCTests and demos on the iOS
# Simulator can pair simulated sensors.
# (A string, not an array: macOS's bash 3.2 refuses an empty array under
# `set -u`.)
for target in "${targets[@]}"; do
    features=""
    case "$target" in
        *-ios-sim | x86_64-apple-ios) features="--features simulation" ;;
    esac
    echo "==> $target ($profile profile${features:+, simulation})"
    # shellcheck disable=SC2086 # $features is empty or two words
    cargo build --profile "$profile" -p vigil-bindings --lib --no-default-features $features --target "$target"
done

echo "==> simulator slices merged with lipo"
lipo -create \
    "target/aarch64-apple-ios-sim/$profile/$lib" \
    "target/x86_64-apple-ios/$profile/$lib" \
    -output "$out/simulator/$lib"

# The phone profile strips symbols, and with them the uniffi metadata;
# a host build of the same sources carries it.
echo "==> Swift bindings, header and module map"
cargo build -p vigil-bindings
cargo run --quiet -p vigil-bindings --bin uniffi-bindgen -- \
    generate --library "target/debug/libvigil_bindings.dylib" --language swift --out-dir "$out/swift"
mv "$out"/swift/*.swift "$generated/"
mv "$out"/swift/*.h "$out/headers/"
# xcframework headers need the module map under its conventional name.
cat "$out"/swift/*.modulemap > "$out/headers/module.modulemap"

echo "==> $xcframework"
xcodebuild -create-xcframework \
    -library "target/aarch64-apple-ios/$profile/$lib" -headers "$out/headers" \
    -library "$out/simulator/$lib" -headers "$out/headers" \
    -output "$xcframework"

echo "==> done: $xcframework and $generated"
