# Shared by the benchmark scripts (sourced, not run): how a command is timed,
# the scratch directory, and progress lines. After sourcing:
#   BENCH_TIMER  "time" (GNU /usr/bin/time, the default when present) or
#                "python" (a small resource.getrusage timer), unless set
#   WORK         a scratch directory, removed when the script exits
#   log MSG      a progress line on stderr
#   time_once CMD...
#                runs CMD once (its stderr is the caller's to redirect) and
#                writes "WALL_SECONDS PEAK_RSS_KB" to $WORK/t; returns CMD's status

if [[ -z ${BENCH_TIMER:-} ]]; then
    if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%e' true >/dev/null 2>&1; then
        BENCH_TIMER=time
    else
        BENCH_TIMER=python
    fi
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { printf '==> %s\n' "$*" >&2; }

# timer.py CMD...: runs CMD, then prints "WALL_SECONDS MAXRSS_KB" to $TIMER_OUT.
cat >"$WORK/timer.py" <<'PY'
import os, resource, subprocess, sys, time
start = time.monotonic()
rc = subprocess.call(sys.argv[1:])
wall = time.monotonic() - start
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
with open(os.environ["TIMER_OUT"], "w") as f:
    f.write(f"{wall:.3f} {rss_kb}\n")
sys.exit(rc)
PY

time_once() {
    if [[ $BENCH_TIMER == time ]]; then
        # Wall time from the clock (GNU time's %e has 10 ms steps), peak RSS from GNU time.
        local start end status=0
        start=$(date +%s%N)
        /usr/bin/time -f '%M' -o "$WORK/rss" "$@" || status=$?
        end=$(date +%s%N)
        echo "$(python3 -c "print(f'{($end - $start) / 1e9:.3f}')") $(cat "$WORK/rss")" >"$WORK/t"
        return "$status"
    else
        TIMER_OUT="$WORK/t" python3 "$WORK/timer.py" "$@"
    fi
}

# The multi-MB corpus of bench-compare.sh and bench-memory.sh (add
# --seed SEED): 2 accounts x 2 regions x 5 hours x 10 logs/hour = 200 log
# files of 3,000 events (~1.3 KB each, ~3.9 MB per file, as busy accounts
# write them): ~780 MB of JSON, ~8:1 gzip. Cached in bench-out/corpus-multimb-SEED.
MULTIMB_SYNTH_ARGS=(--accounts 2 --regions 2 --hours 5 --logs-per-hour 10 --records 3000)

# synth_corpus BIN DIR ARGS...: makes DIR with `BIN synth DIR ARGS` unless it
# exists (a cached corpus is reused). The trail is written under DIR.partial
# and renamed, so an interrupted run leaves no half corpus behind.
synth_corpus() {
    local bin=$1 dir=$2
    shift 2
    if [[ -d $dir ]]; then
        log "using the cached corpus $dir (trailmill synth $*)"
        return
    fi
    log "generating $dir: trailmill synth $*"
    rm -rf "$dir.partial"
    "$bin" synth "$dir.partial" "$@"
    mv "$dir.partial" "$dir"
}

# release_binary: sets BIN to $TRAILMILL_CLI (made absolute against
# $CALLER_PWD, the caller's directory before the script's cd), or else builds
# the release CLI and sets BIN to it (CARGO_TARGET_DIR is respected).
release_binary() {
    if [[ -n ${TRAILMILL_CLI:-} ]]; then
        case $TRAILMILL_CLI in
        /*) BIN=$TRAILMILL_CLI ;;
        *) BIN=$CALLER_PWD/$TRAILMILL_CLI ;;
        esac
        log "using $BIN (TRAILMILL_CLI; not building)"
    else
        log "building trailmill (release)"
        cargo build --release -p trailmill-cli
        BIN=$(cargo metadata --format-version 1 --no-deps |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/trailmill
    fi
    [[ -x $BIN ]] || { echo "error: no binary at $BIN" >&2; exit 1; }
}
