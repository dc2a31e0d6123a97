#!/usr/bin/env bash
# bench/search (issue 19): the events page's searches over millions of events, on SQLite and
# PostgreSQL.
#
#   EVENTS=10000000 SEED=1000000 RUNS=20 MODES="sqlite postgres" bash bench/search/run.sh
#
# Seeds SEED events over 30 days through the store's own insert path (so every indexed column
# is derived as the server derives it; crates/store/examples/search_bench.rs describes the
# distributions), multiplies them to EVENTS inside the database (`amplify`: each copy a new id,
# its time moved by a few tens of milliseconds), then times each query RUNS times the way
# `GET /ui/events` runs it (span for all-time searches, then the page of 100 and the histogram
# together) and prints p50 / p95 / max. The stores are kept in DATA (default
# $HOME/.cache/dozor-search-bench; PostgreSQL: database PG_DB, default `dozor_bench_search`, on
# the server of PG_URL, default postgres://postgres@127.0.0.1:5432) and reused when they already
# hold EVENTS events; FRESH=1 seeds again, CLEANUP=1 removes them at the end (the CI smoke).
# BIN=path runs a search_bench built elsewhere (CI: the debug one its tests step built). Only
# targets 127.0.0.1. Disk: ~12 GB per 10M events on SQLite, ~15 GB on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-10000000}
SEED=${SEED:-1000000}
RUNS=${RUNS:-20}
MODES=${MODES:-sqlite postgres}
DATA=${DATA:-$HOME/.cache/dozor-search-bench}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-dozor_bench_search}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dozor-target}
if [ $((EVENTS % SEED)) -ne 0 ]; then
    echo "EVENTS ($EVENTS) must be a multiple of SEED ($SEED)" >&2
    exit 2
fi
if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p dozor-store --example search_bench
    BIN=$CARGO_TARGET_DIR/release/examples/search_bench
fi

stored() {  # location → events stored (0 when there is no store)
    case "$1" in
        postgres*) psql -qtA "$1" -c "SELECT count(*) FROM events" 2>/dev/null || echo 0 ;;
        *) [ -f "$1/dozor.db" ] && python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM events').fetchone()[0])" "$1/dozor.db" || echo 0 ;;
    esac
}

for mode in $MODES; do
    case $mode in
        sqlite) location=$DATA/sqlite ;;
        postgres) location=$PG_URL/$PG_DB ;;
        *) echo "unknown mode $mode (sqlite, postgres)" >&2; exit 2 ;;
    esac
    echo "== $mode: $location"
    if [ "${FRESH:-0}" = 1 ] || [ "$(stored "$location")" != "$EVENTS" ]; then
        case $mode in
            sqlite) rm -rf "$location"; mkdir -p "$location" ;;
            postgres)
                psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" \
                    -c "CREATE DATABASE $PG_DB" ;;
        esac
        /usr/bin/time -f "seed: %e s, peak RSS %M KB" "$BIN" seed "$location" "$SEED" 30
        if [ "$EVENTS" -gt "$SEED" ]; then
            /usr/bin/time -f "amplify: %e s" "$BIN" amplify "$location" $((EVENTS / SEED))
        fi
    fi
    case $mode in
        sqlite) du -sh "$location" ;;
        postgres) psql -qtA "$location" -c "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))" ;;
    esac
    "$BIN" run "$location" "$RUNS"
    if [ "${CLEANUP:-0}" = 1 ]; then
        case $mode in
            sqlite) rm -rf "$location" ;;
            postgres) psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" ;;
        esac
    fi
done
