#!/usr/bin/env bash
# Coverage-guided fuzzing of one parser with AFL++, through cargo-afl, outside
# CI (scripts/test does not call it). The targets live in fuzz/, a workspace
# of its own.
#
# Usage: scripts/fuzz-afl.sh TARGET SECONDS
#   TARGET: decode | key | notification | digest (see fuzz/src/bin/)
# Needs cargo-afl once: `cargo install cargo-afl && cargo afl config --build`
# (it builds AFL++ from its crate; this works on the stable toolchain).
#
# Seeds come from fixtures/ (small files only). The run's state is kept in
# .state/afl/TARGET (FUZZ_WORK overrides), so a second run resumes; findings
# are in .state/afl/TARGET/out/default/{crashes,hangs}. Prints the executions
# and the number of crashes and hangs, and fails when there are any.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target=${1:?usage: $0 TARGET SECONDS}
secs=${2:?usage: $0 TARGET SECONDS}
case $target in decode | key | notification | digest) ;; *)
  echo "unknown target $target (decode, key, notification, digest)" >&2
  exit 2
  ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/fuzz/target}"
work="${FUZZ_WORK:-$repo/.state/afl}/$target"
mkdir -p "$work"

(cd "$repo/fuzz" && nice -n 10 cargo afl build --release --bin "$target" >&2)

if [[ ! -d $work/in ]]; then
  mkdir -p "$work/in"
  python3 - "$repo/fixtures" "$work/in" "$target" <<'PY'
import gzip, json, os, sys
fixtures, out, target = sys.argv[1:]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(fixtures) for f in fs)
small = [f for f in files if os.path.getsize(f) <= 16384 and not f.endswith((".sig", ".der"))]
def gunzip(path):
    try:
        return gzip.decompress(open(path, "rb").read())
    except Exception:
        return None
def write(name, data):
    open(os.path.join(out, name), "wb").write(data)
# Keys as the trail's bucket holds them: relative to fixtures/trail, fixtures/bad.
keys = [os.path.relpath(f, os.path.join(fixtures, os.path.relpath(f, fixtures).split(os.sep)[0])) for f in small]
logs = [f for f in small if f.endswith(".json.gz") and "CloudTrail-Digest" not in f]
if target == "decode":
    for i, f in enumerate(logs):
        write(f"gz{i}", b"\0" + open(f, "rb").read())
        plain = gunzip(f)
        if plain is not None:
            write(f"json{i}", b"\1" + plain)
elif target == "key":
    for i, k in enumerate(keys):
        write(f"key{i}", k.encode())
elif target == "notification":
    log_keys = [k for k in keys if "CloudTrail/" in k][:3]
    for i, k in enumerate(log_keys):
        inner = json.dumps({"s3Bucket": "b", "s3ObjectKey": [k]})
        s3 = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": k.replace("_", "%5F"), "size": 1, "eTag": "e"}}}]})
        for j, body in enumerate([inner, json.dumps({"Type": "Notification", "Message": inner}), s3, json.dumps({"Type": "Notification", "Message": s3})]):
            write(f"body{i}-{j}", body.encode())
    write("validation", b"CloudTrail validation message.")
    write("test-event", json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}).encode())
elif target == "digest":
    trail = os.path.join(fixtures, "trail")
    digests = sorted(os.path.relpath(f, trail) for f in files if f.startswith(trail) and "CloudTrail-Digest" in f and f.endswith(".json.gz"))
    for i, k in enumerate(digests[:8]):
        plain = gunzip(os.path.join(trail, k))
        write(f"json{i}", bytes([i]) + plain)
        write(f"resigned{i}", bytes([i | 8]) + plain)
        write(f"gz{i}", bytes([i | 16]) + open(os.path.join(trail, k), "rb").read())
PY
  input=(-i "$work/in")
else
  # Resume the previous run.
  input=(-i -)
fi

# AFL_NO_AFFINITY: the machine's cores are shared; no core binding.
# RAYON_NUM_THREADS=1: one input at a time; hand-offs to a pool cost more.
RAYON_NUM_THREADS=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 \
  AFL_AUTORESUME=1 nice -n 10 cargo afl fuzz "${input[@]}" -o "$work/out" -V "$secs" \
  "$CARGO_TARGET_DIR/release/$target" >"$work/afl.log" 2>&1 || {
  tail -20 "$work/afl.log" >&2
  exit 1
}
stats="$work/out/default/fuzzer_stats"
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
echo "$target: $(get execs_done) executions in $(get run_time) s ($(get execs_per_sec)/s), $(get corpus_count) corpus entries, $(get saved_crashes) crashes, $(get saved_hangs) hangs"
[[ $(get saved_crashes) == 0 && $(get saved_hangs) == 0 ]]
