#!/usr/bin/env bash
# Builds and installs the Python package (crates/trailmill-py, with maturin)
# into .venv/py inside the repository (override: PY_VENV), beside the pinned
# tools its tests use (pytest, pyarrow, Polars, DuckDB, pandas, PySpark),
# and prints the venv's python. Every run rebuilds the package from the
# checkout (`pip install`, maturin); cargo makes an unchanged one quick.
# With TRAILMILL_PY_CDYLIB=PATH it installs that already built extension
# module instead (what scripts/test does).
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
if [ -n "${TRAILMILL_PY_CDYLIB:-}" ]; then
  # The test command's way: install the extension module that its own
  # `cargo build` made (the dev profile, shared with the Rust tests),
  # laid out as maturin lays out the wheel: the Python sources of
  # python/trailmill plus `_trailmill.abi3.so`. A maturin build compiles
  # every dependency once more in its own profile (17 minutes cold here).
  [ -f "$TRAILMILL_PY_CDYLIB" ] || {
    echo "setup-python: no extension module at $TRAILMILL_PY_CDYLIB" >&2
    exit 1
  }
  "$venv/bin/pip" uninstall -q -y trailmill >/dev/null 2>&1 || true
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
  rm -rf "$site/trailmill"
  cp -r "$repo/crates/trailmill-py/python/trailmill" "$site/trailmill"
  # A link, not a copy: the dev build's module is over a gigabyte.
  ln -s "$(realpath "$TRAILMILL_PY_CDYLIB")" "$site/trailmill/_trailmill.abi3.so"
else
  # --no-build-isolation: build with the pinned maturin above, not the
  # newest (the backend runs `maturin` from PATH).
  export PATH="$venv/bin:$PATH"
  "$venv/bin/pip" install -q --no-deps --force-reinstall --no-build-isolation \
    "$repo/crates/trailmill-py" >&2
fi
echo "$venv/bin/python"
