#!/usr/bin/env bash
# bench/soak: a soak run with faults (issue 12). Simulated agents (bench/soak/agents.py: real
# enrollment, client certificates, NDJSON batches with retries, heartbeats) send events for
# DURATION seconds to a split Dozor deployment on PostgreSQL + Redis Streams or NATS JetStream
# while a worker is SIGKILLed every KILL_EVERY seconds, the main server is restarted twice
# (SIGTERM, then SIGKILL) and the broker once. Then it checks in PostgreSQL that every event
# accepted is stored exactly once and that the alerts count every matching event
# (bench/soak/verify.py), samples RSS, prints a markdown row and PASS/FAIL (exit 1 on FAIL).
#
# Everything runs on 127.0.0.1: its own broker on a free port (never the shared 6379/4222), a
# fresh database dozor_soak_<pid> (dropped at the end), a temporary work directory (removed at
# the end; KEEP_WORK=1 keeps it). Every process it started is killed on exit, also on failure
# or Ctrl-C.
#
# Environment: DURATION (900 s), AGENTS (50), BROKER (redis|nats), DOZOR_BIN (default
# $CARGO_TARGET_DIR/release/dozor), BATCH (50 events), INTERVAL (seconds between an agent's
# batches, "1-2"), MATCH_EVERY (20: every 20th event matches the rule), KILL_EVERY (60 s),
# DRAIN_TIMEOUT (600 s), PG_PORT (5432), OUT (also write the result to this file), KEEP_WORK=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

DURATION="${DURATION:-900}"
AGENTS="${AGENTS:-50}"
BROKER="${BROKER:-redis}"
BATCH="${BATCH:-50}"
INTERVAL="${INTERVAL:-1-2}"
MATCH_EVERY="${MATCH_EVERY:-20}"
KILL_EVERY="${KILL_EVERY:-60}"
DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-600}"
HOST="${HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
DOZOR_BIN="${DOZOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/dozor}"
RULE_ID="5a0c3d1e-50a4-4c00-8000-00000000d020"

die() { echo "soak: $*" >&2; exit 2; }
[[ "$HOST" == 127.0.0.1 ]] || die "refusing HOST=$HOST: the soak run only uses 127.0.0.1"
[[ "$BROKER" == redis || "$BROKER" == nats ]] || die "BROKER must be redis or nats"
[[ -x "$DOZOR_BIN" ]] || die "no dozor binary at $DOZOR_BIN (build it: cargo build --release -p dozor-cli, or set DOZOR_BIN)"
for tool in psql python3 openssl curl; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if [[ $BROKER == redis ]]; then
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || die "redis-server and redis-cli are needed"
else
    command -v nats-server >/dev/null || die "nats-server is needed"
fi
(( DURATION >= 60 )) || die "DURATION must be at least 60 s (one of each fault)"
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc "SELECT 1" >/dev/null 2>&1 \
    || die "PostgreSQL is not reachable at 127.0.0.1:$PG_PORT as user postgres"

