#!/usr/bin/env bash
# Measures, in one run on one synthetic corpus, how fast trailmill writes its
# lake sinks (Parquet, Iceberg) compared with decoding to /dev/null, and how
# fast ClickHouse (chDB, from PyPI) converts the same log files to Parquet.
#
#   scripts/bench-lake.sh                     # seed 1, best of 3
#   SEED=7 RUNS=5 scripts/bench-lake.sh
#   TRAILMILL_BIN=path/to/trailmill LAKE_SYNTH_ARGS="--accounts 1 --regions 1 \
#     --hours 1 --logs-per-hour 2 --records 200 --seed 1" RUNS=1 scripts/bench-lake.sh
#
# Environment:
#   TRAILMILL_BIN    the binary (default ${CARGO_TARGET_DIR:-target}/release/trailmill;
#                    this script does not build it: cargo build --release -p trailmill-cli)
#   SEED             synth seed; the corpus is cached in bench-out/lake-corpus-SEED (default 1)
#   LAKE_SYNTH_ARGS  replaces the whole `trailmill synth` argument list (seed
#                    included); the corpus is then cached in
#                    bench-out/lake-corpus-args-HASH (a hash of the arguments)
#   RUNS             timed runs per tool, best time kept (default 3)
#   BENCH_TIMER      "time" (GNU /usr/bin/time, the default when present) or "python"
#   CHDB_VENV        the chDB virtualenv (default .venv/chdb, made by scripts/setup-chdb.sh)
#
# The tools:
#   null     trailmill process CORPUS --no-state --sink jsonl:/dev/null
#   parquet  ... --sink parquet:DIR (a fresh DIR each run)
#   iceberg  ... --sink iceberg:bench.events with a fresh SQLite catalog and
#            local warehouse each run
#   chdb     ClickHouse in Python (chDB), max_threads = cores: reads every log
#            file as one JSON string, ARRAY JOINs its Records and writes 13
#            extracted columns plus the raw record to one zstd Parquet file
#            (trailmill's Parquet sink writes ~50 typed columns plus the raw
#            record, Hive-partitioned, so chDB does less work per event)
#
# Seconds are the best wall time of RUNS runs; peak RSS is that run's. MB/s is
# the corpus's uncompressed JSON (log files only, digests excluded) over wall
# seconds (MB = 10^6 bytes); "vs null" is a tool's throughput over the null
# run's. Every output is counted afterwards (with chDB reading the Parquet
# files) and checked against trailmill's event count; a mismatch makes the
# script exit 1 after the report. Timings are printed, never asserted.
set -euo pipefail

CALLER_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."

abspath() { # abspath PATH BASE: PATH made absolute against BASE
    case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$2/$1" ;; esac
}

SEED=${SEED:-1}
RUNS=${RUNS:-3}
OUT=bench-out
if [[ -n ${TRAILMILL_BIN:-} ]]; then
    BIN=$(abspath "$TRAILMILL_BIN" "$CALLER_PWD")
