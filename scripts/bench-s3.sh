#!/usr/bin/env bash
# The S3 benchmark (benches/s3.rs): `trailmill validate s3://…` against the
# real AWS CLI, and `trailmill process s3://…` against a plain parallel
# downloader, through a loopback proxy adding 20 ms per request in front of
# moto. Prints the figures and ratios; asserts nothing about time.
#   scripts/bench-s3.sh    # BENCH_RECORDS=800 BENCH_HOURS=96 BENCH_VALIDATE_HOURS=24 BENCH_LATENCY_MS=20 BENCH_RUNS=5
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
TRAILMILL_ORACLE_PYTHON="$(bash scripts/setup-oracle.sh)"
TRAILMILL_MOTO_PYTHON="$(bash scripts/setup-moto.sh)"
export TRAILMILL_ORACLE_PYTHON TRAILMILL_MOTO_PYTHON
cargo bench -p trailmill-cli --bench s3
