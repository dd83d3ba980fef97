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
