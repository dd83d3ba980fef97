#!/usr/bin/env bash
# Installs the reference validator (the pinned AWS CLI v1 in a venv) that the
# agreement tests compare trailmill with, and prints its python.
# The venv lives in .venv/oracle inside the repository (override: ORACLE_VENV).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
oracle="$repo/../shared/oracle"
[ -f "$oracle/setup.sh" ] || { echo "setup-oracle: $oracle/setup.sh is missing (../shared beside the repository)" >&2; exit 1; }
ORACLE_VENV="${ORACLE_VENV:-$repo/.venv/oracle}" bash "$oracle/setup.sh"
