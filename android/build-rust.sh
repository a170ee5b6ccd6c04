#!/usr/bin/env bash
# Builds libvigil_bindings.so for the Android ABIs with cargo-ndk, using the
# phone release profile ([profile.mobile] in the root Cargo.toml), into the
# library module's jniLibs, then generates the Kotlin bindings from the
# built library into the module's generated source directory.
#
# Needs: rustup targets aarch64-linux-android, armv7-linux-androideabi,
# x86_64-linux-android; cargo-ndk (cargo install cargo-ndk); an NDK
# (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>).
#
# Usage: android/build-rust.sh [--profile <cargo profile>]   (default: mobile)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="mobile"
if [[ "${1:-}" == "--profile" ]]; then
    profile="${2:?--profile needs a value}"
fi

die() { echo "build-rust.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
cargo ndk --version >/dev/null 2>&1 \
    || die "cargo-ndk is missing: install it with 'cargo install cargo-ndk'"
if [[ -z "${ANDROID_NDK_HOME:-}" ]]; then
    ndk_root="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}/ndk"
    if [[ -d "$ndk_root" ]] && latest="$(ls -1 "$ndk_root" | sort -V | tail -n 1)" && [[ -n "$latest" ]]; then
        export ANDROID_NDK_HOME="$ndk_root/$latest"
    else
        die "no Android NDK found: set ANDROID_NDK_HOME (or install one under \$ANDROID_HOME/ndk)"
    fi
fi
for target in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" \
        || die "Rust target $target is missing: rustup target add $target"
done

jni_libs="$here/vigil/src/main/jniLibs"
generated="$here/vigil/build/generated/source/uniffi/kotlin"

cd "$root"
echo "==> native libraries ($profile profile) into $jni_libs"
cargo ndk \
    --platform 26 \
    -t arm64-v8a -t armeabi-v7a -t x86_64 \
    -o "$jni_libs" \
    build --profile "$profile" -p vigil-bindings --lib --no-default-features

# Bindings come from a library's embedded uniffi metadata, which the
# phone profile strips; a host build of the same sources carries it.
echo "==> Kotlin bindings into $generated"
cargo build -p vigil-bindings
case "$(uname -s)" in
    Darwin) host_lib="$root/target/debug/libvigil_bindings.dylib" ;;
    *) host_lib="$root/target/debug/libvigil_bindings.so" ;;
esac
rm -rf "$generated"
mkdir -p "$generated"
cargo run --quiet -p vigil-bindings --bin uniffi-bindgen -- \
    generate --library "$host_lib" --language kotlin --no-format --out-dir "$generated"

echo "==> done: $(find "$jni_libs" -name '*.so' | wc -l) libraries, $(find "$generated" -name '*.kt' | wc -l) Kotlin files"
