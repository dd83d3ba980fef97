#!/usr/bin/env bash
# Installs the headless browser the `validate --report` test renders its HTML
# report with, and prints the browser's path (everything else goes to stderr).
#
#   TRAILMILL_CHROMIUM="$(scripts/setup-chromium.sh)"
#
# - Uses /usr/bin/chromium when present; otherwise installs Debian's
#   `chromium` package (non-interactively; apt-get update only when the
#   package lists are stale).
# - TRAILMILL_CHROMIUM, when already set to an executable, is kept as is, so a
#   browser installed elsewhere can be used.
set -euo pipefail
log() { echo "setup-chromium: $*" >&2; }

if [ -n "${TRAILMILL_CHROMIUM:-}" ] && [ -x "$TRAILMILL_CHROMIUM" ]; then
    echo "$TRAILMILL_CHROMIUM"
    exit 0
fi
browser=/usr/bin/chromium
if [ ! -x "$browser" ]; then
    log "no $browser: installing Debian's chromium package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }
    [ -x "$browser" ] || { log "still no $browser after installing chromium"; exit 1; }
fi
"$browser" --version >&2 || { log "$browser does not run"; exit 1; }
echo "$browser"
