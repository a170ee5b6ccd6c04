#!/usr/bin/env bash
# What Vigil costs a phone app, measured on the host:
#   1. the bindings library (cdylib) built as a phone build builds it:
#      the phone feature set (`--no-default-features`: host-fed transport,
#      no btleplug or libdbus, no simulated peripherals) and the phone
#      profile ([profile.mobile]: opt-level "z", fat LTO, one codegen
#      unit, panic=abort, symbols stripped), stripped again with
#      `strip` to be sure, and its size against the 4 MB limit (exit
#      status 1 above it);
#   2. the resident memory of a running SDK with one simulated CGM and one
#      heart-rate strap (bench/footprint, same profile, with the core's
#      default features: it needs the simulation).
#
# Usage: bench/footprint.sh [--hours N]     (simulated hours, default 24)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit_bytes=4000000

cargo build --quiet --locked --profile mobile -p vigil-bindings --lib --no-default-features
case "$(uname -s)" in
    Darwin) lib="target/mobile/libvigil_bindings.dylib" ;;
    *) lib="target/mobile/libvigil_bindings.so" ;;
esac
stripped="target/mobile/libvigil_bindings.stripped"
cp "$lib" "$stripped"
strip "$stripped" 2>/dev/null || strip -x "$stripped"
size=$(wc -c <"$stripped")
echo "bindings library ($(uname -m), mobile profile, stripped): $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB)"
over_limit=0
if ((size > limit_bytes)); then
    echo "  above the 4 MB limit ($limit_bytes bytes)" >&2
    over_limit=1
else
    echo "  within the 4 MB limit ($limit_bytes bytes)"
fi

cargo build --quiet --profile mobile -p vigil-footprint
./target/mobile/footprint-rss "$@"
exit "$over_limit"
