#!/usr/bin/env bash
# Compares trailmill with the usual shell and Python ways of reading CloudTrail
# logs, and with two embedded SQL engines (ClickHouse through chDB, DuckDB),
# on one synthetic corpus, for wall time, throughput and peak RSS.
#
#   scripts/bench-compare.sh            # seed 1
#   SEED=7 RUNS=5 SUBSET_MB=100 scripts/bench-compare.sh
#   TRAILMILL_CLI=/path/to/trailmill RUNS=1 scripts/bench-compare.sh
#
# Environment:
#   SEED          synth seed; the corpus is cached in bench-out/corpus-multimb-SEED (default 1)
#   RUNS          timed runs per tool, best time kept (default 3)
#   SUBSET_MB     uncompressed MB of the subset that jq and Python read (default 60)
#   BENCH_TIMER   "time" (GNU /usr/bin/time, the default when present) or "python"
#   TRAILMILL_CLI the trailmill binary to use; the script then does not build.
#                 Unset: cargo build --release -p trailmill-cli (CARGO_TARGET_DIR
#                 is respected when locating the binary)
#   CHDB_VENV     the chDB virtualenv (default .venv/chdb, made by scripts/setup-chdb.sh)
#   DUCKDB_VENV   the DuckDB virtualenv (default .venv/duckdb, made by scripts/setup-duckdb.sh)
#
# The tools:
#   trailmill  process CORPUS --sink jsonl:/dev/null with one field filter
#              (--event-source s3.amazonaws.com, then --event-name 'Describe*'),
#              and with no filter; full corpus
#   jq         find | xargs zcat | jq -c '.Records[]'; subset
#   python     python3 gzip + json, every record written as a JSON line; subset
#   ClickHouse chDB (in-process, from PyPI), max_threads = cores, full corpus:
#              SELECT count() FROM (SELECT arrayJoin(JSONExtractArrayRaw(json,
#              'Records')) AS r FROM file('CORPUS/**/CloudTrail/**/*.json.gz',
#              'JSONAsString')) WHERE simpleJSONExtractString(r, 'eventName')
#              LIKE 'Describe%'
#   DuckDB     duckdb (Python, from PyPI), SET threads = cores, full corpus:
#              read_json('CORPUS/**/CloudTrail/*/*/*/*/*.json.gz') with the
#              column Records declared as STRUCT(eventName VARCHAR)[] (only the
#              field the filter needs, as ClickHouse extracts only that one),
#              unnest(Records), count of eventName LIKE 'Describe%'
# Each engine runs as its own Python process (interpreter start and library load
# included in its time) and prints its count, which must equal the number of
# events trailmill's --event-name 'Describe*' lets through: a difference stops
# the script with an error. Their globs read log files only (CloudTrail/, not
# CloudTrail-Digest/), as trailmill does. "trailmill vs ENGINE" is the engine's
# wall time over trailmill's --event-name 'Describe*' run's (both full corpus).
#
# Throughput is uncompressed bytes / wall seconds (MB = 10^6 bytes). jq and
# Python are slow, so they read a subset of the corpus (hard links to its
# first files, in path order); the subset is printed. Peak RSS is the largest
# single process's maximum resident set (for a pipeline: its largest member).
set -euo pipefail

CALLER_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEED=${SEED:-1}
RUNS=${RUNS:-3}
CORES=$(nproc)
SUBSET_MB=${SUBSET_MB:-60}
MIN_CORPUS_MB=500
OUT=bench-out
CORPUS=$OUT/corpus-multimb-$SEED
SUBSET=$OUT/subset-multimb-$SEED-${SUBSET_MB}MB
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
SYNTH_ARGS=("${MULTIMB_SYNTH_ARGS[@]}" --seed "$SEED")
mkdir -p "$OUT"

# ---------------------------------------------------------------- helpers ---

