#!/usr/bin/env bash
# YARA scanning throughput: dozor-scan's yara-x engine (crates/scan/examples/yara_scan.rs)
# against Debian's `yara` 4.2.3 CLI, same rules, same files, 1 and 2 threads (issue 6).
#
#   bash bench/yara/run.sh
#
# Environment: RUNS (timed runs per configuration, default 3; medians are reported),
# THREADS ("1 2"), RULES (500), SEED (6), CORPUS_MAX_BYTES (1000000000), FILE_MAX_BYTES
# (67108864: larger files are left out of the corpus), CORPUS_DIRS ("/usr/bin
# /usr/lib/x86_64-linux-gnu"), OUT_DIR (default: a new temp dir), SKIP_BUILD=1.
#
# Reads system files only; writes in OUT_DIR and $CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dozor-target}
RUNS=${RUNS:-3}
THREADS=${THREADS:-"1 2"}
RULES=${RULES:-500}
SEED=${SEED:-6}
CORPUS_MAX_BYTES=${CORPUS_MAX_BYTES:-1000000000}
FILE_MAX_BYTES=${FILE_MAX_BYTES:-67108864}
CORPUS_DIRS=${CORPUS_DIRS:-"/usr/bin /usr/lib/x86_64-linux-gnu"}
OUT_DIR=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dozor-yara-bench.XXXXXX")}
mkdir -p "$OUT_DIR"
say() { printf '==> %s\n' "$*" >&2; }

# ---- tools -------------------------------------------------------------------------------
if ! command -v yara >/dev/null; then
    say "installing yara (Debian package)"
    apt-get install -y yara >/dev/null
fi
if ! command -v hyperfine >/dev/null; then
    apt-get install -y hyperfine >/dev/null 2>&1 || say "hyperfine not available: timing with date, median of $RUNS"
fi
YARA_VERSION=$(yara --version)

DOZOR="$CARGO_TARGET_DIR/release/examples/yara_scan"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "building the yara_scan example (release)"
    (cd "$ROOT" && cargo build --release --locked -p dozor-scan --features yara --example yara_scan)
fi

