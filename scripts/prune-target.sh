#!/usr/bin/env bash
# Keeps a persistent CARGO_TARGET_DIR from filling the disk. cargo never
# deletes what it built before: every source change leaves the previous test
# executables behind (up to 1.3 GB each here), and checkouts in different
# directories build their own copies. When the disk holding the target
# directory has less than PRUNE_BELOW_GB free (default 40), this deletes the
# incremental caches and, among executables of the same name in deps/, all
# but the newest. cargo rebuilds whatever it later finds missing, so nothing
# here can make a build wrong, only slower.
# Usage: scripts/prune-target.sh [TARGET_DIR]
set -euo pipefail
target="${1:-${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}}"
[ -d "$target" ] || exit 0
below_gb="${PRUNE_BELOW_GB:-40}"
free_gb() { df -P -BG "$target" | awk 'NR == 2 { sub("G", "", $4); print $4 }'; }
before="$(free_gb)"
if [ "$before" -ge "$below_gb" ]; then
  exit 0
fi
for profile in "$target"/*/; do
  rm -rf "${profile}incremental"
  [ -d "${profile}deps" ] || continue
  # Executables are named NAME-HASH (no extension); keep the newest per NAME.
  # (sed, not awk, splits off the hash: mawk has no {16} intervals.)
  find "${profile}deps" -maxdepth 1 -type f -perm -u+x -regextype posix-extended \
    -regex '.*/[^/.]+-[0-9a-f]{16}' -printf '%T@ %p\n' |
    sort -rn |
    sed -E 's/^[^ ]+ ((.*)-[0-9a-f]{16})$/\2 \1/' |
    awk 'seen[$1]++ { print $2 }' |
    xargs -r rm -f
done
echo "prune-target: $target: ${before} GB free before, $(free_gb) GB after" >&2
