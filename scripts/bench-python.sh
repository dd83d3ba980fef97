#!/usr/bin/env bash
# The Python package's speed, in one run on one corpus: trailmill.scan read
# to completion in Python, against gzip + json in Python (what most custom
# CloudTrail ETL does; parsing only, and parsing into an Arrow table) and
# against the CLI's `process` to /dev/null. Python's times are measured
# inside the interpreter, after its imports.
#
#   scripts/bench-python.sh [CORPUS]
#
# CORPUS defaults to bench-out/lake-corpus-1 (made by scripts/bench-lake.sh:
# 160 multi-MB files, 618 MB of JSON). gzip + json reads every file too,
# at ~40 MB/s, so it takes a while. Environment: RUNS (timed runs per
# tool, best kept; default 3), PY_VENV, CARGO_TARGET_DIR, TRAILMILL_CLI (a
# release `trailmill` to use instead of building one).
# Throughput is uncompressed bytes / wall seconds; peak RSS is the process's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-3}
CORPUS=${1:-bench-out/lake-corpus-1}
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
[[ -d $CORPUS ]] || { echo "no corpus at $CORPUS: run scripts/bench-lake.sh first" >&2; exit 2; }
py="$(bash scripts/setup-python.sh)"
bin=${TRAILMILL_CLI:-}
if [[ -z $bin ]]; then
    log "building the CLI (release)"
    cargo build --release --locked -q -p trailmill-cli
    bin="${CARGO_TARGET_DIR:-target}/release/trailmill"
fi

bytes=$("$py" - "$CORPUS" <<'PY'
import os, struct, sys
total = 0
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        if n.endswith(".json.gz") and "/CloudTrail/" in os.path.join(d, n):
            with open(os.path.join(d, n), "rb") as f:
                f.seek(-4, os.SEEK_END)
                total += struct.unpack("<I", f.read(4))[0]
print(total)
PY
)

# py-bench.py MODE CORPUS: reads CORPUS one way, then prints the seconds
# the reading took (after the imports: interpreter and pyarrow start-up are
# not reading) and the events read.
cat >"$WORK/py-bench.py" <<'PY'
import gzip, json, os, sys, time
import pyarrow as pa
import trailmill
mode, root = sys.argv[1], sys.argv[2]
def logs():
    for d, _, names in sorted(os.walk(root)):
        for n in sorted(names):
            p = os.path.join(d, n)
            # Log files only: digests live under CloudTrail-Digest/.
            if n.endswith(".json.gz") and "/CloudTrail/" in p:
                yield p
start = time.perf_counter()
rows = 0
if mode == "scan":
    for batch in trailmill.scan(root):
        rows += batch.num_rows
elif mode == "gzip_json":
    for p in logs():
        with gzip.open(p, "rb") as f:
            rows += len(json.load(f)["Records"])
elif mode == "gzip_json_arrow":
    # The same events as Arrow, the Python way: one table per file.
    for p in logs():
        with gzip.open(p, "rb") as f:
            records = json.load(f)["Records"]
        rows += pa.Table.from_pylist(
            [{"event_id": r.get("eventID"), "event_time": r.get("eventTime"),
              "event_source": r.get("eventSource"), "event_name": r.get("eventName"),
              "aws_region": r.get("awsRegion"), "raw": json.dumps(r)} for r in records]
        ).num_rows
print(f"{time.perf_counter() - start:.3f} {rows}")
PY

best() { # NAME CMD...: best time over RUNS (the command's own, when it
         # prints one), and that run's peak RSS
    local name=$1 best_t="" best_rss="" t rss own
    shift
    for _ in $(seq "$RUNS"); do
        time_once "$@" 2>"$WORK/err" >"$WORK/out" || { cat "$WORK/err" >&2; exit 1; }
        read -r t rss <"$WORK/t"
        own=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { print $1 }' "$WORK/out" | tail -1)
        [[ -n $own ]] && t=$own
        if [[ -z $best_t ]] || python3 -c "import sys; sys.exit(not $t < $best_t)"; then
            best_t=$t best_rss=$rss
        fi
    done
    echo "$name $best_t $best_rss"
}

log "corpus $CORPUS: $bytes bytes uncompressed; $RUNS runs each, best kept"
{
    best cli "$bin" process "$CORPUS" --sink jsonl:/dev/null --no-state --quiet
    best scan "$py" "$WORK/py-bench.py" scan "$CORPUS"
    RUNS=1 best gzip_json "$py" "$WORK/py-bench.py" gzip_json "$CORPUS"
    RUNS=1 best gzip_json_arrow "$py" "$WORK/py-bench.py" gzip_json_arrow "$CORPUS"
} >"$WORK/results"

python3 - "$bytes" "$WORK/results" <<'PY'
import sys
size = int(sys.argv[1])
rows = {}
for line in open(sys.argv[2]):
    name, t, rss = line.split()
    rows[name] = (float(t), int(rss))
labels = {"cli": "trailmill process > /dev/null (CLI)", "scan": "trailmill.scan in Python",
          "gzip_json": "gzip + json in Python (parse only)",
          "gzip_json_arrow": "gzip + json + pyarrow.Table.from_pylist"}
print(f"| tool | seconds | MB/s | peak RSS MB |")
print(f"|---|---|---|---|")
for k in ("cli", "scan", "gzip_json", "gzip_json_arrow"):
    t, rss = rows[k]
    print(f"| {labels[k]} | {t:.2f} | {size / 1e6 / t:.0f} | {rss / 1024:.0f} |")
scan = rows["scan"][0]
print(f"\nscan vs gzip+json: {rows['gzip_json'][0] / scan:.1f}x faster")
print(f"scan vs gzip+json+pyarrow: {rows['gzip_json_arrow'][0] / scan:.1f}x faster")
print(f"scan / CLI: {rows['cli'][0] / scan * 100:.0f}% of the CLI's throughput")
PY
