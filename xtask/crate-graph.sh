#!/usr/bin/env bash
# Holds the workspace's crate graph to what docs/architecture.md promises:
#   - the ingest service (vigil-ingest) links the shared model (vigil-model)
#     and never the phone SDK (vigil-core), nor Bluetooth;
#   - the shared model links no database, HTTP client, async runtime or
#     Bluetooth stack: it is logic and formats only.
# Exit status 1, naming the offending edge, when either breaks.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# tree CRATE: every package CRATE pulls in (normal, build and dev edges),
# one name per line.
tree() {
  cargo tree --locked -p "$1" -e normal,build,dev --prefix none --format '{p}' |
    awk '{print $1}' | sort -u
}

ingest=$(tree vigil-ingest)
grep -qx 'vigil-model' <<<"$ingest" || {
  echo "crate graph: vigil-ingest no longer depends on vigil-model" >&2
  fail=1
}
for banned in vigil-core vigil-bindings btleplug; do
  if grep -qx "$banned" <<<"$ingest"; then
    echo "crate graph: vigil-ingest depends on $banned:" >&2
    cargo tree --locked -p vigil-ingest -e normal,build,dev -i "$banned" >&2 || true
    fail=1
  fi
done

model=$(cargo tree --locked -p vigil-model -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in vigil-core rusqlite reqwest tokio btleplug axum; do
  if grep -qx "$banned" <<<"$model"; then
    echo "crate graph: vigil-model depends on $banned" >&2
    fail=1
  fi
done

if ((fail == 0)); then
  echo "crate graph: vigil-ingest -> vigil-model, no vigil-core; vigil-model free of I/O crates"
fi
exit "$fail"
