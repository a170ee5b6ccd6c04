#!/usr/bin/env bash
# What Vigil costs a phone app, measured on the host:
#   1. the bindings library (cdylib) built with the phone profile
#      ([profile.mobile]: opt-level "z", fat LTO, one codegen unit,
#      panic=abort, symbols stripped), stripped again with `strip` to be
#      sure, and its size against the 6 MB aim;
#   2. the resident memory of a running SDK with one simulated CGM and one
#      heart-rate strap (bench/footprint, same profile).
#
# Usage: bench/footprint.sh [--hours N]     (simulated hours, default 24)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
aim_bytes=$((6 * 1024 * 1024))

cargo build --quiet --profile mobile -p vigil-bindings --lib
case "$(uname -s)" in
    Darwin) lib="target/mobile/libvigil_bindings.dylib" ;;
    *) lib="target/mobile/libvigil_bindings.so" ;;
esac
stripped="target/mobile/libvigil_bindings.stripped"
cp "$lib" "$stripped"
strip "$stripped" 2>/dev/null || strip -x "$stripped"
size=$(wc -c <"$stripped")
echo "bindings library ($(uname -m), mobile profile, stripped): $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB)"
if ((size > aim_bytes)); then
    echo "  above the 6 MiB aim" >&2
else
    echo "  within the 6 MiB aim"
fi

cargo build --quiet --profile mobile -p vigil-footprint
./target/mobile/footprint-rss "$@"