elif [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    BIN=$(abspath "$CARGO_TARGET_DIR" "$CALLER_PWD")/release/trailmill
else
    BIN=$PWD/target/release/trailmill
fi
if [[ -n ${LAKE_SYNTH_ARGS:-} ]]; then
    read -r -a SYNTH_ARGS <<<"$LAKE_SYNTH_ARGS"
    CORPUS=$OUT/lake-corpus-args-$(printf '%s\n' "${SYNTH_ARGS[*]}" | sha256sum | cut -c1-12)
else
    # 2 accounts x 2 regions x 5 hours x 8 logs/hour = 160 log files of 3,000
    # events (~1.3 KB each, ~4 MB per file): 480,000 events, ~600 MB of JSON.
    SYNTH_ARGS=(--accounts 2 --regions 2 --hours 5 --logs-per-hour 8 --records 3000 --seed "$SEED")
    CORPUS=$OUT/lake-corpus-$SEED
fi
CORES=$(nproc)

if [[ ! -x $BIN ]]; then
    echo "error: no trailmill binary at $BIN" >&2
    echo "build it first: cargo build --release -p trailmill-cli (or set TRAILMILL_BIN)" >&2
    exit 1
fi

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
mkdir -p "$OUT"

# ---------------------------------------------------------------- helpers ---

# corpus.py DIR: "FILES COMPRESSED_BYTES UNCOMPRESSED_BYTES" of the log files
# (*.json.gz under a CloudTrail/ directory: digests and Insights excluded),
# fully gunzipped.
cat >"$WORK/corpus.py" <<'EOF'
import gzip, os, sys
files = sorted(os.path.join(d, n) for d, _, names in os.walk(sys.argv[1]) for n in names
               if n.endswith(".json.gz") and "/CloudTrail/" in os.path.join(d, n))
raw = 0
for p in files:
    with gzip.open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            raw += len(chunk)
print(len(files), sum(os.path.getsize(p) for p in files), raw)
EOF

# sizes.py ROOT [SUBDIR]: the .parquet files under ROOT (only those with a
# /SUBDIR/ directory in their path, when given; dot files skipped) as
# "COUNT TOTAL_BYTES MIN MEDIAN P90 MAX" (nearest-rank percentiles).
cat >"$WORK/sizes.py" <<'EOF'
import math, os, sys
root = sys.argv[1]
sub = f"/{sys.argv[2]}/" if len(sys.argv) > 2 else None
sizes = sorted(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names
               if n.endswith(".parquet") and not n.startswith(".")
               and (sub is None or sub in "/" + os.path.relpath(os.path.join(d, n), root)))
rank = lambda q: sizes[max(0, math.ceil(q * len(sizes)) - 1)] if sizes else 0
print(len(sizes), sum(sizes), rank(0), rank(0.5), rank(0.9), sizes[-1] if sizes else 0)
EOF

# chdb_convert.py CORPUS OUT.parquet THREADS: the ClickHouse conversion.
cat >"$WORK/chdb_convert.py" <<'EOF'
import os, sys
import chdb
root, out, threads = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), int(sys.argv[3])
lit = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
src = root + "/**/CloudTrail/**/*.json.gz"  # log files only, as trailmill reads them
chdb.query(f"""
INSERT INTO FUNCTION file({lit(out)}, Parquet)
SELECT
    JSONExtractString(r, 'eventID') AS event_id,
    parseDateTime64BestEffortOrNull(JSONExtractString(r, 'eventTime'), 6, 'UTC') AS event_time,
    JSONExtract(r, 'eventSource', 'Nullable(String)') AS event_source,
    JSONExtract(r, 'eventName', 'Nullable(String)') AS event_name,
    JSONExtract(r, 'awsRegion', 'Nullable(String)') AS aws_region,
    JSONExtract(r, 'sourceIPAddress', 'Nullable(String)') AS source_ip_address,
    JSONExtract(r, 'userAgent', 'Nullable(String)') AS user_agent,
    JSONExtract(r, 'errorCode', 'Nullable(String)') AS error_code,
    JSONExtract(r, 'errorMessage', 'Nullable(String)') AS error_message,
    JSONExtract(r, 'recipientAccountId', 'Nullable(String)') AS recipient_account_id,
    JSONExtract(r, 'userIdentity', 'arn', 'Nullable(String)') AS user_arn,
    nullIf(nullIf(JSONExtractRaw(r, 'requestParameters'), ''), 'null') AS request_parameters,
    nullIf(nullIf(JSONExtractRaw(r, 'responseElements'), ''), 'null') AS response_elements,
    r AS raw
FROM file({lit(src)}, 'JSONAsString')
ARRAY JOIN JSONExtractArrayRaw(json, 'Records') AS r
SETTINGS max_threads = {threads}, output_format_parquet_compression_method = 'zstd'
""")
EOF

# chdb_count.py GLOB...: the rows of the Parquet files each glob matches, one
# count per line (untimed; an independent reader of trailmill's files too).
cat >"$WORK/chdb_count.py" <<'EOF'
import sys
import chdb
lit = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
for g in sys.argv[1:]:
    print(str(chdb.query(f"SELECT count() FROM file({lit(g)}, Parquet)", "TSV")).strip())
EOF

# measure NAME PREP CMD...: runs PREP (untimed: empties the target), sync,
# then CMD (stderr to $WORK/stderr), $RUNS times. Sets BEST_S (lowest wall
# time) and BEST_KB (the peak RSS of that run).
measure() {
    local name=$1 prep=$2
    shift 2
    BEST_S=
    BEST_KB=0
    local i wall kb
    for ((i = 1; i <= RUNS; i++)); do
        $prep
        sync
        time_once "$@" 2>"$WORK/stderr" || {
            cat "$WORK/stderr" >&2
            echo "error: $name run $i failed: $*" >&2
            exit 1
        }
        read -r wall kb <"$WORK/t"
        log "$name run $i/$RUNS: ${wall} s, peak RSS $((kb / 1024)) MiB"
        if [[ -z $BEST_S ]] || python3 -c "import sys; sys.exit(not $wall < $BEST_S)"; then
            BEST_S=$wall
            BEST_KB=$kb
        fi
    done
}

