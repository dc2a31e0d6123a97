#!/usr/bin/env bash
# bench/response: issue 13's bars, measured (not timed tests).
#
#   notify     alert committed -> notification delivered, while ingesting RATE events/s: the shipped
#              notify-operator playbook with a webhook_url pointing at a receiver that timestamps
#              arrivals; a rule (level high) matches every MATCH_EVERY-th event, each a new alert.
#   commands   command issued -> executed on an online agent, with AGENTS simulated agents each
#              holding the long poll open (enrolled like real agents: bench/soak/agents.py enroll);
#              COMMANDS release_host actions (no approval) at COMMAND_RATE/s to random agents.
#   isolation  isolation applied -> verified reachable: the agent's own timing (`took_ms`: nft
#              transaction + self-check) from ISOLATION_RUNS runs of the end-to-end test
#              (crates/cli/tests/response_e2e.rs: the real agent in a network namespace; needs
#              root, ip, nft). Rollback timing: see docs/benchmarks.md.
#
# Everything runs on 127.0.0.1 (the isolation phase in its own network namespace), with a fresh
# `dozor server` (release build, SQLite, in-process queue) per phase in a temporary directory
# (removed at the end; KEEP_WORK=1 keeps it). Only the processes this script started are stopped.
#
# Environment: PHASES ("notify commands isolation"), RATE (5000), DURATION (60 s), MATCH_EVERY
# (500), AGENTS (200), COMMANDS (300), COMMAND_RATE (5), ISOLATION_RUNS (3), WORKERS (2),
# DOZOR_BIN (default $CARGO_TARGET_DIR/release/dozor), SKIP_BUILD=1, OUT (also write the results
# table to this file), KEEP_WORK=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

PHASES="${PHASES:-notify commands isolation}"
RATE="${RATE:-5000}"
DURATION="${DURATION:-60}"
MATCH_EVERY="${MATCH_EVERY:-500}"
AGENTS="${AGENTS:-200}"
COMMANDS="${COMMANDS:-300}"
COMMAND_RATE="${COMMAND_RATE:-5}"
ISOLATION_RUNS="${ISOLATION_RUNS:-3}"
WORKERS="${WORKERS:-2}"
target="${CARGO_TARGET_DIR:-$root/target}"
DOZOR_BIN="${DOZOR_BIN:-$target/release/dozor}"
RULE_ID="9d1c7a52-13e0-4b00-8000-00000000b013"

die() { echo "response bench: $*" >&2; exit 2; }
for tool in python3 openssl curl; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$root" && cargo build --release -p dozor-cli >&2)
fi
[[ -x "$DOZOR_BIN" ]] || die "no dozor binary at $DOZOR_BIN (build it: cargo build --release -p dozor-cli, or set DOZOR_BIN)"

