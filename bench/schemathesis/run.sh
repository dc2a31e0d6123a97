#!/usr/bin/env bash
# Schema-driven API testing: schemathesis against the OpenAPI document a real `dozor server`
# serves, once per credential (viewer, analyst, an enrolled agent's client certificate,
# admin), with every check. The bar is 0 failures.
#
# Environment:
#   EXAMPLES   test cases per operation and phase (default 30; CI uses fewer)
#   MAX_TIME   time budget per credential, seconds (default: none)
#   DOZOR_BIN  a built `dozor` (default: cargo build -p dozor-cli, debug, into CARGO_TARGET_DIR)
#   OUT_DIR    reports and server logs (default: a temp dir, kept when something fails)
#   SEED       schemathesis seed (default: random; printed in the report)
#   SCHEMATHESIS_VENV  where schemathesis is installed (default ~/.cache/dozor-schemathesis)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
EXAMPLES="${EXAMPLES:-30}"
VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/dozor-schemathesis}"

# --- schemathesis, pinned --------------------------------------------------------------
want=$(sed -n 's/^schemathesis==//p' "$HERE/requirements.txt")
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$want"; then
    echo "installing schemathesis $want into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
fi

# --- the server ------------------------------------------------------------------------
if [ -z "${DOZOR_BIN:-}" ]; then
    (cd "$ROOT" && cargo build -q -p dozor-cli)
    DOZOR_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/dozor"
fi
OUT_DIR="${OUT_DIR:-$(mktemp -d -t dozor-schemathesis.XXXXXX)}"
mkdir -p "$OUT_DIR"
DATA="$OUT_DIR/data"
mkdir -p "$OUT_DIR/rules"
# One rule that the seeded events match, so alerts (and their ids) exist.
cat >"$OUT_DIR/rules/whoami.yml" <<'EOF'
title: Whoami
id: 7c1d0a4c-0000-4000-8000-000000000001
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\whoami.exe'
    condition: sel
EOF

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

DOZOR_RULES_DIRS="$OUT_DIR/rules" DOZOR_LOG="${DOZOR_LOG:-warn}" \
    "$DOZOR_BIN" server --data-dir "$DATA" --listen 127.0.0.1:0 >/dev/null 2>"$OUT_DIR/server.log" &
SERVER_PID=$!
URL=
for _ in $(seq 1 600); do
    URL=$(sed -n 's/^dozor server listening on //p' "$OUT_DIR/server.log" | head -n1)
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT_DIR/server.log" >&2; echo "dozor server exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$URL" ] || { echo "dozor server did not start" >&2; exit 1; }
echo "server: $URL (data $DATA, log $OUT_DIR/server.log)"

CA="$OUT_DIR/ca.pem"
cp "$DATA/pki/ca.crt.pem" "$CA"
python3 "$HERE/credentials.py" --dozor "$DOZOR_BIN" --data-dir "$DATA" --url "$URL" --ca "$CA" --out "$OUT_DIR" >/dev/null
# shellcheck disable=SC1091
. "$OUT_DIR/credentials.env"

# Seed: events that match the rule (so events, alerts and rule hits exist) and a YARA rule.
seed=""
for n in 1 2 3; do
    seed+="{\"@timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\",\"event\":{\"id\":\"01900000-0000-7000-8000-00000000000$n\",\"kind\":\"event\",\"category\":[\"process\"],\"type\":[\"start\"]},\"winlog\":{\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":1,\"provider_name\":\"Microsoft-Windows-Sysmon\",\"computer\":\"pc1\",\"event_data\":{\"Image\":\"C:\\\\Windows\\\\System32\\\\whoami.exe\",\"CommandLine\":\"whoami\"}}}"$'\n'
done
curl -sf --cacert "$CA" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/x-ndjson' \
    --data-binary "$seed" "$URL/api/v1/ingest" >/dev/null
curl -sf --cacert "$CA" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: text/plain' -X PUT \
    --data-binary 'rule seed { strings: $a = "dozor-seed" condition: $a }' "$URL/api/v1/yara/rules/seed.yar" >/dev/null

# --- the runs --------------------------------------------------------------------------
ST=("$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run "$URL/api/v1/openapi.json" --tls-verify "$CA"
    --checks all --max-examples "$EXAMPLES" --no-color --workers 1
    --suppress-health-check too_slow,filter_too_much
    --generation-database none --report junit,ndjson --output-truncate false)
[ -n "${SEED:-}" ] && ST+=(--seed "$SEED")
[ -n "${MAX_TIME:-}" ] && ST+=(--max-time "$MAX_TIME")
# The agent's routes (mTLS): ingest, enrollment/renewal, heartbeat, YARA rules for agents,
# sample upload and lookup, command results. Operator routes answer a certificate alone with
# 401, which the token runs already cover.
AGENT_ROUTES='^/api/v1/(ingest.*|agents/(enroll|heartbeat|yara-rules|commands/\{id\}/result)|samples.*)$'

failed=()
# The admin runs last: it may revoke the agent and change rules the other runs read.
for who in viewer analyst agent admin; do
    echo
    echo "==> schemathesis as $who"
    case $who in
    # ignored_auth is off here only: schemathesis can drop a header but not the TLS client
    # certificate, so "without credentials" would still carry it. The token runs check that
    # these routes refuse a request without credentials.
    agent) auth=(--request-cert "$AGENT_CERT" --request-cert-key "$AGENT_KEY" --include-path-regex "$AGENT_ROUTES"
        --exclude-name "GET /api/v1/samples" --exclude-name "GET /api/v1/samples/{sha256}" --exclude-checks ignored_auth) ;;
    *)
        var="${who^^}_TOKEN"
        auth=(-H "Authorization: Bearer ${!var}")
        ;;
    esac
    if ! "${ST[@]}" "${auth[@]}" --report-dir "$OUT_DIR/report-$who" 2>&1 | tee "$OUT_DIR/schemathesis-$who.txt"; then
        failed+=("$who")
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "dozor server died; see $OUT_DIR/server.log" >&2; failed+=("server"); break; }
done

echo
if [ ${#failed[@]} -ne 0 ]; then
    echo "schemathesis: failures as: ${failed[*]} (reports in $OUT_DIR)" >&2
    exit 1
fi
echo "schemathesis: 0 failures as viewer, analyst, agent and admin (reports in $OUT_DIR)"
