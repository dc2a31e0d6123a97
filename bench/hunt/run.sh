#!/usr/bin/env bash
# bench/hunt: `dozor hunt` vs rsigma over the same EVTX corpus and Sigma rules.
#
# Builds `dozor` (release) and bench/rsigma-harness (release), then runs, one
# after another on this machine:
#   1. dozor hunt --threads 1   under /usr/bin/time -v
#   2. dozor hunt --threads 2   under /usr/bin/time -v
#   3. rsigma-harness           under /usr/bin/time -v (it also reports its own
#                               eval-only thread CPU time)
# each RUNS times (default 3; the run with the median CPU time is reported),
# and prints a markdown table plus the exact command lines.
#
# Environment:
#   DOZOR_SHARED_DIR  reference data (default: <repo>/../shared)
#   CORPUS            EVTX corpus (default: $DOZOR_SHARED_DIR/datasets/evtx-to-mitre-attack)
#   RUNS              repetitions per configuration (default 3)
#   OUT_DIR           where logs, summaries and results.md go
#                     (default: bench/hunt/results/<UTC timestamp>)
#   SKIP_BUILD=1      use the binaries already built
#   SKIP_DOZOR=1      run only the rsigma harness
#   HARNESS_ARGS      extra arguments for rsigma-harness (e.g. "--bloom")
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shared="${DOZOR_SHARED_DIR:-$root/../shared}"
if [[ ! -d "$shared" ]]; then
    echo "error: shared data not found at $shared (set DOZOR_SHARED_DIR)" >&2
    exit 2
fi
shared="$(cd "$shared" && pwd)"
corpus="${CORPUS:-$shared/datasets/evtx-to-mitre-attack}"
rules=("$shared/sigma/rules" "$shared/sigma/rules-emerging-threats" "$shared/sigma/rules-threat-hunting")
logsource_map="$shared/sigma/tests/thor.yml"
runs="${RUNS:-3}"
out="${OUT_DIR:-$here/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

for d in "$corpus" "${rules[@]}"; do
    [[ -d "$d" ]] || { echo "error: missing $d" >&2; exit 2; }
done
n_files=$(find "$corpus" -type f -iname '*.evtx' | wc -l)

# --- tools ------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
    echo "GNU time not found; installing it (apt-get install -y time)" >&2
    if [[ $(id -u) -eq 0 ]]; then
        { apt-get install -y time || { apt-get update && apt-get install -y time; }; } >&2
    else
        sudo apt-get install -y time >&2
    fi
fi
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time (GNU time) is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is required for the report" >&2; exit 2; }

# --- build ------------------------------------------------------------------
dozor_target="${CARGO_TARGET_DIR:-$root/target}"
dozor_bin="$dozor_target/release/dozor"
harness_dir="$root/bench/rsigma-harness"
harness_bin="$harness_dir/target/release/rsigma-harness"
dozor_status="ok"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    if [[ "${SKIP_DOZOR:-0}" != 1 ]]; then
        echo "== building dozor (cargo build --release -p dozor-cli)" >&2
        if ! (cd "$root" && cargo build --release -p dozor-cli) >"$out/build-dozor.log" 2>&1; then
            dozor_status="build failed (see $out/build-dozor.log)"
            tail -n 20 "$out/build-dozor.log" >&2
        fi
    fi
    echo "== building rsigma-harness (release)" >&2
    if ! (cd "$harness_dir" && CARGO_TARGET_DIR="$harness_dir/target" cargo build --release --locked) \
        >"$out/build-harness.log" 2>&1; then
        tail -n 30 "$out/build-harness.log" >&2
        echo "error: rsigma-harness build failed (see $out/build-harness.log)" >&2
        exit 1
    fi
fi
if [[ "${SKIP_DOZOR:-0}" == 1 ]]; then
    dozor_status="skipped (SKIP_DOZOR=1)"
elif [[ "$dozor_status" == ok && ! -x "$dozor_bin" ]]; then
    dozor_status="binary not found at $dozor_bin"
elif [[ "$dozor_status" == ok ]] && ! "$dozor_bin" hunt --help >/dev/null 2>&1; then
    dozor_status="\`dozor hunt\` not available in $dozor_bin"
fi
[[ -x "$harness_bin" ]] || { echo "error: $harness_bin missing" >&2; exit 1; }

# --- commands ---------------------------------------------------------------
rule_args=()
for r in "${rules[@]}"; do rule_args+=(--rules "$r"); done

dozor_cmd() { # threads summary-file
    printf '%q ' "$dozor_bin" hunt "$corpus" "${rule_args[@]}" --threads "$1" \
        --format jsonl --output /dev/null --summary-json "$2"
}
# shellcheck disable=SC2206
harness_extra=(${HARNESS_ARGS:-})
harness_cmd() {
    printf '%q ' "$harness_bin" "${rule_args[@]}" --logsource-map "$logsource_map" \
        "${harness_extra[@]}" "$corpus"
}

