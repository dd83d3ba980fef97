#!/usr/bin/env bash
# Installs the reference validator that the agreement tests compare trailmill
# with: the pinned AWS CLI v1 (awscli==1.46.2) in a venv, plus the moto venv
# its harness (scripts/aws-validate-logs.py) runs the CLI against. Prints the
# venv's python, which runs the harness.
# The venv lives in .venv/oracle inside the repository (override: ORACLE_VENV).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ORACLE_VENV:-$repo/.venv/oracle}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# The harness runs the CLI's `aws` entry point; its version must be the pinned
# one, since the tests compare its output byte for byte.
if [ "$("$venv/bin/python" -c 'import awscli; print(awscli.__version__)' 2>/dev/null)" != 1.46.2 ] \
  || [ ! -x "$venv/bin/aws" ]; then
  "$venv/bin/pip" install -q 'awscli==1.46.2' >&2
fi
bash "$repo/scripts/setup-moto.sh" >/dev/null
echo "$venv/bin/python"