work="$(mktemp -d /tmp/dozor-soak.XXXXXX)"
mkdir -p "$work/pids" "$work/logs" "$work/data" "$work/rules" "$work/agents" "$work/broker"
db="dozor_soak_$$"
bus_name="soak$$"
faults="$work/faults.log"
rss="$work/rss.log"
: > "$faults"
: > "$rss"
bg_pids=()   # helper loops (sampler) started by this script

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    # Every process this script started has its pid in $work/pids: the agents first, then the
    # servers, the broker last (so the servers do not spend their shutdown on a missing broker).
    local group names f p
    for group in "agents" "main w1 w2" "broker"; do
        for names in $group; do
            f="$work/pids/$names"; [[ -s $f ]] && kill -TERM "$(cat "$f")" 2>/dev/null
        done
        for _ in $(seq 1 100); do
            local alive=0
            for names in $group; do
                f="$work/pids/$names"; [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
            done
            (( alive )) || break
            sleep 0.2
        done
        for names in $group; do
            f="$work/pids/$names"; [[ -s $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
        done
    done
    { wait; } 2>/dev/null
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        echo "soak: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_main=$(free_port); port_w1=$(free_port); port_w2=$(free_port); port_broker=$(free_port); port_mon=$(free_port)
url="https://127.0.0.1:$port_main"
t_run=$(date +%s)   # reset when the agents start: fault times count from then
now() { echo $(( $(date +%s) - t_run )); }
note() { echo "$(now) $*" >> "$faults"; echo "soak [$(now)s] $*" >&2; }

# ------------------------------------------------------------------ the broker
start_broker() {
    if [[ $BROKER == redis ]]; then
        redis-server --bind 127.0.0.1 --port "$port_broker" --protected-mode yes \
            --appendonly yes --appendfsync always --save "" --dir "$work/broker" \
            >> "$work/logs/broker.log" 2>&1 &
    else
        nats-server -a 127.0.0.1 -p "$port_broker" -m "$port_mon" -js -sd "$work/broker" \
            >> "$work/logs/broker.log" 2>&1 &
    fi
    echo $! > "$work/pids/broker"
    for _ in $(seq 1 100); do
        if [[ $BROKER == redis ]]; then
            [[ "$(redis-cli -h 127.0.0.1 -p "$port_broker" PING 2>/dev/null)" == PONG ]] && return 0
        else
            curl -sf "http://127.0.0.1:$port_mon/healthz?js-enabled-only=true" >/dev/null 2>&1 && return 0
        fi
        sleep 0.1
    done
    die "the broker did not start (see $work/logs/broker.log)"
}
if [[ $BROKER == redis ]]; then bus_url="redis://127.0.0.1:$port_broker"; else bus_url="nats://127.0.0.1:$port_broker"; fi

# Events of the broker's queue not yet acknowledged by a worker.
queue_depth() {
    if [[ $BROKER == redis ]]; then
        redis-cli -h 127.0.0.1 -p "$port_broker" XLEN "$bus_name:ingest" 2>/dev/null || echo "?"
    else
        curl -sf "http://127.0.0.1:$port_mon/jsz?streams=true" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); n = 0
for acc in d.get("account_details", []):
    for s in acc.get("stream_detail", []):
        n += s.get("state", {}).get("messages", 0)
print(n)' 2>/dev/null || echo "?"
    fi
}

# ------------------------------------------------------------------ the servers
cat > "$work/rules/soak_whoami.yml" <<EOF
title: Soak whoami
id: $RULE_ID
status: test
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
EOF

export DOZOR_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$db"
export DOZOR_BUS="$bus_url" DOZOR_BUS_NAME="$bus_name" DOZOR_RULES_DIRS="$work/rules" DOZOR_LOG="${DOZOR_LOG:-info}"
server_args=(server --data-dir "$work/data" --workers 1)

wait_healthy() { # name port pid
    local name=$1 port=$2 pid=$3 ca=()
    [[ -f $work/ca.pem ]] && ca=(--cacert "$work/ca.pem") || ca=(-k)
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$work/logs/$name.log" >&2; die "$name exited at start"; }
        curl -sf "${ca[@]}" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$name did not become healthy (see $work/logs/$name.log)"
}
start_main() {
    echo "---- start $(date -u +%FT%TZ)" >> "$work/logs/main.log"
    "$DOZOR_BIN" "${server_args[@]}" --role all --consumer soak-main --listen "127.0.0.1:$port_main" \
        >> "$work/logs/main.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$work/pids/main"
    wait_healthy main "$port_main" "$pid"
}
start_worker() { # 1|2
    local i=$1 port
    [[ $i == 1 ]] && port=$port_w1 || port=$port_w2
    echo "---- start $(date -u +%FT%TZ)" >> "$work/logs/w$i.log"
    "$DOZOR_BIN" "${server_args[@]}" --role worker --consumer "soak-w$i" --listen "127.0.0.1:$port" \
        >> "$work/logs/w$i.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$work/pids/w$i"
    wait_healthy "w$i" "$port" "$pid"
}
stop_proc() { # name signal -> waits for the exit
    local name=$1 sig=$2 pid
    pid=$(cat "$work/pids/$name")
    # (stderr of the block: bash reports a job killed by a signal; that is the point here)
    {
        kill "-$sig" "$pid" || true
        for _ in $(seq 1 1200); do kill -0 "$pid" || break; sleep 0.1; done
        if kill -0 "$pid"; then kill -KILL "$pid"; note "forced $name (no exit 120 s after SIG$sig)"; fi
        wait "$pid" || true
    } 2>/dev/null
    : > "$work/pids/$name"
}

psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
start_broker
start_main
curl -sk "$url/api/v1/ca.pem" > "$work/ca.pem"
grep -q "BEGIN CERTIFICATE" "$work/ca.pem" || die "no CA certificate from $url/api/v1/ca.pem"
start_worker 1
start_worker 2
echo "soak: dozor $("$DOZOR_BIN" --version 2>/dev/null | awk '{print $2}') ($DOZOR_BIN), PostgreSQL db $db, $BROKER on 127.0.0.1:$port_broker, server $url, work $work" >&2

# ------------------------------------------------------------------ agents
enroll_token=$("$DOZOR_BIN" tokens create --name soak --uses "$AGENTS" --expires 1h --data-dir "$work/data" 2>/dev/null)
[[ $enroll_token == dze_* ]] || die "dozor tokens create gave no enrollment token"
python3 "$here/agents.py" enroll --url "$url" --ca "$work/ca.pem" --token "$enroll_token" --agents "$AGENTS" \
    --prefix "soak$$" --out "$work/agents" >&2

# ------------------------------------------------------------------ RSS sampler
sample_rss() {
    while true; do
        local t=$(( $(date +%s) - t_run ))
        for f in "$work"/pids/*; do
            local name pid role kb
            name=$(basename "$f"); pid=$(cat "$f" 2>/dev/null || true)
            [[ -n $pid ]] || continue
            case $name in main) role=server ;; w*) role=worker ;; broker) role=broker ;; *) role=$name ;; esac
            kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
            [[ -n $kb ]] && echo "$t $role $name $pid $kb" >> "$rss"
        done
        sleep 10
    done
}

t_run=$(date +%s)
python3 "$here/agents.py" run --url "$url" --ca "$work/ca.pem" --out "$work/agents" --duration "$DURATION" \
    --batch "$BATCH" --interval "$INTERVAL" --match-every "$MATCH_EVERY" > "$work/logs/agents.log" 2>&1 &
agents_pid=$!
echo "$agents_pid" > "$work/pids/agents"
sample_rss &
bg_pids+=($!)

# ------------------------------------------------------------------ the fault schedule
# Server restarts at 1/3 (SIGTERM) and 2/3 (SIGKILL), the broker at 1/2, a worker (w1, w2,
# w1, ...) every KILL_EVERY s; a worker kill within 8 s of another fault moves 10 s later. No
# fault in the last 10 s, so the agents' last batches meet a running server.
schedule="$work/schedule"
python3 - "$DURATION" "$KILL_EVERY" > "$schedule" <<'EOF'
import sys
d, every = int(sys.argv[1]), int(sys.argv[2])
fixed = [(d // 3, "server_term"), (d // 2, "broker"), (2 * d // 3, "server_kill")]
out = list(fixed)
t, k = every, 0
while t < d - 10:
    s = t
    while any(abs(s - f) < 8 for f, _ in out):
        s += 10
    if s < d - 10:
        out.append((s, f"worker w{k % 2 + 1}"))
        k += 1
    t += every
for t, what in sorted(out):
    print(t, what)
EOF
echo "soak: fault schedule (s after the agents start): $(tr '\n' ';' < "$schedule")" >&2

# Restarts a server process that exited without being told to (a crash) and notes it.
watchdog() {
    local name
    for name in main w1 w2; do
        local pid
        pid=$(cat "$work/pids/$name")
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            { wait "$pid"; } 2>/dev/null && rc=0 || rc=$?
            note "crash $name exited by itself (status $rc); restarting it"
            tail -n 20 "$work/logs/$name.log" >&2
            if [[ $name == main ]]; then start_main; else start_worker "${name#w}"; fi
        fi
    done
}

while read -r at what arg; do
    while (( $(date +%s) - t_run < at )); do
        kill -0 "$agents_pid" 2>/dev/null || die "the agents exited early (see below)"
        watchdog
        sleep 1
    done
    case $what in
        worker)
            stop_proc "$arg" KILL
            note "worker_kill $arg SIGKILL"
            start_worker "${arg#w}" ;;
        server_term|server_kill)
            sig=TERM; [[ $what == server_kill ]] && sig=KILL
            s0=$(date +%s.%N)
            stop_proc main "$sig"
            start_main
            note "server_restart main SIG$sig down $(printf %.1f "$(echo "$(date +%s.%N) - $s0" | bc)") s" ;;
        broker)
            sig=KILL; [[ $BROKER == nats ]] && sig=TERM
            s0=$(date +%s.%N)
            stop_proc broker "$sig"
            sleep 3
            start_broker
            note "broker_restart $BROKER SIG$sig down $(printf %.1f "$(echo "$(date +%s.%N) - $s0" | bc)") s" ;;
    esac
done < "$schedule"

while kill -0 "$agents_pid" 2>/dev/null; do watchdog; sleep 1; done
wait "$agents_pid" || die "the agents failed: $(tail -n 5 "$work/logs/agents.log")"
: > "$work/pids/agents"
echo "soak [$(now)s] agents done: $(tail -n 1 "$work/logs/agents.log")" >&2

# ------------------------------------------------------------------ drain
# Drained: the broker's queue is empty and the stored count has not changed for 20 s.
d0=$(date +%s); last=-1; since=$(date +%s)
while true; do
    watchdog
    n=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" -Atc "SELECT count(*) FROM events")
    depth=$(queue_depth)
    if [[ $n != "$last" ]]; then last=$n; since=$(date +%s); fi
    if [[ $depth == 0 ]] && (( $(date +%s) - since >= 20 )); then break; fi
    if (( $(date +%s) - d0 > DRAIN_TIMEOUT )); then note "drain_timeout queue $depth stored $n"; break; fi
    sleep 2
done
echo "soak [$(now)s] drained in $(( $(date +%s) - d0 )) s: $n events stored, queue $depth" >&2
kill "${bg_pids[@]}" 2>/dev/null || true

# ------------------------------------------------------------------ verify
set +e
result=$(python3 "$here/verify.py" --out "$work/agents" --db "$db" --rule-id "$RULE_ID" --duration "$DURATION" \
    --rss "$rss" --faults "$faults" --broker "$BROKER" --json "$work/result.json")
rc=$?
set -e
if grep -q "^[0-9]* crash\|drain_timeout" "$faults"; then
    result+=$'\n'"FAIL: $(grep "crash\|drain_timeout" "$faults" | tr '\n' ';')"
    rc=1
fi
# Work the faults put back on the queue, from the servers' logs: a restarted consumer resuming
# its own pending entries, another taking over entries not acked in time (Redis), and
# pipeline cycles that failed and were retried.
redelivery=$(cat "$work"/logs/main.log "$work"/logs/w[12].log | sed 's/\x1b\[[0-9;]*m//g' | python3 -c '
import re, sys
resumed = taken = failed = 0
for line in sys.stdin:
    m = re.search(r"count=(\d+)", line)
    if "resuming this consumer" in line and m: resumed += int(m.group(1))
    elif "took over entries" in line and m: taken += int(m.group(1))
    elif "pipeline cycle failed" in line or "pipeline drain failed" in line: failed += 1
print(f"redelivered batches (Redis backend log lines; NATS redelivers silently): {resumed} resumed by their restarted consumer, {taken} taken over from another; {failed} pipeline cycles failed and were retried")')
echo
echo "Soak with faults: DURATION=$DURATION AGENTS=$AGENTS BROKER=$BROKER BATCH=$BATCH INTERVAL=$INTERVAL, $(nproc) cores"
echo "$result"
echo "$redelivery"
echo
echo "faults:"; sed 's/^/  /' "$faults"
if [[ -n "${OUT:-}" ]]; then
    { echo "DURATION=$DURATION AGENTS=$AGENTS BROKER=$BROKER"; echo "$result"; echo; cat "$faults"; } > "$OUT"
fi
if (( rc != 0 )); then
    echo "soak: FAIL — logs (last lines):" >&2
    for f in "$work"/logs/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done
fi
exit "$rc"
