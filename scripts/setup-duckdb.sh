#!/usr/bin/env bash
# Installs DuckDB's Python package (pinned, from PyPI) in .venv/duckdb inside
# the repository (override: DUCKDB_VENV) and prints its python.
# scripts/bench-compare.sh uses it to count the same filtered events as
# trailmill with DuckDB's read_json, as a point of comparison.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${DUCKDB_VENV:-$repo/.venv/duckdb}"
version=1.4.4
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb; assert duckdb.__version__ == '$version'" 2>/dev/null \
  || "$venv/bin/pip" install -q "duckdb==$version" >&2
echo "$venv/bin/python"
