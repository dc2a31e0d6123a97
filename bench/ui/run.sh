#!/usr/bin/env bash
# Dashboard server-side render times with EVENTS events and ALERTS alerts stored.
#
#   EVENTS=1000000 ALERTS=10000 REQUESTS=40 bash bench/ui/run.sh
#
# Seeds a fresh SQLite data directory (crates/store/examples/seed.rs: events of 100 hosts with
# process trees, alerts, incidents, exceptions; it prints the host, alert and incident the
# detail pages open), starts the release
# `dozor server` on 127.0.0.1, signs in through the real login form with curl, then times
# REQUESTS loads of each page (time to the last byte, TLS on loopback included) and prints
# p50 / p95 / max per page. Only targets 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-1000000}
ALERTS=${ALERTS:-10000}
REQUESTS=${REQUESTS:-40}
# The first request after start warms SQLite's page cache; it is made (and not counted) first.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dozor-target}
OUT=${OUT:-$(mktemp -d /tmp/dozor-ui-bench.XXXXXX)}

# BIN=dir (holding `dozor` and `seed`) times binaries built elsewhere, e.g. an older commit's.
if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p dozor-cli --bin dozor -p dozor-store --example seed
    BIN=$CARGO_TARGET_DIR/release
    SEED=$BIN/examples/seed
else
    SEED=$BIN/seed
fi
mkdir -p "$OUT/data" "$OUT/rules"
if [ ! -f "$OUT/data/dozor.db" ]; then
    "$SEED" "$OUT/data" "$EVENTS" "$ALERTS" >"$OUT/seed.env"
fi
# ALERT (open, on a process three levels below its session's shell), HOST (its host),
# INCIDENT (the first one opened).
# shellcheck disable=SC1091
. "$OUT/seed.env"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DOZOR_RULES_DIRS=$OUT/rules DOZOR_LOG=warn \
    "$BIN/dozor" server --data-dir "$OUT/data" --listen "127.0.0.1:$PORT" 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$OUT/server.log" && break; sleep 0.2; done
URL=https://127.0.0.1:$PORT
CA=$OUT/data/pki/ca.crt.pem
PASSWORD=$(printf 'bench-password-%s\n' "$RANDOM$RANDOM")
BENCH_USER=bench$$
echo "$PASSWORD" | "$BIN/dozor" users create "$BENCH_USER" --role analyst --password-stdin --data-dir "$OUT/data"

# Sign in like a browser: the form's token + its cookie, then the session cookie.
JAR=$OUT/cookies
FORM=$(curl -s --cacert "$CA" -c "$JAR" "$URL/login")
TOKEN=$(printf '%s' "$FORM" | python3 -c 'import re,sys; print(re.search(r"name=\"csrf\" value=\"([^\"]+)\"", sys.stdin.read()).group(1))')
curl -s --cacert "$CA" -b "$JAR" -c "$JAR" -o /dev/null \
    --data-urlencode "username=$BENCH_USER" --data-urlencode "password=$PASSWORD" \
    --data-urlencode "csrf=$TOKEN" "$URL/login"

time_page() {  # name path
    python3 - "$1" "$REQUESTS" "$CA" "$JAR" "$URL$2" <<'PY'
import statistics, subprocess, sys
name, n, ca, jar, url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
times, status = [], None
for _ in range(n):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", ca, "-b", jar,
                          "-w", "%{http_code} %{time_total}", url],
                         capture_output=True, text=True, check=True).stdout.split()
    status = out[0]
    times.append(float(out[1]) * 1000)
times.sort()
p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
print(f"{name:<34} HTTP {status}  p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  max {times[-1]:7.1f} ms")
PY
}
curl -s -o /dev/null --cacert "$CA" -b "$JAR" "$URL/ui/overview"
curl -s -o /dev/null --cacert "$CA" -b "$JAR" "$URL/ui/events"
# The alert page's pivots (host ±15 min, user ±15 min, this process ±15 min) as it links them.
PIVOTS=$(curl -s --cacert "$CA" -b "$JAR" "$URL/ui/alerts/$ALERT" | python3 -c '
import html, re, sys
links = [html.unescape(h) for h in re.findall(r"href=\"(/ui/events\?q=[^\"]+)\"", sys.stdin.read())]
for key, field in (("HOST", "host.name"), ("USER", "user.name"), ("PROCESS", "process.entity_id")):
    hit = next((l for l in links if l.startswith("/ui/events?q=" + field) and "range=custom" in l), "")
    print(f"PIVOT_{key}={hit!r}")
')
eval "$PIVOTS"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
HOST_Q=$(enc "host.name:\"$HOST\"")
SEARCHES=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -b "$JAR" "$URL/ui/searches")
{
    echo "dashboard render times ($(date -u +%F), $(nproc) cores): $EVENTS events, $ALERTS alerts, $REQUESTS requests per page"
    echo "host $HOST, alert $ALERT, incident $INCIDENT"
    time_page "overview" "/ui/overview"
    time_page "alerts (default list)" "/ui/alerts"
    time_page "alerts (status new, min high)" "/ui/alerts?status=new&min_level=high"
    time_page "events (last 24 h, no query)" "/ui/events"
    time_page "events (query, last 24 h)" "/ui/events?q=process.executable%3A%2Fusr%2Fbin%2Ftool7"
    time_page "events (query, last 7 days = all 1M)" "/ui/events?q=process.executable%3A%2Fusr%2Fbin%2Ftool7&range=7d"
    time_page "agents" "/ui/agents"
    time_page "ATT&CK matrix (7 days)" "/ui/attack"
    time_page "ATT&CK matrix (all time)" "/ui/attack?range=all"
    time_page "hosts" "/ui/hosts"
    time_page "host page" "/ui/hosts/$HOST"
    time_page "alert page (process tree, pivots)" "/ui/alerts/$ALERT"
    time_page "events: host pivot ±15 min" "$PIVOT_HOST"
    time_page "events: host, all time" "/ui/events?q=$HOST_Q&range=all"
    time_page "events: user pivot ±15 min" "$PIVOT_USER"
    time_page "events: process pivot ±15 min" "$PIVOT_PROCESS"
    time_page "incidents (with suggestions)" "/ui/incidents"
    time_page "incident page" "/ui/incidents/$INCIDENT"
    time_page "exceptions" "/ui/exceptions"
    if [ "$SEARCHES" = 200 ]; then
        time_page "saved searches" "/ui/searches"
    else
        echo "saved searches: /ui/searches answered HTTP $SEARCHES (not in this build)"
    fi
} | tee "$OUT/summary.txt"
