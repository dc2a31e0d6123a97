#!/usr/bin/env bash
# Agent footprint: RSS and CPU of a real dozor-agent (release build) sending to a real
# dozor server on 127.0.0.1, first idle, then under a storm of short processes.
#
#   IDLE_SECS=600 STORM_SECS=60 STORM_RATE=200 bash bench/agent/run.sh
#
# Prints one summary block (also written to $OUT/summary.txt). Only targets 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
IDLE_SECS=${IDLE_SECS:-600}
STORM_SECS=${STORM_SECS:-60}
STORM_RATE=${STORM_RATE:-200}
LEVEL=${LEVEL:-standard}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dozor-target}
OUT=${OUT:-$(mktemp -d /tmp/dozor-agent-bench.XXXXXX)}

cargo build --release -q -p dozor-cli --bin dozor -p dozor-agent --bin dozor-agent
BIN=$CARGO_TARGET_DIR/release
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$OUT/data" "$OUT/rules" "$OUT/watched"
: > "$OUT/auth.log"

DOZOR_RULES_DIRS=$OUT/rules DOZOR_LOG=warn DOZOR_AGENT_HEARTBEAT_INTERVAL=30s \
    "$BIN/dozor" server --data-dir "$OUT/data" --listen "127.0.0.1:$PORT" 2>"$OUT/server.log" &
SERVER=$!
AGENT=
cleanup() { kill "$SERVER" ${AGENT:+"$AGENT"} 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$OUT/server.log" && break; sleep 0.2; done
ADMIN=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$OUT/server.log" | head -n1)
TOKEN=$("$BIN/dozor" tokens create --expires 1h --uses 1 --data-dir "$OUT/data" 2>/dev/null)

cat > "$OUT/agent.toml" <<TOML
state_dir = "$OUT/state"
log = "warn"
[collect]
level = "$LEVEL"
[collect.fim]
paths = ["$OUT/watched", "/etc"]
[collect.auth]
paths = ["$OUT/auth.log"]
journald = false
TOML
"$BIN/dozor-agent" -c "$OUT/agent.toml" enroll --server "https://127.0.0.1:$PORT" \
    --token "$TOKEN" --ca-file "$OUT/data/pki/ca.crt.pem" >/dev/null
"$BIN/dozor-agent" -c "$OUT/agent.toml" run 2>"$OUT/agent.log" &
AGENT=$!
sleep 5  # start-up (baseline FIM of /etc, first heartbeat) is not idle

# sample PID SECONDS LABEL: CPU % of one core over the window, RSS avg / max (KiB)
sample() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys, time
pid, secs, label = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
c0, t0, rs = cpu(), time.time(), []
while time.time() - t0 < secs:
    rs.append(rss()); time.sleep(1)
used, wall = cpu() - c0, time.time() - t0
print(f"{label}: cpu {100*used/wall:.2f}% of one core over {wall:.0f}s; "
      f"RSS avg {sum(rs)/len(rs)/1024:.1f} MiB, max {max(rs)/1024:.1f} MiB")
PY
}

IDLE=$(sample "$AGENT" "$IDLE_SECS" "idle ($LEVEL)")
echo "$IDLE"

# The storm: STORM_RATE short processes per second (/bin/true), paced from Python.
python3 - "$STORM_RATE" "$STORM_SECS" > "$OUT/storm.txt" <<'PY' &
import subprocess, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
t0, n = time.time(), 0
while time.time() - t0 < secs:
    due = t0 + n / rate
    now = time.time()
    if due > now:
        time.sleep(due - now)
    subprocess.Popen(["/bin/true"]).wait()
    n += 1
print(n)
PY
STORMER=$!
STORM=$(sample "$AGENT" "$STORM_SECS" "storm ${STORM_RATE}/s ($LEVEL)")
wait "$STORMER"
SPAWNED=$(cat "$OUT/storm.txt")
echo "$STORM"
sleep 5
STATUS=$("$BIN/dozor-agent" -c "$OUT/agent.toml" status --json)
COUNT=$(python3 - "$OUT/data/dozor.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
try:
    q = ("select count(*) from events where json_extract(doc, '$.process.executable') = '/usr/bin/true' "
         "and json_extract(doc, '$.event.type[0]') = ?")
    starts, ends = (db.execute(q, (t,)).fetchone()[0] for t in ("start", "end"))
    print(f"{starts} start and {ends} end events")
except Exception as e:
    print(f"? ({e})")
PY
)
{
    echo "dozor-agent footprint ($(date -u +%F), $(nproc) cores, level $LEVEL)"
    echo "$IDLE"
    echo "$STORM"
    echo "storm: $SPAWNED processes spawned, $COUNT of /bin/true stored"
    echo "agent counters: $(echo "$STATUS" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print({k: s[k] for k in ("events_collected","events_sent","events_rejected","spool_dropped_records")})')"
    echo "collectors: $(echo "$STATUS" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]["collectors"]; print({k: (v["state"], v.get("message")) for k, v in s.items()})')"
} | tee "$OUT/summary.txt"
