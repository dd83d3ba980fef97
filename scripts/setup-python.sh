#!/usr/bin/env bash
# Builds and installs the Python package (crates/trailmill-py, with maturin)
# into .venv/py inside the repository (override: PY_VENV), beside the pinned
# tools its tests use (pytest, pyarrow, Polars, DuckDB, pandas, PySpark),
# and prints the venv's python. Every run rebuilds the package from the
# checkout; cargo makes an unchanged one quick.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PY_VENV:-$repo/.venv/py}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pins=(
  'maturin==1.16.0'
  'pytest==8.3.5'
  'pyarrow==18.1.0'
  'polars==1.35.2'
  'duckdb==1.4.4'
  'pandas==2.3.3'
  'pyspark==4.0.1'
)
stamp="$venv/.pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  "$venv/bin/pip" install -q "${pins[@]}" >&2
  echo "${pins[*]}" > "$stamp"
fi
# --no-build-isolation: build with the pinned maturin above, not the newest
# (the backend runs `maturin` from PATH).
export PATH="$venv/bin:$PATH"
"$venv/bin/pip" install -q --no-deps --force-reinstall --no-build-isolation \
  "$repo/crates/trailmill-py" >&2
echo "$venv/bin/python"