# corpus.py DIR: "FILES COMPRESSED_BYTES UNCOMPRESSED_BYTES" of the log files
# (the gzip trailer's ISIZE; exact for files under 4 GiB).
# corpus.py DIR SUBSET MB: hard-links the first log files (path order) into
# SUBSET until they hold at least MB uncompressed, keeping relative paths.
cat >"$WORK/corpus.py" <<'EOF'
import os, struct, sys
def logs(root):
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if n.endswith(".json.gz") and "/CloudTrail/" in p:
                found.append(p)
    return sorted(found)
def isize(p):
    with open(p, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]
root = sys.argv[1]
files = logs(root)
if len(sys.argv) > 2:
    subset, want = sys.argv[2], float(sys.argv[3]) * 1e6
    total, chosen = 0, []
    for p in files:
        if total >= want:
            break
        chosen.append(p)
        total += isize(p)
    for p in chosen:
        dst = os.path.join(subset, os.path.relpath(p, root))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.link(p, dst)
    files = chosen
print(len(files), sum(os.path.getsize(p) for p in files), sum(isize(p) for p in files))
EOF

# The Python baseline: gzip + json, every record written as a JSON line.
cat >"$WORK/python_baseline.py" <<'EOF'
import gzip, json, os, sys
out = open(os.devnull, "w", encoding="utf-8")
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(d, n)
        if n.endswith(".json.gz") and "/CloudTrail/" in p:
            with open(p, "rb") as f:
                records = json.loads(gzip.decompress(f.read()))["Records"]
            for r in records:
                out.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
EOF

# The ClickHouse peer: chdb_count.py CORPUS THREADS prints the count.
cat >"$WORK/chdb_count.py" <<'EOF'
import os, sys
import chdb
root, threads = os.path.abspath(sys.argv[1]), int(sys.argv[2])
lit = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
src = root + "/**/CloudTrail/**/*.json.gz"  # log files only, as trailmill reads them
print(str(chdb.query(f"""
SELECT count() FROM (
    SELECT arrayJoin(JSONExtractArrayRaw(json, 'Records')) AS r
    FROM file({lit(src)}, 'JSONAsString'))
WHERE simpleJSONExtractString(r, 'eventName') LIKE 'Describe%'
SETTINGS max_threads = {threads}
""", "TSV")).strip())
EOF

# The DuckDB peer: duckdb_count.py CORPUS THREADS prints the count. DuckDB
# takes one '**' per glob: CloudTrail/REGION/YYYY/MM/DD/FILE is spelled out.
# Each file is one JSON object ({"Records": [...]}, one row): its size limit is
# raised from the default 16 MiB to 1 GiB so that large log files fit.
cat >"$WORK/duckdb_count.py" <<'EOF'
import os, sys
import duckdb
root, threads = os.path.abspath(sys.argv[1]), int(sys.argv[2])
lit = lambda s: "'" + s.replace("'", "''") + "'"
src = root + "/**/CloudTrail/*/*/*/*/*.json.gz"  # log files only, as trailmill reads them
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
print(con.sql(f"""
SELECT count(*) FROM (
    SELECT unnest(Records) AS r
    FROM read_json({lit(src)}, format = 'auto', records = true,
                   columns = {{'Records': 'STRUCT(eventName VARCHAR)[]'}},
                   maximum_object_size = 1073741824))
WHERE r.eventName LIKE 'Describe%'
""").fetchone()[0])
EOF

# measure NAME CMD...: runs CMD $RUNS times; sets BEST_S (lowest wall time)
# and PEAK_KB (highest peak RSS over the runs).
measure() {
    local name=$1
    shift
    BEST_S=
    PEAK_KB=0
    local i wall kb
    for ((i = 1; i <= RUNS; i++)); do
        time_once "$@"
        read -r wall kb <"$WORK/t"
        log "$name run $i/$RUNS: ${wall} s, peak RSS $((kb / 1024)) MiB"
        if [[ -z $BEST_S ]] || python3 -c "import sys; sys.exit(not $wall < $BEST_S)"; then
            BEST_S=$wall
        fi
        if ((kb > PEAK_KB)); then
            PEAK_KB=$kb
        fi
    done
}

