#!/usr/bin/env bash
# bench/intel/sync.sh: a full sync of a 100,000-attribute MISP feed directory by the real
# `dozor server` (release build, embedded SQLite, 127.0.0.1, ephemeral port, temporary data
# directory), timed from the API call to its answer; then the server's RSS.
#
# 1. builds `dozor` (cargo build --release -p dozor-cli) unless SKIP_BUILD=1;
# 2. writes the feed with gen_feed.py into <data>/intel-feeds/bench-feed (intel.feeds_dir);
# 3. starts the server with the SigmaHQ rules and the MISP warninglists of ../shared (as a
#    real deployment runs: every indicator is checked against the warninglists in the sync);
# 4. ingests PREINGEST events (the EVTX corpus converted by `dozor convert`, re-stamped to
#    now, so the sync's retro-hunt over the last 30 days has stored events to read);
# 5. PUT /api/v1/intel/sources/bench-feed {"spec": {"kind": "misp_feed", "location": DIR}};
# 6. POST /api/v1/intel/sources/bench-feed/sync — timed; prints the IntelSyncStatus counts;
# 7. waits for the pipeline's matcher to be rebuilt with the new indicators, reads the
#    server's VmRSS / VmHWM from /proc; then a second sync (nothing new) for comparison.
#
# Environment: ATTRIBUTES (100000), EVENTS (feed events; default one per 500 attributes),
# PREINGEST (10000; 0 = none), SMOKE=1 (5,000 attributes, 1,000 events ingested, no rules,
# debug binary unless DOZOR_BIN), DOZOR_BIN (a dozor binary to use), DOZOR_SHARED_DIR,
# OUT (a file for the JSON summary line), KEEP=1 (keep the temporary directory).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shared="${DOZOR_SHARED_DIR:-$root/../shared}"
target="${CARGO_TARGET_DIR:-$root/target}"
smoke="${SMOKE:-0}"
if [[ $smoke == 1 ]]; then
    attributes="${ATTRIBUTES:-5000}"
    preingest="${PREINGEST:-1000}"
    profile=debug
else
    attributes="${ATTRIBUTES:-100000}"
    preingest="${PREINGEST:-10000}"
    profile=release
fi
dozor="${DOZOR_BIN:-$target/$profile/dozor}"

if [[ -z ${DOZOR_BIN:-} && ${SKIP_BUILD:-0} != 1 ]]; then
    if [[ $profile == release ]]; then
        (cd "$root" && cargo build --release -p dozor-cli >&2)
    else
        (cd "$root" && cargo build -p dozor-cli >&2)
    fi
