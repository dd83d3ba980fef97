#!/usr/bin/env bash
# Installs the moto server the AWS tests talk to (pinned, in .venv/moto inside
# the repository; override: MOTO_VENV) and prints its python. Glue is there
# for the Iceberg sink's Glue catalog (moto.glue needs the [glue] extra's
# pyparsing, so importing it proves that extra is installed).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MOTO_VENV:-$repo/.venv/moto}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import moto, moto.glue, flask, flask_cors' 2>/dev/null \
  || "$venv/bin/pip" install -q 'moto[s3,sqs,sns,glue]==5.2.5' flask flask-cors >&2
echo "$venv/bin/python"
