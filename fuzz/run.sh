#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while, one after the other.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target)
#
# Prints executions and exec/s per target and any crash (the input is kept under
# fuzz/work/artifacts/<target>/); exits non-zero when a target crashed, hung (-timeout) or ran
# out of memory (-rss_limit_mb). Needs cargo-fuzz; runs on stable Rust (`--sanitizer none`:
# coverage-guided, without AddressSanitizer, which would need nightly).
#
# Environment: FUZZ_TARGET_DIR (default $HOME/.cache/dozor-fuzz-target, kept warm between
# runs), DOZOR_SHARED_DIR (EVTX samples found there seed the EVTX target; not committed),
# FUZZ_PROFILE (release, the default, for campaigns; dev for a smoke: builds in a fraction of
# the time, runs several times slower).
set -euo pipefail

cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)
SECS=${1:-600}
[ $# -gt 0 ] && shift
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/dozor-fuzz-target}"
WORK="$FUZZ_DIR/work"
mkdir -p "$WORK"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

# The targets write their scratch files under TMPDIR: a tmpfs when there is one.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

# Real EVTX files make far better seeds than hand-made headers; they stay out of the repository.
SHARED=${DOZOR_SHARED_DIR:-$FUZZ_DIR/../../shared}
if [ -d "$SHARED/datasets" ]; then
    mkdir -p "$WORK/shared-seeds/evtx_file"
    find "$SHARED/datasets" -name '*.evtx' -size -256k -print0 |
        while IFS= read -r -d '' f; do
            cp -n "$f" "$WORK/shared-seeds/evtx_file/$(sha256sum "$f" | cut -c1-16).evtx"
        done
fi

# ingest_json needs the server library (feature `server`).
FLAGS=(--sanitizer none --debug-assertions)
case ${FUZZ_PROFILE:-release} in
    release) ;;
    dev) FLAGS+=(--dev) ;;
    *) echo "error: FUZZ_PROFILE is release or dev, not '$FUZZ_PROFILE'" >&2; exit 2 ;;
esac
[[ " ${TARGETS[*]} " == *" ingest_json "* ]] && FLAGS+=(--features server)

echo "==> building ${#TARGETS[@]} fuzz targets"
cargo fuzz build "${FLAGS[@]}"

# The largest input worth trying, per target (EVTX needs room for a header and a chunk).
max_len() {
    case $1 in
        evtx_file) echo 262144 ;;
        event_xml | ingest_json | spool_segment) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

failed=0
summary=()
for target in "${TARGETS[@]}"; do
    corpora=("$WORK/corpus/$target" "corpus/$target")
    [ -d "$WORK/shared-seeds/$target" ] && corpora+=("$WORK/shared-seeds/$target")
    mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
    log="$WORK/$target.log"
    echo "==> $target for ${SECS}s (log: $log)"
    rc=0
    started=$SECONDS
    cargo fuzz run "${FLAGS[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$target")" \
        -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    secs=$((SECONDS - started))
    runs=${runs:-0}
    rate=$((runs / (secs > 0 ? secs : 1)))
    if [ $rc -eq 0 ]; then
        result=ok
    else
        failed=1
        result="FAILED (exit $rc)"
        grep -E '^==[0-9]+== ERROR|panicked at|deadly signal|Test unit written|SUMMARY' "$log" | head -n 20 >&2 || true
    fi
    line=$(printf '%-14s %6ss %12s runs %8s exec/s  %s' "$target" "$secs" "$runs" "$rate" "$result")
    echo "$line"
    summary+=("$line")
done

echo
echo "==> summary ($SECS s per target)"
printf '%s\n' "${summary[@]}"
exit $failed
