#!/usr/bin/env bash
# bench/hostile: the hostile inputs of issue 12's review, all at once, against a release
# `dozor server` on 127.0.0.1 (SQLite, in-process queue): 60 threads guessing passwords,
# 6 × 15 MiB `[[[],…]]` JSON bodies (just under the 16 MiB body limit, so they are parsed), 2 × event XML with 80,000 data fields, 50 slow clients
# sending a byte every 5 s — while an unrelated client posts one event a second.
#
# Prints the server's peak RSS (VmHWM), its RSS before, and the unrelated client's answer
# times. The bar: peak RSS < 1 GB, every unrelated upload answered in < 2 s.
#
# Environment: SECONDS_UNDER_ATTACK (default 60), SKIP_BUILD=1, DOZOR_BIN (default the
# release build in CARGO_TARGET_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
dozor="${DOZOR_BIN:-$target/release/dozor}"
seconds="${SECONDS_UNDER_ATTACK:-60}"
work="$(mktemp -d)"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

[[ "${SKIP_BUILD:-0}" == 1 || -n "${DOZOR_BIN:-}" ]] || (cd "$root" && cargo build --release -p dozor-cli >&2)

data="$work/data"
mkdir -p "$data"
DOZOR_LOG=warn "$dozor" server --data-dir "$data" --listen 127.0.0.1:0 >"$work/log" 2>&1 &
pid=$!
url=
for _ in $(seq 1 600); do
    url=$(sed -n 's/^dozor server listening on //p' "$work/log" | head -n1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "dozor server did not start" >&2; exit 1; }
token=$(grep -o 'dzt_[A-Za-z0-9_-]*' "$work/log" | head -n1)
cp "$data/pki/ca.crt.pem" "$work/ca.pem"
head -c 24 /dev/urandom | base64 | "$dozor" users create alice --role admin --password-stdin --data-dir "$data" >/dev/null

rss_before=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status)
echo "server $url (pid $pid), RSS before: ${rss_before} MB; attacking for ${seconds} s" >&2
result=$(python3 "$here/hostile.py" --url "$url" --ca "$work/ca.pem" --token "$token" --user alice --seconds "$seconds")
peak=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$pid/status)
sleep 5
after=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status)
kill -0 "$pid" || { echo "the server died" >&2; exit 1; }

echo "$result" | python3 -c '
import json, sys
r = json.load(sys.stdin)
peak, before, after = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
u = r["unrelated"]
print(f"| attack seconds | peak RSS MB | RSS before / 5 s after MB | unrelated uploads ok / failed | p50 s | max s |")
print(f"|---:|---:|---:|---:|---:|---:|")
secs, ok_n, failed_n, p50, mx = r["seconds"], u["ok"], u["failed"], u["p50_s"], u["max_s"]
print(f"| {secs} | {peak} | {before} / {after} | {ok_n} / {failed_n} | {p50} | {mx} |")
print()
for attack, answers in sorted(r["answers"].items()):
    print(f"- {attack}: " + ", ".join(f"{k} × {v}" for k, v in sorted(answers.items())))
ok = peak < 1024 and u["failed"] == 0 and u["ok"] > 0 and u["max_s"] < 2.0
print()
print("bar (peak RSS < 1 GB, every unrelated upload answered in < 2 s):", "MET" if ok else "NOT MET")
sys.exit(0 if ok else 1)
' "$peak" "$rss_before" "$after"