# run NAME RUN CMD...: time -v into $out/NAME.RUN.time, stdout/stderr to files
run_timed() {
    local name=$1 i=$2
    shift 2
    /usr/bin/time -v -o "$out/$name.$i.time" "$@" >"$out/$name.$i.stdout" 2>"$out/$name.$i.stderr"
    local rc=$?
    echo "$rc" >"$out/$name.$i.rc"
    return $rc
}

configs=()
if [[ "$dozor_status" == ok ]]; then
    configs+=(dozor-t1 dozor-t2)
fi
configs+=(rsigma)

declare -A cmdline
for i in $(seq 1 "$runs"); do
    for c in "${configs[@]}"; do
        echo "== run $i/$runs: $c" >&2
        case $c in
            dozor-t1 | dozor-t2)
                t=${c#dozor-t}
                s="$out/$c.$i.summary.json"
                rm -f "$s"
                cmdline[$c]="$(dozor_cmd "$t" "$out/$c.N.summary.json")"
                # exit codes of `dozor hunt`: 0 = nothing detected, 1 = detections, 2 = error
                run_timed "$c" "$i" "$dozor_bin" hunt "$corpus" "${rule_args[@]}" --threads "$t" \
                    --format jsonl --output /dev/null --summary-json "$s"
                if [[ $(cat "$out/$c.$i.rc") -gt 1 || ! -s "$s" ]]; then
                    echo "warning: $c run $i exited $(cat "$out/$c.$i.rc") (summary: $(test -s "$s" && echo yes || echo missing)); stderr:" >&2
                    tail -n 5 "$out/$c.$i.stderr" >&2
                fi
                ;;
            rsigma)
                cmdline[$c]="$(harness_cmd)"
                if ! run_timed "$c" "$i" "$harness_bin" "${rule_args[@]}" --logsource-map "$logsource_map" \
                    "${harness_extra[@]}" "$corpus"; then
                    echo "error: rsigma-harness failed:" >&2
                    tail -n 20 "$out/$c.$i.stderr" >&2
                    exit 1
                fi
                ;;
        esac
    done
done

# --- report -----------------------------------------------------------------
{
    for c in dozor-t1 dozor-t2 rsigma; do
        echo "cmd	$c	${cmdline[$c]:-}"
    done
} >"$out/commands.tsv"

python3 - "$out" "$runs" "$dozor_status" "$corpus" "$n_files" <<'PY' | tee "$out/results.md"
import json, os, re, sys, platform

out, runs, dozor_status, corpus, n_files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
cmds = {}
for line in open(os.path.join(out, "commands.tsv")):
    _, name, cmd = line.rstrip("\n").split("\t", 2)
    cmds[name] = cmd

def gnu_time(path):
    t = {}
    try:
        text = open(path).read()
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("User time (seconds):"):
            t["user"] = float(line.split(":")[-1])
        elif line.startswith("System time (seconds):"):
            t["sys"] = float(line.split(":")[-1])
        elif line.startswith("Maximum resident set size (kbytes):"):
            t["rss_mb"] = int(line.split(":")[-1]) / 1024
        elif line.startswith("Elapsed (wall clock) time"):
            v = line.rsplit(" ", 1)[-1]
            parts = [float(p) for p in v.split(":")]
            wall = 0.0
            for p in parts:
                wall = wall * 60 + p
            t["wall"] = wall
    if "user" not in t:
        return None
    t["cpu"] = t["user"] + t["sys"]
    return t

def load_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):  # last JSON line wins
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None

def median_run(name, extra):
    rows = []
    for i in range(1, runs + 1):
        t = gnu_time(os.path.join(out, f"{name}.{i}.time"))
        try:
            rc = int(open(os.path.join(out, f"{name}.{i}.rc")).read())
        except (OSError, ValueError):
            rc = None
        ok_codes = (0,) if name == "rsigma" else (0, 1)  # dozor hunt: 1 = detections
        if t is None or rc not in ok_codes:
            continue
        d = extra(i)
        if d is None:
            continue
        rows.append((t, d, i))
    if not rows:
        return None
    key = (lambda r: r[1]["eval_cpu_seconds"]) if name == "rsigma" else (lambda r: r[1].get("hunt_cpu_seconds", r[0]["cpu"]))
    rows.sort(key=key)
    return rows[len(rows) // 2] + (len(rows),)

def fmt(x, nd=2):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}"

results = {}
for name in ("dozor-t1", "dozor-t2"):
    results[name] = median_run(name, lambda i, n=name: load_json(os.path.join(out, f"{n}.{i}.summary.json")))
results["rsigma"] = median_run("rsigma", lambda i: load_json(os.path.join(out, f"rsigma.{i}.stdout")))

