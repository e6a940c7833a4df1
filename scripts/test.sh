#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test suite.
#   scripts/test.sh            all: unit + contract (ctest) and black-box (real binary, node --test)
#   scripts/test.sh unit       the fast inner-loop subset (unit tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
scripts/install-deps.sh
scripts/build.sh
case "$what" in
  unit)
    ctest --test-dir build --output-on-failure -j"$(nproc)" -L unit ;;
  all)
    ctest --test-dir build --output-on-failure -j"$(nproc)"
    REGISTRAR_BIN="$PWD/build/registrar" node --test --test-concurrency=1 tests/blackbox/ ;;
  *) echo "usage: scripts/test.sh [all|unit]" >&2; exit 2 ;;
esac
