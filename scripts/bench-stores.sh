#!/usr/bin/env bash
# Measures `trailmill process` into the stores on one synthetic corpus:
# a null baseline (JSON Lines to /dev/null), Parquet, SQLite and PostgreSQL.
#
#   scripts/bench-stores.sh                  # seed 1, best of 3
#   SEED=7 RUNS=1 scripts/bench-stores.sh
#
# Environment:
#   SEED       synth seed; the corpus is cached in bench-out/stores-corpus-SEED (default 1)
#   RUNS       timed runs per target, best time kept (default 3)
#   PG_URL     the PostgreSQL server (default: the private cluster that
#              scripts/setup-postgres.sh starts; each run gets a fresh database)
#   THREADS    worker threads (default: one per core)
#
# events/s is events in over wall seconds; MB/s is uncompressed JSON over wall
# seconds (MB = 10^6 bytes). Timings are never part of the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEED=${SEED:-1}
RUNS=${RUNS:-3}
OUT=bench-out
CORPUS=$OUT/stores-corpus-$SEED
# 2 accounts x 2 regions x 4 hours x 12 logs/hour = 192 log files of 1,000
# events (~1.3 KB each): 192,000 events, ~250 MB of JSON.
SYNTH_ARGS=(--accounts 2 --regions 2 --hours 4 --logs-per-hour 12 --records 1000 --seed "$SEED")
THREAD_ARGS=()
[[ -n ${THREADS:-} ]] && THREAD_ARGS=(--threads "$THREADS")

log() { printf '==> %s\n' "$*" >&2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

log "building trailmill (release)"
cargo build --release -p trailmill-cli
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/trailmill

if [[ ! -d $CORPUS ]]; then
    log "generating $CORPUS: trailmill synth ${SYNTH_ARGS[*]}"
    rm -rf "$CORPUS.partial"
    "$BIN" synth "$CORPUS.partial" "${SYNTH_ARGS[@]}"
    mv "$CORPUS.partial" "$CORPUS"
fi

PG_URL=${PG_URL:-$(bash scripts/setup-postgres.sh)}
PSQL_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
[[ -x $PSQL_BIN ]] || PSQL_BIN=psql
pg_admin() { "$PSQL_BIN" "$PG_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
pg_db_url() { # the server URL with database $1
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"
}

# run NAME SETUP SPEC: runs `process CORPUS --sink SPEC` $RUNS times after
# calling SETUP (which empties the target) before each; keeps the best time.
# Sets BEST_S, EVENTS, MB and prints each run's summary lines.
run() {
    local name=$1 setup=$2 spec=$3 i start end s
    BEST_S=
    for ((i = 1; i <= RUNS; i++)); do
        $setup
        sync
        start=$(date +%s.%N)
        "$BIN" process "$CORPUS" --sink "$spec" "${THREAD_ARGS[@]}" 2>"$WORK/summary"
        end=$(date +%s.%N)
        s=$(python3 -c "print(f'{$end - $start:.3f}')")
        log "$name run $i/$RUNS: $s s; $(grep -E 'events in|sink ' "$WORK/summary" | tr '\n' ' ')"
        if [[ -z $BEST_S ]] || python3 -c "import sys; sys.exit(not $s < $BEST_S)"; then
            BEST_S=$s
        fi
    done
    read -r EVENTS MB < <(sed -nE 's/^trailmill: ([0-9]+) events in, [0-9]+ out; [0-9.]+ MB read, ([0-9.]+) MB uncompressed.*/\1 \2/p' "$WORK/summary")
    ROWS+=("$name|$spec|$BEST_S|$EVENTS|$MB")
}

ROWS=()
noop() { :; }
clean_lake() { rm -rf "$WORK/lake"; }
# The database, its log and the state kept beside it.
clean_sqlite() { rm -f "$WORK"/events.db*; }
fresh_pg() {
    pg_admin "DROP DATABASE IF EXISTS trailmill_bench WITH (FORCE)"
    pg_admin "CREATE DATABASE trailmill_bench"
}

log "warming the page cache"
"$BIN" process "$CORPUS" --sink jsonl:/dev/null -q
run "null (jsonl to /dev/null)" noop "jsonl:/dev/null"
run "parquet" clean_lake "parquet:$WORK/lake"
LAKE_MB=$(du -sm "$WORK/lake" | cut -f1)
run "sqlite" clean_sqlite "sqlite:$WORK/events.db"
SQLITE_MB=$(du -sm "$WORK/events.db" | cut -f1)
run "postgres" fresh_pg "postgres:$(pg_db_url trailmill_bench)"
PG_ROWS=$("$PSQL_BIN" "$(pg_db_url trailmill_bench)" -qAtX -c "SELECT count(*) FROM events")
PG_SIZE=$("$PSQL_BIN" "$(pg_db_url trailmill_bench)" -qAtX -c "SELECT pg_size_pretty(pg_total_relation_size('events'))")

echo
echo "trailmill bench-stores, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus $CORPUS (synth ${SYNTH_ARGS[*]}); best of $RUNS runs"
echo "parquet lake: ${LAKE_MB} MB on disk; sqlite: ${SQLITE_MB} MB; postgres: $PG_ROWS rows, table with indexes $PG_SIZE"
echo
python3 - "${ROWS[@]}" <<'EOF'
import sys
rows = [r.split("|") for r in sys.argv[1:]]
print(f"{'target':28} {'seconds':>8} {'events/s':>12} {'MB/s':>8}")
rate = {}
for name, spec, secs, events, mb in rows:
    s = max(float(secs), 1e-3)
    rate[name.split()[0]] = int(events) / s
    print(f"{name:28} {s:8.2f} {int(events)/s:12,.0f} {float(mb)/s:8.0f}")
print()
print(f"parquet/null throughput: {rate['parquet'] / rate['null']:.0%} (target >= 50%)")
print(f"sqlite: {rate['sqlite']:,.0f} events/s (target >= 200,000)")
print(f"postgres: {rate['postgres']:,.0f} events/s (target >= 100,000)")
EOF