work="$(mktemp -d /tmp/dozor-response-bench.XXXXXX)"
server_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_server() {
    [[ -n "$server_pid" ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# start_server NAME [VAR=VALUE...] -> sets url, token, ca, data
start_server() {
    local name=$1; shift
    data="$work/$name/data"
    mkdir -p "$data"
    local port; port="$(free_port)"
    env DOZOR_LOG=warn DOZOR_QUEUE_CAPACITY=200000 DOZOR_MAX_CONNECTIONS_PER_ADDRESS=1024 "$@" \
        "$DOZOR_BIN" server --data-dir "$data" --listen "127.0.0.1:$port" --workers "$WORKERS" \
        > "$work/$name/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 240); do grep -qs "listening on" "$work/$name/server.log" && break; sleep 0.25; done
    grep -q "listening on" "$work/$name/server.log" || die "the server did not start: $(tail -5 "$work/$name/server.log")"
    url="https://127.0.0.1:$port"
    token="$(grep -o 'dzt_[A-Za-z0-9_-]*' "$work/$name/server.log" | head -n1)"
    ca="$data/pki/ca.crt.pem"
}

rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$server_pid/status" 2>/dev/null || echo "?"; }
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): d=d.get(k, {}) if isinstance(d, dict) else {}
print(d if d != {} else "n/a")' "$1" "$2"; }

rows=()
notes=()

if [[ " $PHASES " == *" notify "* ]]; then
    echo "notify: $RATE events/s for $DURATION s, every ${MATCH_EVERY}th event a new high alert" >&2
    mkdir -p "$work/notify/rules" "$work/notify/playbooks"
    cat > "$work/notify/rules/bench-response.yml" <<EOF
title: Response bench marker executable
id: $RULE_ID
level: high
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/dozor-response-marker'
    condition: sel
EOF
    hook_port="$(free_port)"
    sed "s|^    webhook_url: \"\"|    webhook_url: \"http://127.0.0.1:$hook_port/dozor\"|" \
        "$root/crates/playbook/playbooks/notify-operator.yml" > "$work/notify/playbooks/notify-operator.yml"
    grep -q "127.0.0.1:$hook_port" "$work/notify/playbooks/notify-operator.yml" || die "webhook_url not set in notify-operator.yml"
    cp "$root/crates/playbook/playbooks/quarantine-host.yml" "$work/notify/playbooks/"
    start_server notify DOZOR_RULES_DIRS="$work/notify/rules" \
        DOZOR_RESPONSE_PLAYBOOKS_DIR="$work/notify/playbooks" DOZOR_NOTIFY_WEBHOOK_SECRET=bench-secret
    out="$(python3 "$here/respbench.py" notify --url "$url" --ca "$ca" --token "$token" --hook-port "$hook_port" \
        --rule "$RULE_ID" --rate "$RATE" --duration "$DURATION" --match-every "$MATCH_EVERY")"
    echo "$out" > "$work/notify.json"
    echo "$out" >&2
    rss="$(rss_mb)"
    stop_server
    rows+=("| alert committed → webhook delivered (notify-operator), at $(field "$out" events_per_second) events/s ingested | $(field "$out" alert_to_notification_during_load.n) of $(field "$out" alerts) alerts | $(field "$out" alert_to_notification_during_load.p50_ms) | $(field "$out" alert_to_notification_during_load.p95_ms) | **$(field "$out" alert_to_notification_during_load.p99_ms)** | $(field "$out" alert_to_notification_during_load.max_ms) | p99 < 2000 ms | $rss |")
    notes+=("notify: all notifications (also after the load ended): $(field "$out" alert_to_notification); ingest 503 retries $(field "$out" retries_503); duplicates $(field "$out" duplicate_notifications); unsigned $(field "$out" unsigned)")
fi

if [[ " $PHASES " == *" commands "* ]]; then
    echo "commands: $AGENTS simulated agents on the long poll, $COMMANDS release_host at $COMMAND_RATE/s" >&2
    mkdir -p "$work/commands/agents"
    start_server commands DOZOR_AGENT_HEARTBEAT_INTERVAL=30s
    enroll="$("$DOZOR_BIN" tokens create --expires 1h --uses "$AGENTS" --data-dir "$data" 2>/dev/null | grep -o 'dze_[A-Za-z0-9_-]*' | head -n1)"
    [[ -n "$enroll" ]] || die "no enrollment token"
    python3 "$root/bench/soak/agents.py" enroll --url "$url" --ca "$ca" --token "$enroll" --agents "$AGENTS" \
        --prefix respbench --out "$work/commands/agents" >&2
    out="$(python3 "$here/respbench.py" commands --url "$url" --ca "$ca" --token "$token" \
        --agents-dir "$work/commands/agents" --commands "$COMMANDS" --rate "$COMMAND_RATE")"
    echo "$out" > "$work/commands.json"
    echo "$out" >&2
    rss="$(rss_mb)"
    stop_server
    rows+=("| command issued → executed on an online agent (release_host, long poll), $(field "$out" agents) agents connected | $(field "$out" received) of $(field "$out" commands) commands | $(field "$out" issued_to_executed.p50_ms) | $(field "$out" issued_to_executed.p95_ms) | **$(field "$out" issued_to_executed.p99_ms)** | $(field "$out" issued_to_executed.max_ms) | p99 < 2000 ms | $rss |")
    notes+=("commands: server created_at → result recorded: $(field "$out" server_created_to_result); agent errors $(field "$out" agent_errors)")
fi

if [[ " $PHASES " == *" isolation "* ]]; then
    echo "isolation: $ISOLATION_RUNS runs of the end-to-end test (real agent, network namespace)" >&2
    took=()
    applied=()
    for i in $(seq 1 "$ISOLATION_RUNS"); do
        log="$work/isolation-$i.log"
        (cd "$root" && cargo test -q -p dozor-cli --test response_e2e -- --nocapture) > "$log" 2>&1 \
            || die "the end-to-end test failed (run $i): $(tail -20 "$log")"
        grep -q SKIPPED "$log" && die "the end-to-end test was skipped: $(grep SKIPPED "$log")"
        took+=("$(sed -n 's/.*verified the server reachable in \([0-9]*\) ms.*/\1/p' "$log")")
        applied+=("$(sed -n 's/^isolation applied \([0-9.]*\) s after the approval.*/\1/p' "$log")")
    done
    rows+=("| isolation applied → verified reachable (agent: nft transaction + self-check), $ISOLATION_RUNS runs | ${took[*]} ms | | | **max $(printf '%s\n' "${took[@]}" | sort -n | tail -1) ms** | | < 10 s | |")
    notes+=("isolation: approval → nftables table in the host's kernel: ${applied[*]} s (e2e test)")
fi

{
    echo "| bar | measured | p50 ms | p95 ms | p99 ms | max ms | target | server peak RSS MB |"
    echo "|---|---|---:|---:|---:|---:|---|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    printf -- '- %s\n' "${notes[@]}"
    echo
    echo "command: PHASES=\"$PHASES\" RATE=$RATE DURATION=$DURATION MATCH_EVERY=$MATCH_EVERY AGENTS=$AGENTS COMMANDS=$COMMANDS COMMAND_RATE=$COMMAND_RATE ISOLATION_RUNS=$ISOLATION_RUNS WORKERS=$WORKERS bench/response/run.sh"
    echo "binary: $DOZOR_BIN ($(git -C "$root" rev-parse --short HEAD)), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "${OUT:-/dev/null}"
