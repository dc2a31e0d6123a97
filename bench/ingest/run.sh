#!/usr/bin/env bash
# bench/ingest: sustained events/s through ingest → queue → detect (full SigmaHQ rules) →
# store, event-to-alert latency, and server RSS — for SQLite + in-process queue and for
# PostgreSQL + Redis Streams. Everything runs on 127.0.0.1.
#
# Environment: DOZOR_SHARED_DIR (default <repo>/../shared), TOTAL (events for the throughput
# run, default 200000), RATE (events/s for the latency run, default 5000), LATENCY_TOTAL
# (default 50000), MODES ("sqlite postgres", default both), SKIP_BUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shared="${DOZOR_SHARED_DIR:-$root/../shared}"
total="${TOTAL:-200000}"
rate="${RATE:-5000}"
latency_total="${LATENCY_TOTAL:-50000}"
modes="${MODES:-sqlite postgres}"
target="${CARGO_TARGET_DIR:-$root/target}"
dozor="$target/release/dozor"
work="$(mktemp -d)"
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

[[ "${SKIP_BUILD:-0}" == 1 ]] || (cd "$root" && cargo build --release -p dozor-cli >&2)
"$dozor" convert "$shared/datasets/evtx-to-mitre-attack" > "$work/events.ndjson" 2>/dev/null || true
echo "templates: $(wc -l < "$work/events.ndjson") normalized events from the MITRE corpus" >&2
rules="$shared/sigma/rules:$shared/sigma/rules-emerging-threats:$shared/sigma/rules-threat-hunting"

port=18700
start_server() { # mode name -> sets pid, url, token
    local mode=$1 name=$2
    port=$((port + 1))
    local data="$work/$name"
    mkdir -p "$data"
    local envs=(DOZOR_RULES_DIRS="$rules" DOZOR_LOG=warn DOZOR_QUEUE_CAPACITY=200000)
    if [[ $mode == postgres ]]; then
        local db="dozor_bench_$$_${name//-/_}"
        psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
        envs+=(DOZOR_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" DOZOR_BUS=redis://127.0.0.1:6379 DOZOR_BUS_NAME="bench$$${name//-/_}")
        dbs+=("$db")
    fi
    env "${envs[@]}" "$dozor" server --data-dir "$data" --listen "127.0.0.1:$port" --workers "${WORKERS:-2}" > "$data/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do grep -q "listening on" "$data/log" && break; sleep 0.5; done
    url="https://127.0.0.1:$port"
    token=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$data/log" | head -n1)
    curl -sk "$url/api/v1/ca.pem" > "$data/ca.pem"
    ca="$data/ca.pem"
}
stored() { curl -s --cacert "$ca" -H "Authorization: Bearer $token" "$url/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_total"])'; }
wait_stored() { # n -> seconds waited
    local n=$1 t0=$(date +%s.%N)
    while (( $(stored) < n )); do sleep 0.2; done
    echo "$(date +%s.%N) - $t0" | bc
}
quantiles() { # prints p50 p99 upper bounds of the event-to-alert latency histogram
    curl -s --cacert "$ca" -H "Authorization: Bearer $token" "$url/metrics" | python3 -c '
import sys,re
b=[]
for l in sys.stdin:
    m=re.match(r"dozor_event_to_alert_latency_seconds_bucket\{le=\"([^\"]+)\"\} (\d+)",l)
    if m: b.append((float("inf") if m.group(1)=="+Inf" else float(m.group(1)), int(m.group(2))))
tot=b[-1][1] if b else 0
def q(p):
    if not tot: return "n/a"
    for le,c in b:
        if c>=p*tot: return "≤%gs"%le
print(q(0.5), q(0.99), tot)'
}
dbs=()
echo "| mode | events | throughput run: sent in s | stored after s | events/s end to end | 503 retries | latency run at ${rate}/s: p50 | p99 | detections | peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---|---|---:|---:|"
for mode in $modes; do
    start_server "$mode" "${mode}-tp"
    gen=$(python3 "$here/loadgen.py" --url "$url" --token "$token" --ca "$ca" --events "$work/events.ndjson" --total "$total" --batch 1000 --connections 4)
    wait_stored "$total" >/dev/null
    t1=$(date +%s.%N)
    # From the first request sent (the load generator builds its bodies before that).
    t0=$(echo "$gen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["started_at"])')
    e2e=$(echo "$t1 - $t0" | bc)
    rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$pid/status)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    start_server "$mode" "${mode}-lat"
    python3 "$here/loadgen.py" --url "$url" --token "$token" --ca "$ca" --events "$work/events.ndjson" --total "$latency_total" --rate "$rate" --batch 500 --connections 2 >/dev/null
    wait_stored "$latency_total" >/dev/null
    sleep 1
    read -r p50 p99 n <<<"$(quantiles)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    sent_s=$(echo "$gen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
    retries=$(echo "$gen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["retries_503"])')
    eps=$(echo "$total / $e2e" | bc)
    echo "| $mode | $total | $sent_s | $(printf %.2f "$e2e") | $eps | $retries | $p50 | $p99 | $n | $rss |"
done
for db in "${dbs[@]}"; do psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null; done
for key in $(redis-cli --scan --pattern "bench$$*" 2>/dev/null); do redis-cli DEL "$key" >/dev/null; done