ROWS=()
# row TOOL SECONDS PEAK_KB
row() { ROWS+=("$1"$'\t'"$2"$'\t'"$3"); }
DISTS=()
# dist LABEL ROOT [SUBDIR]: records the size distribution of the .parquet files
dist() { DISTS+=("$1"$'\t'"$(python3 "$WORK/sizes.py" "${@:2}")"); }
CHECKS=()
MISMATCH=0
# check LABEL ROWS: records a row count, compared with trailmill's events
check() {
    local verdict="ok"
    if [[ $2 != "$EVENTS_IN" ]]; then
        verdict="MISMATCH (trailmill: $EVENTS_IN events)"
        MISMATCH=1
    fi
    CHECKS+=("$1: $2 rows, $verdict")
}

# With the Python timer, every command is forked from the interpreter, and
# Linux keeps a process's pre-exec peak in ru_maxrss: peak RSS then has the
# interpreter's own size as a floor. Measure that floor (with `true`) to print it.
RSS_NOTE="GNU time"
if [[ $BENCH_TIMER == python ]]; then
    TIMER_OUT="$WORK/t" python3 "$WORK/timer.py" true
    read -r _ floor_kb <"$WORK/t"
    RSS_NOTE="Python timer; its floor, measured on 'true', is $((floor_kb / 1024)) MiB"
fi

# ------------------------------------------------------------------ setup ---

log "chDB: scripts/setup-chdb.sh"
CHDB_PY=$(bash scripts/setup-chdb.sh)
CHDB_VERSION=$("$CHDB_PY" -c 'import chdb; print(f"chdb {chdb.__version__} (ClickHouse {chdb.engine_version})")')

# ----------------------------------------------------------------- corpus ---

