#!/usr/bin/env bash
# Does scanning keep to its CPU budget? A real dozor-agent (release) with scanning on — the
# benchmark YARA rule set (bench/yara/gen_rules.py) served by a real dozor server, a real clamd
# on a private socket, a hash list — while files far beyond what the budget can scan keep
# arriving in a watched directory (copies of system binaries, STORM_MB MB per second).
#
#   BUDGET=10 SECS=120 STORM_MB=20 bash bench/agent/scan_budget.sh
#
# Reports the CPU of the agent process, of its scanner thread and of clamd over the window, as
# a share of one core, next to the budget. Only targets 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUDGET=${BUDGET:-10}
SECS=${SECS:-120}
STORM_MB=${STORM_MB:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dozor-target}
OUT=${OUT:-$(mktemp -d /tmp/dozor-scan-budget.XXXXXX)}
CLAMD=${CLAMD:-$(command -v clamd || echo /usr/sbin/clamd)}

cargo build --release -q -p dozor-cli --bin dozor -p dozor-agent --bin dozor-agent
BIN=$CARGO_TARGET_DIR/release
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$OUT/data" "$OUT/rules" "$OUT/watched" "$OUT/clamd/db" "$OUT/clamd/tmp"
: > "$OUT/auth.log"
python3 bench/yara/gen_rules.py "$OUT/yara" >/dev/null

# clamd with a small database of our own (no official database offline).
printf 'Dozor.Bench.Marker:0:*:%s\n' "$(printf 'dozor-bench-marker' | od -An -tx1 | tr -d ' \n')" \
    > "$OUT/clamd/db/bench.ndb"
cat > "$OUT/clamd/clamd.conf" <<CONF
LocalSocket $OUT/clamd/clamd.sock
DatabaseDirectory $OUT/clamd/db
TemporaryDirectory $OUT/clamd/tmp
LogFile $OUT/clamd/clamd.log
LogSyslog no
Foreground yes
StreamMaxLength 64M
MaxThreads 2
SelfCheck 0
CONF
"$CLAMD" --config-file="$OUT/clamd/clamd.conf" 2>"$OUT/clamd/stderr" &
CLAMD_PID=$!

DOZOR_RULES_DIRS=$OUT/rules DOZOR_LOG=warn DOZOR_AGENT_HEARTBEAT_INTERVAL=5s \
    "$BIN/dozor" server --data-dir "$OUT/data" --listen "127.0.0.1:$PORT" 2>"$OUT/server.log" &
