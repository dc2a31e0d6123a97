#!/usr/bin/env bash
# bench/intel: issue 14's bars, both parts, one after the other.
#
#   1. crates/pipeline/examples/intel_bench.rs — 1,000,000 indicators: matcher memory and
#      build time, then pipeline throughput with no indicators vs with them (in process);
#   2. bench/intel/sync.sh — a full sync of a 100,000-attribute MISP feed directory by the
#      real `dozor server`, and its RSS.
#
# SMOKE=1: 10,000 indicators / 5,000 attributes, debug builds — a check that everything
# still runs (under a minute once built), not a measurement.
# Environment: SMOKE, OUT_DIR (default: a new temporary directory), BENCH_ARGS (extra
# intel_bench arguments, e.g. "--rounds 5"), SKIP_SYNC=1, SKIP_MATCHER=1, plus those of
# sync.sh (ATTRIBUTES, PREINGEST, SKIP_BUILD, DOZOR_SHARED_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out"
smoke="${SMOKE:-0}"

if [[ ${SKIP_MATCHER:-0} != 1 ]]; then
    if [[ $smoke == 1 ]]; then
        cmd=(cargo run -q -p dozor-pipeline --example intel_bench -- --smoke)
    else
        cmd=(cargo run -q --release -p dozor-pipeline --example intel_bench --)
    fi
    # shellcheck disable=SC2206
    cmd+=(--json "$out/matcher.json" ${BENCH_ARGS:-})
    echo "\$ ${cmd[*]}" >&2
    (cd "$root" && "${cmd[@]}") | tee "$out/matcher.md"
fi

if [[ ${SKIP_SYNC:-0} != 1 ]]; then
    echo "\$ SMOKE=$smoke bash bench/intel/sync.sh" >&2
    OUT="$out/sync.json" bash "$here/sync.sh" | tee "$out/sync.md"
fi

python3 - "$out" "$smoke" <<'EOF'
import json, os, sys
out, smoke = sys.argv[1], sys.argv[2] == "1"
rows = []
m = os.path.join(out, "matcher.json")
if os.path.exists(m):
    r = json.load(open(m))
    t = r["throughput"].get("full") or r["throughput"].get("stage")
    rows.append(("pipeline throughput with %s IOCs within 10 %% of none" % f"{r['iocs']:,}",
                 f"{t['no_iocs_events_per_s']:.0f} → {t['with_iocs_events_per_s']:.0f} events/s, ratio {t['ratio']:.3f}",
                 t["ratio"] >= 0.9))
    rows.append(("IOC matcher memory < 300 MB", f"{r['snapshot_mb']:.1f} MB (index alone {r['index_mb']:.1f} MB), build {r['build_seconds']:.2f} s",
                 r["snapshot_mb"] < 300))
s = os.path.join(out, "sync.json")
if os.path.exists(s):
    r = json.load(open(s))
    rows.append((f"full sync of {r['attributes']:,} MISP feed attributes < 60 s",
                 f"{r['sync_seconds']} s, {r['added']:,} indicators added; RSS {r['rss_mb_after_sync']} MB after",
                 r["sync_seconds"] < 60))
print("\n## bench/intel summary" + (" (SMOKE: not a measurement)" if smoke else ""))
print("| bar | measured | |")
print("|---|---|---|")
for bar, got, ok in rows:
    print(f"| {bar} | {got} | {'PASS' if ok else 'FAIL'} |")
print(f"\nresults in {out}")
EOF
