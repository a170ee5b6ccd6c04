#!/usr/bin/env bash
# Builds the vigil-ingest binary and validates every FHIR answer it serves
# with HAPI FHIR's R4 validator (cloud-ingest/fhir-validator): a JUnit test
# starts the real service, puts two weeks of CGM in through its Nightscout
# intake over loopback HTTP, reads the searchset, the $cgm-summary and the
# Patient as a clinician, and fails on any ERROR, FATAL or unlisted warning.
# Needs java and mvn (Debian: default-jdk-headless maven); fails loudly
# without them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for tool in java mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-fhir-validator.sh: '$tool' not found; install it (Debian: apt-get install default-jdk-headless maven)" >&2
        exit 1
    fi
done

target_dir="${CARGO_TARGET_DIR:-$root/target}"
cargo build -p vigil-ingest --locked
bin="$target_dir/debug/vigil-ingest"
[ -x "$bin" ] || { echo "test-fhir-validator.sh: $bin was not built" >&2; exit 1; }

# Maven uses its local repository when it has everything (offline-friendly);
# otherwise it fetches HAPI FHIR and its dependencies from Maven Central once.
offline=()
if [ "${VIGIL_MVN_OFFLINE:-}" = 1 ]; then offline=(-o); fi
mvn -q -B "${offline[@]}" -f cloud-ingest/fhir-validator/pom.xml \
    -Dvigil.ingest="$bin" test
echo "test-fhir-validator.sh: HAPI FHIR's R4 validator accepts vigil-ingest's FHIR"