# ---- rules, samples, corpus --------------------------------------------------------------
GEN="$OUT_DIR/gen"
python3 "$ROOT/bench/yara/gen_rules.py" "$GEN" --rules "$RULES" --seed "$SEED" >&2
RULE_FILES=("$GEN"/rules/*.yar)
LIST="$OUT_DIR/files.txt"
read -r NFILES NBYTES < <(python3 - "$LIST" "$CORPUS_MAX_BYTES" "$FILE_MAX_BYTES" "$GEN/samples" $CORPUS_DIRS <<'EOF'
import os, stat, sys
out, cap, per_file, samples, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
files, total = [], 0
def regular(p):
    try:
        st = os.lstat(p)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK) else None
for name in sorted(os.listdir(samples)):
    p = os.path.join(samples, name)
    size = regular(p)
    if size is not None:
        files.append(p); total += size
paths = []
for d in dirs:
    for root, subdirs, names in os.walk(d):
        subdirs.sort()
        paths.extend(os.path.join(root, n) for n in sorted(names))
for p in paths:
    size = regular(p)
    if size is None or size == 0 or size > per_file:
        continue
    if total + size > cap:
        break
    files.append(p); total += size
with open(out, "w") as f:
    f.write("".join(p + "\n" for p in files))
print(len(files), total)
EOF
)
say "corpus: $NFILES files, $NBYTES bytes ($CORPUS_DIRS + generated samples)"

# yara 4.2.3 uses its threads (-p) only when it walks a directory (`--scan-list` is scanned on
# one thread whatever -p says), so yara gets a directory of symbolic links to the same files,
# named by their line number in the list (it follows links by default); dozor-scan gets the
# list. Match paths are mapped back through the list.
LINKS="$OUT_DIR/corpus"
rm -rf "$LINKS"
mkdir -p "$LINKS"
python3 - "$LIST" "$LINKS" <<'EOF2'
import os, sys
for i, line in enumerate(open(sys.argv[1])):
    os.symlink(line.rstrip("\n"), os.path.join(sys.argv[2], f"{i:06d}"))
EOF2
unlink_paths() {
    python3 -c '
import sys
files = [l.rstrip("\n") for l in open(sys.argv[1])]
prefix = sys.argv[2].rstrip("/") + "/"
for line in sys.stdin:
    rule, _, path = line.rstrip("\n").partition(" ")
    if path.startswith(prefix):
        path = files[int(path[len(prefix):])]
    print(rule, path)
' "$LIST" "$LINKS"
}

# ---- warm the page cache and compare matches --------------------------------------------
say "warming the page cache"
tr '\n' '\0' <"$LIST" | xargs -0 cat >/dev/null

say "match comparison (1 thread each, untimed warm-up run)"
yara -w -r -p 1 -a 600 "${RULE_FILES[@]}" "$LINKS" 2>"$OUT_DIR/yara.err" | unlink_paths | sort >"$OUT_DIR/matches.yara"
"$DOZOR" --threads 1 --timeout 600 --max-bytes "$FILE_MAX_BYTES" --scan-list "$LIST" "$GEN/rules" \
    2>"$OUT_DIR/dozor.err" | sort >"$OUT_DIR/matches.dozor"
ONLY_YARA=$(comm -23 "$OUT_DIR/matches.yara" "$OUT_DIR/matches.dozor" | wc -l)
ONLY_DOZOR=$(comm -13 "$OUT_DIR/matches.yara" "$OUT_DIR/matches.dozor" | wc -l)
BOTH=$(comm -12 "$OUT_DIR/matches.yara" "$OUT_DIR/matches.dozor" | wc -l)
say "matches: $BOTH in both, $ONLY_YARA only yara, $ONLY_DOZOR only dozor"
if [[ "$ONLY_YARA$ONLY_DOZOR" != 00 ]]; then
    say "DIFFERENCES (first 20):"
    diff "$OUT_DIR/matches.yara" "$OUT_DIR/matches.dozor" | head -20 >&2 || true
fi
RULES_MATCHED=$(cut -d' ' -f1 "$OUT_DIR/matches.yara" | sort | uniq -c | sort -rn)

# ---- timing --------------------------------------------------------------------------------
# median_seconds NAME CMD...: runs CMD (stdout discarded) RUNS times after one warm-up run and
# prints "median_wall_s mean_user_plus_sys_s".
median_seconds() {
    local name=$1
    shift
    if command -v hyperfine >/dev/null; then
        hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT_DIR/$name.json" "$(printf '%q ' "$@")" >&2
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f %.3f" % (r["median"], r["user"] + r["system"]))' "$OUT_DIR/$name.json"
    else
        "$@" >/dev/null 2>&1
        local times=()
        for _ in $(seq "$RUNS"); do
            local t0 t1
            t0=$(date +%s.%N)
            "$@" >/dev/null 2>&1
            t1=$(date +%s.%N)
            times+=("$(echo "$t1 - $t0" | bc)")
        done
        printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f n/a\n", a[int((NR+1)/2)]}'
    fi
}

EMPTY="$OUT_DIR/empty.txt"
: >"$EMPTY"
say "compile time (rules + one empty file)"
read -r YARA_COMPILE _ < <(median_seconds compile-yara yara -w "${RULE_FILES[@]}" "$EMPTY")
read -r DOZOR_COMPILE _ < <(median_seconds compile-dozor "$DOZOR" "$GEN/rules" "$EMPTY")

declare -A WALL CPU
for t in $THREADS; do
    say "yara -p $t"
    read -r "WALL[yara$t]" "CPU[yara$t]" < <(median_seconds "yara-$t" yara -w -r -p "$t" -a 600 "${RULE_FILES[@]}" "$LINKS")
    say "dozor --threads $t"
    read -r "WALL[dozor$t]" "CPU[dozor$t]" < <(median_seconds "dozor-$t" "$DOZOR" --threads "$t" --timeout 600 --max-bytes "$FILE_MAX_BYTES" --scan-list "$LIST" "$GEN/rules")
done

# ---- report --------------------------------------------------------------------------------
{
    echo "YARA throughput — $(date -u +%Y-%m-%d), $(nproc) cores, $YARA_VERSION vs yara-x $(grep -A1 'name = "yara-x"' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
    echo
    echo "Corpus: $NFILES files, $NBYTES bytes. Rules: $RULES (seed $SEED). Runs: $RUNS (median wall time)."
    echo
    echo "| engine | threads | seconds (wall, whole process) | MB/s | CPU s (user+sys) | scan MB/s (wall − compile) | yara time ÷ this |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in $THREADS; do
        for e in yara dozor; do
            if [[ $e == yara ]]; then
                label="yara $YARA_VERSION CLI"
                compile=$YARA_COMPILE
            else
                label="dozor-scan (yara-x)"
                compile=$DOZOR_COMPILE
            fi
            python3 -c "
import sys
w, y, c, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print('| %s | %s | %.2f | %.0f | %s | %.0f | %.2f |' % (sys.argv[5], sys.argv[6], w, n / 1e6 / w, sys.argv[7], n / 1e6 / max(w - c, 1e-3), y / w))
" "${WALL[$e$t]}" "${WALL[yara$t]}" "$compile" "$NBYTES" "$label" "$t" "${CPU[$e$t]}"
        done
    done
    echo
    echo "Compile (rules + one empty file, whole process): yara ${YARA_COMPILE} s, dozor ${DOZOR_COMPILE} s."
    echo
    echo "Matches: $BOTH (rule, file) pairs found by both, $ONLY_YARA only by yara, $ONLY_DOZOR only by dozor."
    echo
    echo "Matches per rule:"
    echo "$RULES_MATCHED" | sed 's/^/    /'
    echo
    echo "Commands:"
    echo "    yara -w -r -p N -a 600 $GEN/rules/*.yar $LINKS    # symlinks to the files of $LIST"
    echo "    $DOZOR --threads N --timeout 600 --max-bytes $FILE_MAX_BYTES --scan-list $LIST $GEN/rules"
} | tee "$OUT_DIR/results.md"
say "results in $OUT_DIR/results.md"
