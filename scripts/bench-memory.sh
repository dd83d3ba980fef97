#!/usr/bin/env bash
# Peak memory of `trailmill process` into every sink, one at a time and all
# at once, on the multi-MB corpus of bench-compare.sh, against the memory
# bound (256 MB whatever the corpus and whatever the sink).
#
#   scripts/bench-memory.sh
#   TRAILMILL_CLI=target/release/trailmill NO_POSTGRES=1 NO_S3=1 scripts/bench-memory.sh
#
# Environment:
#   SEED          synth seed; the corpus is bench-out/corpus-multimb-SEED
#                 (default 1), the one bench-compare.sh reads and caches
#   CORPUS        a trail directory to read instead (not generated)
#   TRAILMILL_CLI the trailmill binary to use; the script then does not build.
#                 Unset: cargo build --release -p trailmill-cli
#   BOUND_MB      the bound in MB, 10^6 bytes (default 256)
#   PG_URL        the PostgreSQL server (default: the private cluster that
#                 scripts/setup-postgres.sh starts; each run gets a fresh
#                 database); NO_POSTGRES=1 leaves PostgreSQL out
#   NO_S3=1       leaves out parquet:s3:// and the Iceberg table in S3, which
#                 otherwise go to a moto server (scripts/setup-moto.sh) on
#                 127.0.0.1
#   BENCH_TIMER   "time" (GNU /usr/bin/time, the default when present) or "python"
#
# The outputs go to a scratch directory (mktemp -d, so TMPDIR): the run with
# every local sink at once needs about three times the corpus's size there,
# and the PostgreSQL server about twice more.
#
# Each run starts from an empty target and runs with --no-state. Peak RSS is
# the trailmill process's maximum resident set; seconds are printed for
# context only. The script exits 1 when a run fails or goes over the bound.
set -euo pipefail

CALLER_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEED=${SEED:-1}
BOUND_MB=${BOUND_MB:-256}
OUT=bench-out

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
mkdir -p "$OUT"
release_binary

if [[ -n ${CORPUS:-} ]]; then
    CORPUS=$(cd "$CALLER_PWD" && cd "$CORPUS" && pwd)
else
    CORPUS=$OUT/corpus-multimb-$SEED
    synth_corpus "$BIN" "$CORPUS" "${MULTIMB_SYNTH_ARGS[@]}" --seed "$SEED"
fi

# --------------------------------------------------------------- services ---

