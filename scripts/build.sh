#!/usr/bin/env bash
# Configures and builds registrar. Usage: scripts/build.sh [BUILD_TYPE] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_TYPE=${1:-${BUILD_TYPE:-RelWithDebInfo}}
BUILD_DIR=${2:-${BUILD_DIR:-build}}
# ccache, when the machine has it, makes rebuilds after a branch switch or a clean cheap; not required.
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${LAUNCHER[@]}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
