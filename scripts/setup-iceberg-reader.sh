#!/usr/bin/env bash
# Installs the independent Iceberg reader the tests check the Iceberg sink
# with (scripts/read-iceberg.py: pinned pyiceberg with pyarrow, SQLAlchemy for
# its SQL catalog on SQLite and PostgreSQL, and boto3 for its Glue catalog,
# from PyPI, in .venv/iceberg inside the repository; override: ICEBERG_VENV)
# and prints its python. Deliberately without the pyiceberg-core extra:
# it is iceberg-rust's Python binding, the very code under test (pyiceberg
# only needs it to write partitioned tables, not to read them).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ICEBERG_VENV:-$repo/.venv/iceberg}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import pyiceberg, pyiceberg.catalog.sql, pyiceberg.catalog.glue, pyiceberg.io.pyarrow, psycopg2, boto3; assert pyiceberg.__version__ == "0.12.0"' 2>/dev/null \
  || "$venv/bin/pip" install -q 'pyiceberg[pyarrow,sql-sqlite,sql-postgres,glue]==0.12.0' \
       'pyarrow==26.0.1' 'sqlalchemy==2.1.9' 'psycopg2-binary==2.9.13' 'boto3==1.44.8' >&2
echo "$venv/bin/python"