SERVER=$!
AGENT=
STORMER=
cleanup() {
    kill "$SERVER" "$CLAMD_PID" ${AGENT:+"$AGENT"} ${STORMER:+"$STORMER"} 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$OUT/server.log" && break; sleep 0.2; done
for _ in $(seq 1 300); do [ -S "$OUT/clamd/clamd.sock" ] && break; sleep 0.2; done
ADMIN=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$OUT/server.log" | head -n1)
CA=$OUT/data/pki/ca.crt.pem
for f in "$OUT"/yara/rules/*.yar; do
    curl -sf --cacert "$CA" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain' \
        -X PUT --data-binary "@$f" "https://127.0.0.1:$PORT/api/v1/yara/rules/$(basename "$f")" >/dev/null
done
TOKEN=$("$BIN/dozor" tokens create --expires 1h --uses 1 --data-dir "$OUT/data" 2>/dev/null)
sha256sum /bin/true | awk '{print $1 " bench known-bad"}' > "$OUT/known-bad.txt"

cat > "$OUT/agent.toml" <<TOML
state_dir = "$OUT/state"
log = "warn"
[collect]
level = "standard"
[collect.fim]
paths = ["$OUT/watched"]
[collect.auth]
paths = ["$OUT/auth.log"]
journald = false
[scan]
clamd = "unix:$OUT/clamd/clamd.sock"
known_bad = ["$OUT/known-bad.txt"]
cpu_budget_percent = $BUDGET
queue = 100000
TOML
"$BIN/dozor-agent" -c "$OUT/agent.toml" enroll --server "https://127.0.0.1:$PORT" \
    --token "$TOKEN" --ca-file "$CA" >/dev/null
"$BIN/dozor-agent" -c "$OUT/agent.toml" run 2>"$OUT/agent.log" &
AGENT=$!
# Wait until the agent runs the server's rules.
for _ in $(seq 1 120); do
    "$BIN/dozor-agent" -c "$OUT/agent.toml" status --json 2>/dev/null \
        | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]["scan"]; sys.exit(0 if s and s["rules"]["yara"]["rules"] > 0 else 1)' \
        && break
    sleep 1
done

# The storm: STORM_MB MB/s of copies of system binaries into the watched directory.
python3 - "$OUT/watched" "$STORM_MB" "$((SECS + 10))" > "$OUT/storm.txt" <<'PY' &
import os, shutil, sys, time
out, mb, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
srcs = [os.path.join(d, f) for d in ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
        for f in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, f))]
srcs = [p for p in srcs if 4096 < os.path.getsize(p) < 8 << 20]
t0, sent, n = time.time(), 0, 0
while time.time() - t0 < secs:
    due = t0 + sent / (mb * 1e6)
    if due > time.time():
        time.sleep(due - time.time())
    src = srcs[n % len(srcs)]
    dst = os.path.join(out, f"{n:06d}-{os.path.basename(src)}")
    shutil.copyfile(src, dst)
    sent += os.path.getsize(dst)
    n += 1
print(n, sent)
PY
STORMER=$!
sleep 10  # the queue fills; measure the steady state

python3 - "$AGENT" "$CLAMD_PID" "$SECS" "$BUDGET" "$OUT/agent.toml" "$BIN/dozor-agent" <<'PY' | tee "$OUT/summary.txt"
import json, os, subprocess, sys, time
agent, clamd, secs, budget, config, agent_bin = sys.argv[1:7]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid, tid=None):
    p = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    f = open(p).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def scanner_tid():
    for t in os.listdir(f"/proc/{agent}/task"):
        if open(f"/proc/{agent}/task/{t}/comm").read().strip() == "scanner":
            return t
def status():
    out = subprocess.run([agent_bin, "-c", config, "status", "--json"], capture_output=True).stdout
    return json.loads(out)["status"]["scan"]
tid = scanner_tid()
a0, s0, c0, t0, st0 = cpu(agent), cpu(agent, tid), cpu(clamd), time.time(), status()
time.sleep(float(secs))
a1, s1, c1, t1, st1 = cpu(agent), cpu(agent, tid), cpu(clamd), time.time(), status()
wall = t1 - t0
d = lambda k: st1[k] - st0[k]
scanned_mb = d("bytes") / 1e6
print(f"scan CPU budget {budget}% of one core, {wall:.0f} s window, {os.cpu_count()} cores")
print(f"  agent process     {100*(a1-a0)/wall:6.2f}% of one core (all threads: collectors hashing the storm too)")
print(f"  scanner thread    {100*(s1-s0)/wall:6.2f}%")
print(f"  clamd             {100*(c1-c0)/wall:6.2f}%")
print(f"  scanner + clamd   {100*((s1-s0)+(c1-c0))/wall:6.2f}%   <- held to the budget")
print(f"  scanned {d('scanned')} files, {scanned_mb:.1f} MB ({scanned_mb/wall:.2f} MB/s), "
      f"busy {d('busy_ms')/1000:.1f} s, throttled {d('throttled_ms')/1000:.1f} s, "
      f"dropped {d('dropped')}, queued {d('queued')}, detections {d('detections')}")
PY
kill "$STORMER" 2>/dev/null || true
echo "storm (files, bytes): $(cat "$OUT/storm.txt" 2>/dev/null || echo running)"