[[ -d $CORPUS ]] || rm -f "$CORPUS.size"
synth_corpus "$BIN" "$CORPUS" "${SYNTH_ARGS[@]}"
CORPUS_ABS=$(cd "$CORPUS" && pwd)
if [[ $CORPUS_ABS == *[][*?{}\'\\]* ]]; then
    echo "error: chDB's file() glob cannot take the path $CORPUS_ABS (it holds glob or quote characters)" >&2
    exit 1
fi
if [[ ! -s $CORPUS.size ]]; then
    log "measuring the corpus (gunzipping every log file once; cached in $CORPUS.size)"
    python3 "$WORK/corpus.py" "$CORPUS" >"$CORPUS.size.partial"
    mv "$CORPUS.size.partial" "$CORPUS.size"
fi
read -r FILES GZ_BYTES RAW_BYTES <"$CORPUS.size"

# ---------------------------------------------------------------- measure ---

TM=("$BIN" process "$CORPUS" --no-state)

log "trailmill: counting events (untimed, also warms the page cache)"
"${TM[@]}" --sink jsonl:/dev/null 2>"$WORK/summary" || { cat "$WORK/summary" >&2; exit 1; }
TM_SUMMARY=$(grep ' events in, ' "$WORK/summary")
EVENTS_IN=$(sed -E 's/^trailmill: ([0-9]+) events in, .*/\1/' <<<"$TM_SUMMARY")
[[ $EVENTS_IN =~ ^[0-9]+$ ]] || { echo "error: no event count in: $TM_SUMMARY" >&2; exit 1; }

noop() { :; }
fresh_lake() { rm -rf "$WORK/lake"; }
fresh_iceberg() { rm -rf "$WORK/cat.db" "$WORK/wh" && mkdir -p "$WORK/wh"; }
fresh_chdb() { rm -rf "$WORK/chdb" && mkdir -p "$WORK/chdb"; }

log "null: trailmill to jsonl:/dev/null"
measure null noop "${TM[@]}" -q --sink jsonl:/dev/null
row "null" "$BEST_S" "$BEST_KB"

log "parquet: trailmill to parquet:$WORK/lake"
measure parquet fresh_lake "${TM[@]}" -q --sink "parquet:$WORK/lake"
row "parquet" "$BEST_S" "$BEST_KB"
dist "parquet sink (parquet:DIR)" "$WORK/lake"
check "parquet sink" "$("$CHDB_PY" "$WORK/chdb_count.py" "$WORK/lake/**/*.parquet")"
fresh_lake

log "iceberg: trailmill to iceberg:bench.events (SQLite catalog, local warehouse)"
measure iceberg fresh_iceberg "${TM[@]}" -q --sink iceberg:bench.events \
    --iceberg-catalog "sqlite:$WORK/cat.db" --iceberg-warehouse "$WORK/wh"
row "iceberg" "$BEST_S" "$BEST_KB"
dist "iceberg data files (WH/**/data/**)" "$WORK/wh" data
check "iceberg data files" "$("$CHDB_PY" "$WORK/chdb_count.py" "$WORK/wh/**/data/**/*.parquet")"
fresh_iceberg

log "chdb: ClickHouse JSON to Parquet, max_threads=$CORES"
measure chdb fresh_chdb "$CHDB_PY" "$WORK/chdb_convert.py" "$CORPUS" "$WORK/chdb/out.parquet" "$CORES"
row "chdb" "$BEST_S" "$BEST_KB"
dist "chdb (one file)" "$WORK/chdb"
check "chdb output" "$("$CHDB_PY" "$WORK/chdb_count.py" "$WORK/chdb/out.parquet")"
fresh_chdb

# Python + `import chdb` + one trivial query: a fixed cost inside the chdb
# row (best of 3).
CHDB_STARTUP_S=
for _ in 1 2 3; do
    TIMER_OUT="$WORK/t" python3 "$WORK/timer.py" "$CHDB_PY" -c 'import chdb; chdb.query("SELECT 1")'
    read -r s _ <"$WORK/t"
    if [[ -z $CHDB_STARTUP_S ]] || python3 -c "import sys; sys.exit(not $s < $CHDB_STARTUP_S)"; then
        CHDB_STARTUP_S=$s
    fi
done

# ----------------------------------------------------------------- report ---

{
    echo "$RUNS" "$BENCH_TIMER" "$RSS_NOTE"
    echo "$FILES" "$GZ_BYTES" "$RAW_BYTES" "$EVENTS_IN" "$CHDB_STARTUP_S"
    printf '%s\n' "${ROWS[@]}"
    echo "--"
    printf '%s\n' "${DISTS[@]}"
} >"$WORK/report"

echo
echo "trailmill bench-lake, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "machine: $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $("$BIN" --version) ($BIN), $CHDB_VERSION, $("$CHDB_PY" --version)"
echo "trailmill run summary: ${TM_SUMMARY#trailmill: }"
echo "events (trailmill's count): $EVENTS_IN"
python3 - "$WORK/report" "$CORPUS" "${SYNTH_ARGS[*]}" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
corpus, synth = sys.argv[2], sys.argv[3]
runs, timer, rss_note = lines[0].split(" ", 2)
files, gz, raw, events = map(int, lines[1].split()[:4])
startup = float(lines[1].split()[4])
sep = lines.index("--")
rows = [r.split("\t") for r in lines[2:sep]]
dists = [r.split("\t") for r in lines[sep + 1:]]
print(f"corpus {corpus} (synth {synth}): {files} log files, {events} events, "
      f"{gz/1e6:.1f} MB gzip, {raw/1e6:.1f} MB uncompressed, ratio {raw/max(gz, 1):.2f}:1")
print(f"each tool: best wall time of {runs} runs and that run's peak RSS (timer: {timer}; {rss_note})")
print()
null_mbps = None
head = ("tool", "seconds", "MB/s", "events/s", "peak RSS MB", "vs null")
table = [head]
for tool, secs, kb in rows:
    s = max(float(secs), 1e-3)
    mbps = raw / 1e6 / s
    if null_mbps is None:
        null_mbps = mbps
    table.append((tool, f"{float(secs):.2f}", f"{mbps:.1f}", f"{events / s:,.0f}",
                  f"{int(kb) * 1024 / 1e6:.0f}", f"{mbps / null_mbps:.2f}x null"))
w = [max(len(r[i]) for r in table) for i in range(len(head))]
for n, r in enumerate(table):
    print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
    if n == 0:
        print("  ".join("-" * x for x in w))
print()
print("Parquet files written (MB = 10^6 bytes):")
head = ("output", "files", "min", "median", "p90", "max", "total MB")
table = [head]
for label, stats in dists:
    count, total, lo, med, p90, hi = map(int, stats.split())
    table.append((label, str(count), *(f"{b/1e6:.2f}" for b in (lo, med, p90, hi)), f"{total/1e6:.1f}"))
w = [max(len(r[i]) for r in table) for i in range(len(head))]
for n, r in enumerate(table):
    print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
    if n == 0:
        print("  ".join("-" * x for x in w))
print()
print(f"Notes: trailmill uses one worker per core, chdb max_threads = cores. The chdb row includes")
print(f"starting Python and loading chDB ({startup:.2f} s for `import chdb` + SELECT 1, best of 3).")
print("chdb writes 14 columns to one file; trailmill's Parquet sink ~50 columns, Hive-partitioned.")
print("Shared machine: timings are noisy.")
EOF
echo
echo "row counts (read back with chDB) against trailmill's $EVENTS_IN events:"
printf '  %s\n' "${CHECKS[@]}"
if ((MISMATCH)); then
    echo "error: some output's row count differs from trailmill's event count" >&2
    exit 1
fi
