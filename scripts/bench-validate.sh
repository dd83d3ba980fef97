#!/usr/bin/env bash
# Compares `trailmill validate` with the reference validator (the real AWS CLI
# against moto, scripts/aws-validate-logs.py) on the same synthetic trail of at
# least 500 MB uncompressed, in one run, and with the machine's
# inflate-plus-SHA-256 throughput on all cores (the validate_perf example's
# baseline).
#   scripts/bench-validate.sh            # MIB=600 by default
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
mib="${MIB:-600}"
dir="bench-out/validate-trail-$mib"
py="$(bash scripts/setup-oracle.sh)"

echo "==> building (release)"
cargo build --release -q -p trailmill-cli -p trailmill-validate --example validate_perf
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target/release/trailmill"

echo "==> baseline and library run (generates $dir on first use)"
"$target/release/examples/validate_perf" "$dir" "$mib" | tee bench-out/validate-perf.txt

account="$(ls "$dir/AWSLogs" | head -n 1)"
arn="arn:aws:cloudtrail:us-east-1:$account:trail/synth-trail"
start=2024-01-01T00:00:00Z
end=2024-01-02T00:01:00Z
seconds() { python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(f"{time.perf_counter() - t:.3f} {rc}")
PY
}
# The reference's time is the CLI's own run, which reads the trail from moto
# over HTTP (as from S3); starting moto and uploading the trail are not counted.
cli_seconds() {
  local f rc
  f="$(mktemp)"
  "$@" --cli-seconds "$f" >/dev/null 2>&1 && rc=0 || rc=$?
  echo "$(cat "$f" 2>/dev/null || echo 0) $rc"
  rm -f "$f"
}
best() { # best of 3 wall times of a command; fails if it exits non-zero
  local b="" t rc timer="${TIMER:-seconds}"
  for _ in 1 2 3; do
    read -r t rc < <("$timer" "$@")
    [ "$rc" = 0 ] || { echo "command failed ($rc): $*" >&2; exit 1; }
    if [ -z "$b" ] || python3 -c "import sys; sys.exit(0 if $t < $b else 1)"; then b="$t"; fi
  done
  echo "$b"
}

echo "==> timing (best of 3 each)"
total_t=0; total_o=0
for region in us-east-1 eu-west-1; do
  t=$(best "$bin" validate "$dir" --trail-arn "$arn" --region "$region" --start-time $start --end-time $end --bucket trailmill-synth --format aws-cli)
  o=$(TIMER=cli_seconds best "$py" scripts/aws-validate-logs.py --root "$dir" --bucket trailmill-synth --trail-arn "$arn" \
        --public-keys "$dir/keys.json" --start-time $start --end-time $end --region "$region")
  printf '%-10s trailmill validate %6.2f s   aws cloudtrail validate-logs %6.2f s   %5.1fx\n' "$region" "$t" "$o" "$(python3 -c "print($o/$t)")"
  total_t=$(python3 -c "print($total_t+$t)"); total_o=$(python3 -c "print($total_o+$o)")
done
all=$(best "$bin" validate "$dir" --all --start-time $start --end-time $end --bucket trailmill-synth --format json)
mb=$(grep -o '[0-9]* MB in' bench-out/validate-perf.txt | head -n 1 | cut -d' ' -f1)
base=$(grep 'baseline libdeflate' bench-out/validate-perf.txt | grep -o '= [0-9]* MB/s' | tr -dc 0-9)
printf 'both regions: trailmill %.2f s (per-region runs), %.2f s (--all, one run); reference %.2f s: %.1fx (per region), %.1fx (--all)\n' \
  "$total_t" "$all" "$total_o" "$(python3 -c "print($total_o/$total_t)")" "$(python3 -c "print($total_o/$all)")"
printf 'trail: %s MB uncompressed; trailmill validate --all: %.0f MB/s = %.0f%% of the inflate+SHA-256 baseline (%s MB/s on all cores)\n' \
  "$mb" "$(python3 -c "print($mb/$all)")" "$(python3 -c "print(100*$mb/$all/$base)")" "$base"