fi
[[ -x $dozor ]] || { echo "no dozor binary at $dozor" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [[ ${KEEP:-0} == 1 ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

data="$work/data"
feed="$data/intel-feeds/bench-feed"
mkdir -p "$data/intel-feeds"
t0=$(date +%s.%N)
gen=$(python3 "$here/gen_feed.py" --out "$feed" --attributes "$attributes" ${EVENTS:+--events "$EVENTS"})
echo "feed: $gen ($(du -sh "$feed" | cut -f1) on disk, written in $(printf %.1f "$(echo "$(date +%s.%N) - $t0" | bc)") s)" >&2

envs=(DOZOR_LOG=info)
rules=()
if [[ $smoke != 1 ]]; then
    for d in rules rules-emerging-threats rules-threat-hunting; do
        [[ -d $shared/sigma/$d ]] && rules+=("$shared/sigma/$d")
    done
fi
if ((${#rules[@]})); then envs+=(DOZOR_RULES_DIRS="$(IFS=:; echo "${rules[*]}")"); fi
if [[ -d $shared/intel/misp-warninglists ]]; then
    envs+=(DOZOR_INTEL_WARNINGLISTS_DIR="$shared/intel/misp-warninglists")
fi
env "${envs[@]}" "$dozor" server --data-dir "$data" --listen 127.0.0.1:0 > "$work/server.out" 2> "$work/server.log" &
pid=$!
url=""
for _ in $(seq 1 240); do
    url=$(sed -n 's/^dozor server listening on //p' "$work/server.log" | head -n1)
    [[ -n $url ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.5
done
[[ -n $url ]] || { echo "the server did not start" >&2; tail -20 "$work/server.log" >&2; exit 1; }
token=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$work/server.log" | head -n1)
curl -sk "$url/api/v1/ca.pem" > "$work/ca.pem"
api() { # method path [json] -> body; fails on a non-2xx answer
    local method=$1 path=$2 body=${3:-}
    local args=(-sS --fail-with-body --cacert "$work/ca.pem" -X "$method" -H "Authorization: Bearer $token")
    [[ -n $body ]] && args+=(-H "Content-Type: application/json" --data-binary "$body")
    curl "${args[@]}" "$url$path"
}
log() { sed 's/\x1b\[[0-9;]*m//g' "$work/server.log"; } # the server's log, colours removed
rss() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
echo "server: $url (pid $pid), $(rss VmRSS) MB RSS after start" >&2

# Stored events for the retro-hunt.
if ((preingest > 0)); then
    python3 - "$dozor" "$shared/datasets/evtx-to-mitre-attack" "$preingest" "$work/events.ndjson" <<'EOF'
import datetime, json, subprocess, sys, uuid
dozor, corpus, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    lines = subprocess.run([dozor, "convert", corpus], capture_output=True, text=True).stdout.splitlines()
except OSError:
    lines = []
lines = [l for l in lines if l.strip()] or ['{"event": {"kind": "event"}, "destination": {"ip": "192.0.2.1"}}']
now = datetime.datetime.now(datetime.timezone.utc)
with open(out, "w") as f:
    for i in range(n):
        doc = json.loads(lines[i % len(lines)])
        doc.setdefault("event", {})["id"] = str(uuid.UUID(int=(0x01900000_0000_7000_8000 << 48) | i))
        doc["@timestamp"] = (now - datetime.timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        f.write(json.dumps(doc) + "\n")
EOF
    split -l 1000 "$work/events.ndjson" "$work/chunk."
    for c in "$work"/chunk.*; do
        curl -sS --fail-with-body --cacert "$work/ca.pem" -H "Authorization: Bearer $token" \
            -H "Content-Type: application/x-ndjson" --data-binary "@$c" "$url/api/v1/ingest" > /dev/null
    done
    for _ in $(seq 1 600); do
        stored=$(api GET /api/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_total"])')
        ((stored >= preingest)) && break
        sleep 0.2
    done
    echo "stored events before the sync: $stored" >&2
fi

api PUT /api/v1/intel/sources/bench-feed \
    "{\"spec\": {\"kind\": \"misp_feed\", \"location\": \"$feed\"}, \"interval_secs\": 0}" > /dev/null
rss_before=$(rss VmRSS)
t0=$(date +%s.%N)
status=$(api POST /api/v1/intel/sources/bench-feed/sync)
t1=$(date +%s.%N)
seconds=$(echo "$t1 - $t0" | bc)
added=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["added"])')
# The pipeline's matcher follows (the sync notifies the refresher): wait for its rebuild.
rebuilt=""
for _ in $(seq 1 300); do
    rebuilt=$(log | grep 'indicator matcher rebuilt' | grep -o 'indicators=[0-9]*' | tail -n1 | cut -d= -f2 || true)
    [[ -n $rebuilt ]] && ((rebuilt >= added)) && break
    sleep 0.2
done
rebuild_ms=$(log | grep 'indicator matcher rebuilt' | tail -n1 | grep -o 'took_ms=[0-9]*' | cut -d= -f2 || true)
sleep 1
rss_after=$(rss VmRSS)
hwm=$(rss VmHWM)
t0=$(date +%s.%N)
status2=$(api POST /api/v1/intel/sources/bench-feed/sync)
again=$(echo "$(date +%s.%N) - $t0" | bc)
retro_line=$(log | grep 'retro-hunt done' | tail -n1 | grep -o 'events=[0-9]*\|took_ms=[0-9]*' | tr '\n' ' ' || true)

python3 - "$status" "$status2" <<EOF
import json, sys
s, s2 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
gen = json.loads('''$gen''')
took = (s["finished_at"] - s["started_at"]) / 1000
summary = {
    "attributes": gen["attributes"], "feed_events": gen["events"], "feed_objects": gen["objects"],
    "feed_mb": round(gen["bytes"] / 1048576, 1),
    "sync_seconds": round(float("$seconds"), 2), "sync_seconds_server": took,
    "status": s["status"], "added": s["added"], "updated": s["updated"],
    "unchanged": s["unchanged"], "skipped": s["skipped"], "warninglisted": s["warninglisted"],
    "retro_matches": s["retro_matches"], "retro_hunt": "$retro_line".strip(),
    "stored_events": $preingest, "matcher_indicators": int("${rebuilt:-0}" or 0),
    "matcher_rebuild_ms": int("${rebuild_ms:-0}" or 0),
    "rss_mb_before_sync": float("$rss_before"), "rss_mb_after_sync": float("$rss_after"),
    "peak_rss_mb": float("$hwm"),
    "second_sync_seconds": round(float("$again"), 2), "second_sync_unchanged": s2["unchanged"],
    "second_sync_added": s2["added"],
}
print(f"| attributes | feed events / objects | sync s (API call) | added | skipped | warninglisted | retro-hunt | matcher rebuilt | RSS MB before → after | peak RSS MB | 2nd sync s |")
print(f"|---:|---|---:|---:|---:|---:|---|---|---|---:|---:|")
print(f"| {summary['attributes']:,} | {summary['feed_events']} / {summary['feed_objects']} | **{summary['sync_seconds']}** | {s['added']:,} | {s['skipped']:,} | {s['warninglisted']:,} | {summary['retro_hunt'] or 'none'}, {s['retro_matches']} matches | {summary['matcher_indicators']:,} in {summary['matcher_rebuild_ms']} ms | {summary['rss_mb_before_sync']} → {summary['rss_mb_after_sync']} | {summary['peak_rss_mb']} | {summary['second_sync_seconds']} |")
print("skipped examples:", s.get("skipped_examples", [])[:3], file=sys.stderr)
bar = "PASS" if summary["sync_seconds"] < 60 else "FAIL"
print(f"\nbar: full sync of {summary['attributes']:,} attributes < 60 s: {bar} ({summary['sync_seconds']} s)")
print(json.dumps(summary))
out = "${OUT:-}"
if out:
    open(out, "w").write(json.dumps(summary) + "\n")
EOF
