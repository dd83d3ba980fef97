#!/usr/bin/env bash
# Installs the independent Parquet reader the tests check the Parquet sink
# with (pinned pyarrow from PyPI, in .venv/pyreader inside the repository;
# override: PYREADER_VENV) and prints its python.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PYREADER_VENV:-$repo/.venv/pyreader}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import pyarrow.dataset' 2>/dev/null \
  || "$venv/bin/pip" install -q 'pyarrow==18.1.0' >&2
echo "$venv/bin/python"