# Everything a run leaves outside $WORK goes at exit: the moto server and
# the PostgreSQL database (7 GB after the 2.4-million-event trail).
MOTO_PID=
PG=
cleanup() {
    [[ -n $MOTO_PID ]] && kill "$MOTO_PID" 2>/dev/null
    [[ -n $PG ]] && pg_admin "DROP DATABASE IF EXISTS trailmill_memory WITH (FORCE)" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z ${NO_POSTGRES:-} ]]; then
    PG_URL=${PG_URL:-$(bash scripts/setup-postgres.sh)}
    PSQL_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
    [[ -x $PSQL_BIN ]] || PSQL_BIN=psql
    pg_admin() { "$PSQL_BIN" "$PG_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
    PG=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/trailmill_memory")))' "$PG_URL")
fi

S3_ENV=()
BUCKET=trailmill-memory
if [[ -z ${NO_S3:-} ]]; then
    MOTO_PY=$(bash scripts/setup-moto.sh)
    echo "{\"account\": \"123456789012\", \"region\": \"us-east-1\", \"bucket\": \"$BUCKET\", \"objects\": [], \"trail\": null}" >"$WORK/moto.json"
    mkfifo "$WORK/moto.port"
    "$MOTO_PY" scripts/moto-server.py 0 --setup "$WORK/moto.json" >"$WORK/moto.port" 2>"$WORK/moto.log" &
    MOTO_PID=$!
    read -r PORT <"$WORK/moto.port" || { cat "$WORK/moto.log" >&2; exit 1; }
    log "moto on 127.0.0.1:$PORT"
    S3_ENV=(env AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=test
        AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null
        AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true)
fi

# ------------------------------------------------------------------- runs ---

# Empties every local target and the PostgreSQL database before a run; the
# S3 runs write under a fresh prefix each time instead.
fresh() {
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    if [[ -n $PG ]]; then
        pg_admin "DROP DATABASE IF EXISTS trailmill_memory WITH (FORCE)"
        pg_admin "CREATE DATABASE trailmill_memory"
    fi
}

ROWS=()
FAILED=0
# measure NAME ARGS...: one run of `process CORPUS --no-state ARGS`.
measure() {
    local name=$1 wall rss events
    shift
    fresh
    log "$name"
    if ! time_once "${S3_ENV[@]}" "$BIN" process "$CORPUS" --no-state "$@" >/dev/null 2>"$WORK/err"; then
        echo "error: $name failed:" >&2
        cat "$WORK/err" >&2
        FAILED=1
        return
    fi
    read -r wall rss <"$WORK/t"
    events=$(sed -nE 's/^trailmill: ([0-9]+) events in.*/\1/p' "$WORK/err")
    ROWS+=("$name|$wall|$rss|$events")
}

O=$WORK/out
measure "jsonl:/dev/null" --sink jsonl:/dev/null
measure "jsonl:FILE" --sink "jsonl:$O/events.jsonl"
measure "jsonl:FILE.gz" --sink "jsonl:$O/events.jsonl.gz"
measure "jsonl:FILE.zst" --sink "jsonl:$O/events.jsonl.zst"
measure "sqlite:PATH" --sink "sqlite:$O/events.db"
measure "parquet:DIR" --sink "parquet:$O/lake"
measure "parquet:DIR, compact" --sink "parquet:$O/lake" --parquet-columns compact
measure "iceberg (local warehouse)" --sink iceberg:bench.events \
    --iceberg-catalog "sqlite:$O/catalog.db" --iceberg-warehouse "$O/warehouse"
ALL=(--sink "jsonl:$O/all.jsonl.gz" --sink "sqlite:$O/all.db" --sink "parquet:$O/all-lake"
    --sink iceberg:bench.all --iceberg-catalog "sqlite:$O/all-catalog.db"
    --iceberg-warehouse "$O/all-warehouse")
if [[ -n $PG ]]; then
    measure "postgres:URL" --sink "postgres:$PG"
    ALL+=(--sink "postgres:$PG")
fi
if [[ ${#S3_ENV[@]} -gt 0 ]]; then
    measure "parquet:s3://" --sink "parquet:s3://$BUCKET/lake-$RANDOM"
    measure "iceberg (S3 warehouse)" --sink iceberg:bench.events \
        --iceberg-catalog "sqlite:$O/catalog.db" --iceberg-warehouse "s3://$BUCKET/warehouse-$RANDOM"
fi
measure "all of the local sinks at once" "${ALL[@]}"

# ----------------------------------------------------------------- report ---

echo
echo "trailmill bench-memory, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus $CORPUS: $(find "$CORPUS" -type f \( -name '*.json.gz' -o -name '*.json' \) -not -path '*CloudTrail-Digest*' | wc -l) log files; bound $BOUND_MB MB"
echo
python3 - "$BOUND_MB" "${ROWS[@]}" <<'EOF'
import sys
bound = float(sys.argv[1])
over = 0
print(f"{'sink':34} {'seconds':>8} {'events':>9} {'peak RSS':>10}")
for row in sys.argv[2:]:
    name, wall, rss_kib, events = row.split("|")
    mb = int(rss_kib) * 1024 / 1e6
    mark = "" if mb <= bound else "  OVER THE BOUND"
    over += mb > bound
    print(f"{name:34} {float(wall):8.2f} {events:>9} {mb:7.0f} MB{mark}")
sys.exit(1 if over else 0)
EOF
exit "$FAILED"
