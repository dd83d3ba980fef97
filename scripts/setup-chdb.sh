#!/usr/bin/env bash
# Installs chDB (ClickHouse as a Python library; pinned, from PyPI) in
# .venv/chdb inside the repository (override: CHDB_VENV) and prints its
# python. scripts/bench-lake.sh uses it to convert the same corpus to Parquet
# with ClickHouse, as a point of comparison for trailmill's lake sinks.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${CHDB_VENV:-$repo/.venv/chdb}"
# chdb is the Python API; chdb-core (its dependency) carries the engine.
version=4.4.0
core=26.9.0
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import chdb, importlib.metadata as m; assert chdb.__version__ == '$version' and m.version('chdb-core') == '$core'" 2>/dev/null \
  || "$venv/bin/pip" install -q "chdb==$version" "chdb-core==$core" >&2
echo "$venv/bin/python"
