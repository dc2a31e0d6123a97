#!/usr/bin/env bash
# bench/wire: JSON+zstd vs protobuf+zstd agent batches on the MITRE EVTX corpus (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${DOZOR_SHARED_DIR:-$here/../../../shared}"
corpus="${CORPUS:-$shared/datasets/evtx-to-mitre-attack}"
[ -d "$corpus" ] || { echo "no corpus at $corpus (set DOZOR_SHARED_DIR or CORPUS)" >&2; exit 2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --locked --manifest-path "$here/Cargo.toml" >&2
fi
echo "command: bench/wire/target/release/dozor-bench-wire --runs ${RUNS:-9} --batch ${BATCH:-500} --level ${LEVEL:-3} $corpus"
"$here/target/release/dozor-bench-wire" --runs "${RUNS:-9}" --batch "${BATCH:-500}" \
    --level "${LEVEL:-3}" "$corpus"