print(f"### bench/hunt — `dozor hunt` vs rsigma\n")
print(f"- corpus: `{corpus}` ({n_files} EVTX files); rules: SigmaHQ `rules`, `rules-emerging-threats`, `rules-threat-hunting`")
print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
      f"{runs} run(s) per configuration, the median (by CPU time) is shown")
if dozor_status != "ok":
    print(f"- **dozor: {dozor_status}**")
print()
print("| run | events | detections | rules loaded / failed | wall s | CPU s (user+sys) | events / CPU-s | peak RSS MB |")
print("|---|---:|---:|---|---:|---:|---:|---:|")

def dozor_row(name, label):
    r = results.get(name)
    if r is None:
        print(f"| {label} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
        return None
    t, s, i, n = r
    ev = s.get("events")
    eps = ev / t["cpu"] if ev and t["cpu"] > 0 else None
    failed = s.get("rules_failed", s.get("rules_invalid"))
    loaded = f"{fmt(s.get('rules_loaded'))} / {fmt(failed)}"
    print(f"| {label} | {fmt(ev)} | {fmt(s.get('detections'))} | {loaded} | {fmt(t['wall'])} | {fmt(t['cpu'])} | {fmt(eps, 0)} | {fmt(t['rss_mb'], 1)} |")
    return eps

eps_t1 = dozor_row("dozor-t1", "dozor hunt --threads 1, whole process (load + decode + detect + output)")
eps_t2 = dozor_row("dozor-t2", "dozor hunt --threads 2, whole process")
# EVTX in, detections out, rule loading excluded: the worker threads' CPU time (decode,
# detection, building the output records), and the detection engine alone.
eps_hunt = eps_detect = None
r = results.get("dozor-t1")
if r is not None:
    t, s, i, n = r
    if s.get("hunt_cpu_seconds"):
        eps_hunt = s["events"] / s["hunt_cpu_seconds"]
        print(f"| dozor hunt --threads 1, **EVTX in → detections out** (rule loading excluded) | {fmt(s['events'])} | {fmt(s['detections'])} | | | {fmt(s['hunt_cpu_seconds'], 3)} | {fmt(eps_hunt, 0)} | |")
    if s.get("detect_seconds"):
        eps_detect = s["events"] / s["detect_seconds"]
        print(f"| dozor hunt --threads 1, detection engine only | {fmt(s['events'])} | {fmt(s['detections'])} | | | {fmt(s['detect_seconds'], 3)} | {fmt(eps_detect, 0)} | |")
rs = results.get("rsigma")
rs_eval = rs_proc = None
if rs is not None:
    t, d, i, n = rs
    rs_eval = d["eval_events_per_cpu_second"]
    rs_proc = d["events"] / t["cpu"] if t["cpu"] > 0 else None
    loaded = f"{fmt(d['rules_loaded'])} / {fmt(d['rules_failed'])}"
    print(f"| rsigma 0.23, 1 thread, **eval only** | {fmt(d['events'])} | {fmt(d['matches'])} | {loaded} | {fmt(d['eval_wall_seconds'])} | {fmt(d['eval_cpu_seconds'])} | {fmt(rs_eval, 0)} | {fmt(t['rss_mb'], 1)} |")
    print(f"| rsigma 0.23, 1 thread, whole process (load + decode + eval) | {fmt(d['events'])} | {fmt(d['matches'])} | {loaded} | {fmt(t['wall'])} | {fmt(t['cpu'])} | {fmt(rs_proc, 0)} | {fmt(t['rss_mb'], 1)} |")
print()

def ratio(a, b):
    return f"**{a / b:.2f}×**" if a and b else "n/a"

print(f"- ratio, dozor EVTX in → detections out ÷ rsigma engine alone (the bar: ≥ 1×, goal 2×): {ratio(eps_hunt, rs_eval)}")
print(f"- ratio, dozor detection engine alone ÷ rsigma engine alone: {ratio(eps_detect, rs_eval)}")
print(f"- ratio, whole processes, both loading rules and decoding EVTX: {ratio(eps_t1, rs_proc)}")
if rs is not None:
    d = rs[1]
    print(f"- rsigma detail: rule load {fmt(d['load_seconds'])} s, EVTX decode + flatten {fmt(d['decode_seconds'])} s (not in eval), "
          f"eval {fmt(d['eval_cpu_seconds'], 3)} CPU-s; {d['events_matched']:,} events matched ≥ 1 rule")
for name in ("dozor-t1", "dozor-t2"):
    r = results.get(name)
    if r is not None:
        s = r[1]
        keys = ", ".join(f"{k}={v}" for k, v in s.items() if not isinstance(v, (dict, list)))
        print(f"- {name} summary: {keys}")
print()
print("Command lines:\n")
print("```")
for name in ("dozor-t1", "dozor-t2", "rsigma"):
    if cmds.get(name):
        print(f"/usr/bin/time -v {cmds[name].strip()}")
print("```")
print(f"\nRaw logs, GNU time output and summaries: `{out}`")
PY