# events_of DIR: runs trailmill once (untimed, not quiet; also warms the page
# cache) and sets EVENTS_IN, EVENTS_OUT and TM_MB from its summary line
# "trailmill: N events in, M out; X MB read, Y MB uncompressed in ...".
events_of() {
    "$BIN" process "$1" --sink jsonl:/dev/null "${@:2}" 2>"$WORK/summary"
    local line
    line=$(grep ' events in, ' "$WORK/summary")
    read -r EVENTS_IN EVENTS_OUT TM_MB < <(sed -E \
        's/^trailmill: ([0-9]+) events in, ([0-9]+) out; [0-9.]+ MB read, ([0-9.]+) MB uncompressed.*/\1 \2 \3/' <<<"$line")
}

# With the Python timer, every command is forked from the interpreter, and
# Linux keeps a process's pre-exec peak in ru_maxrss: peak RSS then has the
# interpreter's own size as a floor. Measure that floor (with `true`) to print it.
RSS_NOTE="GNU time"
if [[ $BENCH_TIMER == python ]]; then
    time_once true
    read -r _ floor_kb <"$WORK/t"
    RSS_NOTE="Python timer; its floor, measured on 'true', is $((floor_kb / 1024)) MiB"
fi

ROWS=()
# row TOOL DATA BYTES SECONDS EVENTS PEAK_KB
row() { ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"$'\t'"$6"); }

# checked_count NAME: every line of $WORK/count (one per run) must be the
# number of events trailmill's --event-name 'Describe*' let through.
checked_count() {
    local n
    while read -r n; do
        if [[ $n != "$DESC_EVENTS" ]]; then
            echo "error: $1 counted ${n:-nothing}, trailmill --event-name 'Describe*' $DESC_EVENTS" >&2
            exit 1
        fi
    done <"$WORK/count"
    log "$1 counted $DESC_EVENTS events, as trailmill did"
}

# ------------------------------------------------------------------ build ---

release_binary

log "chDB: scripts/setup-chdb.sh"
CHDB_PY=$(bash scripts/setup-chdb.sh)
CHDB_VERSION=$("$CHDB_PY" -c 'import chdb; print(f"chdb {chdb.__version__} (ClickHouse {chdb.engine_version})")')
log "DuckDB: scripts/setup-duckdb.sh"
DUCKDB_PY=$(bash scripts/setup-duckdb.sh)
DUCKDB_VERSION=$("$DUCKDB_PY" -c 'import duckdb; print(f"duckdb {duckdb.__version__}")')

# ----------------------------------------------------------------- corpus ---

synth_corpus "$BIN" "$CORPUS" "${SYNTH_ARGS[@]}"
if [[ $(cd "$CORPUS" && pwd) == *[][*?{}\'\\]* ]]; then
    echo "error: the engines' globs cannot take the path $(cd "$CORPUS" && pwd) (it holds glob or quote characters)" >&2
    exit 1
fi
read -r FILES GZ_BYTES RAW_BYTES < <(python3 "$WORK/corpus.py" "$CORPUS")
RAW_MB=$(python3 -c "print(f'{$RAW_BYTES / 1e6:.1f}')")
if python3 -c "import sys; sys.exit(not $RAW_BYTES < $MIN_CORPUS_MB * 1e6)"; then
    echo "error: $CORPUS holds only $RAW_MB MB of JSON (< $MIN_CORPUS_MB MB); delete it and raise SYNTH_ARGS" >&2
    exit 1
fi

rm -rf "$SUBSET"
read -r SUB_FILES SUB_GZ SUB_RAW < <(python3 "$WORK/corpus.py" "$CORPUS" "$SUBSET" "$SUBSET_MB")

# ---------------------------------------------------------------- measure ---

log "trailmill: counting events (untimed, also warms the page cache)"
events_of "$CORPUS" --event-source s3.amazonaws.com
ALL_EVENTS=$EVENTS_IN
S3_EVENTS=$EVENTS_OUT
TM_SUMMARY=$(grep ' events in, ' "$WORK/summary")
events_of "$CORPUS" --event-name 'Describe*'
DESC_EVENTS=$EVENTS_OUT
events_of "$SUBSET"
SUB_EVENTS=$EVENTS_IN

log "trailmill, one field filter, full corpus"
measure "trailmill --event-source" "$BIN" process "$CORPUS" --sink jsonl:/dev/null \
    --event-source s3.amazonaws.com -q
row "trailmill --event-source s3 (${ALL_EVENTS} in, ${S3_EVENTS} out)" "full corpus" \
    "$RAW_BYTES" "$BEST_S" "$ALL_EVENTS" "$PEAK_KB"
TM_S=$BEST_S

log "trailmill, no filter, every record to jsonl, full corpus"
measure "trailmill (no filter)" "$BIN" process "$CORPUS" --sink jsonl:/dev/null -q
row "trailmill, no filter (all records out)" "full corpus" \
    "$RAW_BYTES" "$BEST_S" "$ALL_EVENTS" "$PEAK_KB"
TM_ALL_S=$BEST_S

log "trailmill, --event-name 'Describe*' (the engines' filter), full corpus"
measure "trailmill --event-name" "$BIN" process "$CORPUS" --sink jsonl:/dev/null \
    --event-name 'Describe*' -q
row "trailmill --event-name 'Describe*' (${ALL_EVENTS} in, ${DESC_EVENTS} out)" "full corpus" \
    "$RAW_BYTES" "$BEST_S" "$ALL_EVENTS" "$PEAK_KB"
TM_DESC_S=$BEST_S

# engine LABEL PYTHON SCRIPT: times an engine's count on the full corpus,
# checks its count, adds its row; BEST_S is its time.
engine() {
    log "$1: count of eventName LIKE 'Describe%', $CORES threads, full corpus"
    measure "$1" "$2" "$3" "$CORPUS" "$CORES" >"$WORK/count"
    checked_count "$1"
    row "$1, count of eventName LIKE 'Describe%'" "full corpus" \
        "$RAW_BYTES" "$BEST_S" "$ALL_EVENTS" "$PEAK_KB"
}
engine "ClickHouse (chdb)" "$CHDB_PY" "$WORK/chdb_count.py"
CH_S=$BEST_S
engine "DuckDB" "$DUCKDB_PY" "$WORK/duckdb_count.py"
DUCK_S=$BEST_S

JQ_S=
if ! command -v jq >/dev/null; then
    log "jq not found: installing it with apt-get"
    if ! { apt-get install -y jq >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y jq >/dev/null; }; }; then
        log "could not install jq: skipping the jq baseline"
    fi
fi
if command -v jq >/dev/null; then
    log "jq pipeline, subset"
    # shellcheck disable=SC2016 # $0 is expanded by the inner bash.
    measure "jq" bash -c 'find "$0" -name "*.json.gz" -path "*/CloudTrail/*" | xargs zcat | jq -c ".Records[]" > /dev/null' "$SUBSET"
    row "find | xargs zcat | jq -c '.Records[]'" "subset" "$SUB_RAW" "$BEST_S" "$SUB_EVENTS" "$PEAK_KB"
    JQ_S=$BEST_S
fi

log "python3 gzip + json, subset"
measure "python" python3 "$WORK/python_baseline.py" "$SUBSET"
row "python3 gzip+json, records as JSON lines" "subset" "$SUB_RAW" "$BEST_S" "$SUB_EVENTS" "$PEAK_KB"
PY_S=$BEST_S

# ----------------------------------------------------------------- report ---

{
    echo "$SEED" "$RUNS" "$BENCH_TIMER" "$RSS_NOTE"
    echo "$FILES" "$GZ_BYTES" "$RAW_BYTES" "$ALL_EVENTS"
    echo "$SUB_FILES" "$SUB_GZ" "$SUB_RAW" "$SUB_EVENTS"
    echo "$RAW_BYTES $TM_S $TM_ALL_S $SUB_RAW ${JQ_S:-none} $PY_S"
    echo "$TM_DESC_S $CH_S $DUCK_S $DESC_EVENTS"
    printf '%s\n' "${ROWS[@]}"
} >"$WORK/report"

echo
echo "trailmill bench-compare, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "machine: $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $("$BIN" --version), $(jq --version 2>/dev/null || echo 'jq missing'), $(python3 --version), $(gzip --version | head -1), $CHDB_VERSION, $DUCKDB_VERSION"
echo "trailmill run summary: ${TM_SUMMARY#trailmill: }"
python3 - "$WORK/report" "$CORPUS" "$SUBSET" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
corpus, subset = sys.argv[2], sys.argv[3]
seed, runs, timer, rss_note = lines[0].split(" ", 3)
files, gz, raw, events = map(int, lines[1].split())
sfiles, sgz, sraw, sevents = map(int, lines[2].split())
print(f"corpus {corpus}: {files} log files, {events} events, {gz/1e6:.1f} MB gzip, "
      f"{raw/1e6:.1f} MB uncompressed, ratio {raw/gz:.2f}:1")
print(f"subset {subset} (jq and Python): the first {sfiles} log files in path order, "
      f"{sevents} events, {sgz/1e6:.1f} MB gzip, {sraw/1e6:.1f} MB uncompressed")
print(f"each tool: best wall time of {runs} runs (timer: {timer}); peak RSS: highest over the runs ({rss_note})")
print()
rows = [r.split("\t") for r in lines[5:]]
head = ("tool", "data", "MB", "seconds", "MB/s", "events/s", "peak RSS")
table = [head]
for tool, data, nbytes, secs, ev, kb in rows:
    s = max(float(secs), 1e-3)
    table.append((tool, data, f"{int(nbytes)/1e6:.1f}", f"{float(secs):.2f}",
                  f"{int(nbytes)/1e6/s:.0f}", f"{int(ev)/s:,.0f}", f"{int(kb)/1024:.0f} MiB"))
w = [max(len(r[i]) for r in table) for i in range(len(head))]
for n, r in enumerate(table):
    print("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r)))
    if n == 0:
        print("  ".join("-" * x for x in w))
print()
tm_bytes, tm_s, tm_all_s, sub_bytes, jq_s, py_s = lines[3].split()
mbps = lambda b, s: int(b) / 1e6 / max(float(s), 1e-3)
tm, tm_all = mbps(tm_bytes, tm_s), mbps(tm_bytes, tm_all_s)
for name, s in (("jq", jq_s), ("python", py_s)):
    if s == "none":
        print(f"trailmill/{name}: n/a ({name} missing)")
        continue
    other = mbps(sub_bytes, s)
    print(f"trailmill/{name} (MB/s): {tm/other:.1f}x with --event-source, "
          f"{tm_all/other:.1f}x with no filter ({tm:.0f} and {tm_all:.0f} vs {other:.1f} MB/s)")
tm_desc_s, ch_s, duck_s, desc = lines[4].split()
for name, s in (("ClickHouse (chdb)", ch_s), ("DuckDB", duck_s)):
    print(f"trailmill vs {name}: {float(s)/max(float(tm_desc_s), 1e-3):.1f}x "
          f"(wall time, full corpus, both counting {int(desc)} 'Describe*' events: "
          f"{float(tm_desc_s):.2f} s vs {float(s):.2f} s)")
print()
print("Notes: trailmill uses one worker per core; the jq pipeline overlaps zcat and jq (two")
print("processes), Python is single-threaded. trailmill inflates and validates every record")
print("either way; with a filter it writes only the matching ones, and with --event-name or")
print("--event-source it reads a record past its core fields (and eventSource) only if they")
print("match. ClickHouse and DuckDB use one thread per core, extract only eventName and print")
print("a count; their times include starting Python and loading the engine. Shared machine:")
print("timings are noisy.")
EOF
