#!/usr/bin/env bash
# Installs dependencies, builds, and runs `registrar serve` on its embedded defaults.
# Extra arguments go to `registrar serve` (e.g. --listen 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/registrar serve "$@"
