#!/usr/bin/env bash
# Long property-test run of every parser of untrusted input, outside CI
# (scripts/test does not call it): by default 10^6 cases of each property
# below, in release mode, niced. CI runs the same properties with a few
# hundred cases each; this is the run that finds the rare cases.
#
# Usage: scripts/fuzz-long.sh [CASES]        (default 1000000 per property)
#   BATCH=100000      cases per test-binary run; progress is printed per batch
#   ONLY=REGEX        run only the properties whose name matches
#
# Cases run in batches of BATCH (each with a fresh random seed) until CASES
# are done or a batch fails. A failure is persisted by proptest in the
# property's `fuzz.proptest-regressions`, so the next CI run replays it:
# commit that file with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=${1:-1000000}
BATCH=${BATCH:-100000}
ONLY=${ONLY:-.}

# package  test-file  property  (one per parser, plus the other long ones)
PROPERTIES=(
  "trailmill-core fuzz damaged_keys_are_classified_cleanly"
  "trailmill-core fuzz damaged_notifications_fail_cleanly"
  "trailmill-core fuzz damaged_files_fail_cleanly"
  "trailmill-validate fuzz damaged_digest_content_gives_verdicts"
  "trailmill-core fuzz truncated_files_fail_or_give_a_prefix"
  "trailmill-validate fuzz arbitrary_digest_bytes_never_panic"
  "trailmill-core fuzz valid_files_yield_exactly_their_records"
  "trailmill-core fuzz damaged_files_decode_alike_on_both_paths"
)

echo "building the property tests (release)..." >&2
nice -n 10 cargo test --release -q -p trailmill-core -p trailmill-validate --test fuzz --no-run

status=0
for p in "${PROPERTIES[@]}"; do
  read -r pkg file name <<<"$p"
  [[ $name =~ $ONLY ]] || continue
  done_cases=0
  start=$(date +%s)
  result=ok
  while (( done_cases < CASES )); do
    n=$(( CASES - done_cases < BATCH ? CASES - done_cases : BATCH ))
    if ! PROPTEST_CASES=$n nice -n 10 cargo test --release -q -p "$pkg" --test "$file" -- \
        --exact "$name" >"/tmp/fuzz-long-$name.log" 2>&1; then
      result="FAILED (see /tmp/fuzz-long-$name.log)"
      status=1
      break
    fi
    done_cases=$(( done_cases + n ))
    echo "  $name: $done_cases cases, $(( $(date +%s) - start )) s" >&2
  done
  echo "$pkg $name: $done_cases cases clean, $(( $(date +%s) - start )) s, $result"
done
exit $status
