#!/usr/bin/env bash
# Installs the Iceberg REST catalog server the REST catalog tests run:
# rustberg 0.3.0 from crates.io (Apache-2.0 OR MIT; an independent
# implementation of the Iceberg REST specification, on its own storage of
# table pointers, doing the commits' compare-and-swap itself), built with
# its own Cargo.lock (--locked) and only the features the tests use: the
# command line, S3 warehouses, and TLS. Prints the path of its binary.
#
# It is built once per machine into RUSTBERG_ROOT (default:
# ~/.cache/trailmill/rustberg-0.3.0, beside the persistent cargo target
# directory), as it takes minutes on two cores; its build directory is
# deleted afterwards.
set -euo pipefail
version=0.3.0
root="${RUSTBERG_ROOT:-$HOME/.cache/trailmill/rustberg-$version}"
bin="$root/bin/rustberg"
if ! [ -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "$version"; then
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' EXIT
  echo "setup-rustberg: building rustberg $version (a few minutes, once)" >&2
  cargo install rustberg --version "$version" --locked --no-default-features \
    --features cli,storage-s3,tls --root "$root" --target-dir "$build" --quiet >&2
fi
echo "$bin"
