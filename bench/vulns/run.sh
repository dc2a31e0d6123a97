#!/usr/bin/env bash
# bench/vulns: issue 15's bars.
#
#   1. import of a 10,000-result OpenVAS report into the real `dozor server` (release build,
#      embedded SQLite, 127.0.0.1, ephemeral port, temporary data directory): the report is
#      written by crates/gmp/examples/report_bench.rs (GMP 22 shape, 37 MB), imported with
#      `dozor vulns import`, timed end to end (upload, parse, one store transaction, alerts);
#      the server's RSS is read before and after, and its peak (VmHWM) — the bar is < 5 s and
#      < 200 MB. Then the same report again (recorded once: nothing changes) and a second
#      report of the same hosts (every result seen again) for comparison.
#   2. inventory matching: crates/inventory/examples/match_bench.rs — 2,000 installed packages
#      against 100,000 OSV advisories (a generated all.zip), per host — the bar is < 1 s.
#
# SMOKE=1: 500 results, debug builds, no match bench — a check that it still runs.
# Environment: SMOKE, RESULTS (10000), SKIP_BUILD=1, DOZOR_BIN, SKIP_MATCH=1, KEEP=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
smoke="${SMOKE:-0}"
if [[ $smoke == 1 ]]; then
    results="${RESULTS:-500}"; profile=debug; cargo_profile=()
else
    results="${RESULTS:-10000}"; profile=release; cargo_profile=(--release)
fi
dozor="${DOZOR_BIN:-$target/$profile/dozor}"
if [[ -z ${DOZOR_BIN:-} && ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$root" && cargo build "${cargo_profile[@]}" -p dozor-cli >&2)
fi
[[ -x $dozor ]] || { echo "no dozor binary at $dozor" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [[ ${KEEP:-0} == 1 ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

echo "\$ cargo run ${cargo_profile[*]} -p dozor-gmp --example report_bench -- --results $results --out $work/report.xml" >&2
(cd "$root" && cargo run -q "${cargo_profile[@]}" -p dozor-gmp --example report_bench -- \
    --results "$results" --out "$work/report.xml") >&2
size_mb=$(du -m "$work/report.xml" | cut -f1)

DOZOR_LOG=info "$dozor" server --data-dir "$work/data" --listen 127.0.0.1:0 \
    > "$work/server.out" 2> "$work/server.log" &
pid=$!
url=""
for _ in $(seq 1 240); do
    url=$(sed -n 's/^dozor server listening on //p' "$work/server.log" | head -n1)
    [[ -n $url ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.5
done
[[ -n $url ]] || { echo "the server did not start" >&2; exit 1; }
token=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$work/server.log" | head -n1)
curl -sk "$url/api/v1/ca.pem" > "$work/ca.pem"
rss() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
cli() { "$dozor" vulns "$@" --server "$url" --token "$token" --ca "$work/ca.pem"; }
rss_before=$(rss VmRSS)
hwm_before=$(rss VmHWM)

t0=$(date +%s.%N)
cli import "$work/report.xml" --json > "$work/import1.json"
t1=$(date +%s.%N)
first=$(echo "$t1 - $t0" | bc)
rss_after=$(rss VmRSS)
hwm_after=$(rss VmHWM)

t0=$(date +%s.%N)
cli import "$work/report.xml" --json > "$work/import2.json"
again=$(echo "$(date +%s.%N) - $t0" | bc)

# A later report of the same hosts: another report id, every result seen again.
rid=$(grep -o '<report id="[^"]*"' "$work/report.xml" | head -n1 | cut -d'"' -f2)
sed -e "s/$rid/00000000-0000-4000-8000-00000000beef/g" "$work/report.xml" > "$work/report2.xml"
t0=$(date +%s.%N)
cli import "$work/report2.xml" --json > "$work/import3.json"
rescan=$(echo "$(date +%s.%N) - $t0" | bc)
hwm_end=$(rss VmHWM)

python3 - "$work" "$results" "$size_mb" "$first" "$again" "$rescan" "$rss_before" "$rss_after" "$hwm_before" "$hwm_after" "$hwm_end" "$smoke" <<'EOF'
import json, sys
work, results, size_mb, first, again, rescan, rss_b, rss_a, hwm_b, hwm_a, hwm_end, smoke = sys.argv[1:]
i1 = json.load(open(f"{work}/import1.json"))
i2 = json.load(open(f"{work}/import2.json"))
i3 = json.load(open(f"{work}/import3.json"))
c1, c3 = i1["scan"]["counts"], i3["scan"]["counts"]
assert c1["results"] > 0 and c1["new"] == c1["results"], c1
assert i2["already_imported"], i2
assert c3["seen_again"] == c1["results"], c3
print(f"| results | report | import s (CLI, end to end) | server RSS MB before → after | server peak RSS MB (VmHWM) before → after | same report again s | later report of the same hosts s |")
print(f"|---:|---:|---:|---|---|---:|---:|")
print(f"| {c1['results']:,} (critical {c1['by_level'].get('critical',0):,}, high {c1['by_level'].get('high',0):,}) | {size_mb} MB | **{float(first):.2f}** | {rss_b} → {rss_a} | {hwm_b} → {hwm_a} | {float(again):.2f} | {float(rescan):.2f} (peak {hwm_end} MB) |")
ok_time = float(first) < 5
ok_mem = float(hwm_a) < 200
tag = " (SMOKE: not a measurement)" if smoke == "1" else ""
print(f"\nbar{tag}: import of {c1['results']:,} results < 5 s: {'PASS' if ok_time else 'FAIL'} ({float(first):.2f} s); < 200 MB RSS: {'PASS' if ok_mem else 'FAIL'} (peak {hwm_a} MB)")
EOF

if [[ $smoke != 1 && ${SKIP_MATCH:-0} != 1 ]]; then
    echo "\$ cargo run --release -p dozor-inventory --example match_bench" >&2
    (cd "$root" && cargo run -q --release -p dozor-inventory --example match_bench)
fi
