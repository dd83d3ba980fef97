#!/usr/bin/env bash
# The Python package's speed, in one run on one corpus: trailmill.scan read
# to completion in Python, against gzip + json in Python (what most custom
# CloudTrail ETL does) and against the CLI's `process` to /dev/null.
#
#   scripts/bench-python.sh [CORPUS]
#
# CORPUS defaults to bench-out/lake-corpus-1 (made by scripts/bench-lake.sh:
# 160 multi-MB files, 618 MB of JSON). gzip + json reads every file too,
# at ~40 MB/s, so it takes a while. Environment: RUNS (timed runs per
# tool, best kept; default 3), PY_VENV, CARGO_TARGET_DIR.
# Throughput is uncompressed bytes / wall seconds; peak RSS is the process's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-3}
CORPUS=${1:-bench-out/lake-corpus-1}
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
[[ -d $CORPUS ]] || { echo "no corpus at $CORPUS: run scripts/bench-lake.sh first" >&2; exit 2; }
py="$(bash scripts/setup-python.sh)"
target=${CARGO_TARGET_DIR:-target}
log "building the CLI (release)"
cargo build --release --locked -q -p trailmill-cli
bin="$target/release/trailmill"

bytes=$("$py" - "$CORPUS" <<'PY'
import os, struct, sys
total = 0
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        if n.endswith(".json.gz"):
            with open(os.path.join(d, n), "rb") as f:
                f.seek(-4, os.SEEK_END)
                total += struct.unpack("<I", f.read(4))[0]
print(total)
PY
)

cat >"$WORK/scan.py" <<'PY'
import sys, trailmill
rows = 0
for batch in trailmill.scan(sys.argv[1]):
    rows += batch.num_rows
print(rows, file=sys.stderr)
PY
cat >"$WORK/gzjson.py" <<'PY'
import gzip, json, os, sys
rows = 0
for d, _, names in os.walk(sys.argv[1]):
    for n in sorted(names):
        if n.endswith(".json.gz"):
            with gzip.open(os.path.join(d, n), "rb") as f:
                rows += len(json.load(f)["Records"])
print(rows, file=sys.stderr)
PY

best() { # NAME CMD...: best wall time over RUNS, and that run's peak RSS
    local name=$1 best_t="" best_rss="" t rss
    shift
    for _ in $(seq "$RUNS"); do
        time_once "$@" 2>"$WORK/err" >/dev/null || { cat "$WORK/err" >&2; exit 1; }
        read -r t rss <"$WORK/t"
        if [[ -z $best_t ]] || python3 -c "import sys; sys.exit(not $t < $best_t)"; then
            best_t=$t best_rss=$rss
        fi
    done
    echo "$name $best_t $best_rss"
}

log "corpus $CORPUS: $bytes bytes uncompressed; $RUNS runs each, best kept"
{
    best cli "$bin" process "$CORPUS" --sink jsonl:/dev/null --no-state --quiet
    best scan "$py" "$WORK/scan.py" "$CORPUS"
    RUNS=1 best gzip_json "$py" "$WORK/gzjson.py" "$CORPUS"
} >"$WORK/results"

python3 - "$bytes" "$WORK/results" <<'PY'
import sys
size = int(sys.argv[1])
rows = {}
for line in open(sys.argv[2]):
    name, t, rss = line.split()
    rows[name] = (float(t), int(rss))
labels = {"cli": "trailmill process > /dev/null (CLI)", "scan": "trailmill.scan in Python",
          "gzip_json": "gzip + json in Python"}
print(f"| tool | seconds | MB/s | peak RSS MB |")
print(f"|---|---|---|---|")
for k in ("cli", "scan", "gzip_json"):
    t, rss = rows[k]
    print(f"| {labels[k]} | {t:.2f} | {size / 1e6 / t:.0f} | {rss / 1024:.0f} |")
scan = rows["scan"][0]
print(f"\nscan / gzip+json: {rows['gzip_json'][0] / scan:.1f}x faster")
print(f"scan / CLI: {rows['cli'][0] / scan * 100:.0f}% of the CLI's throughput")
PY
