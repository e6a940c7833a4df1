#!/usr/bin/env bash
# Installs every dependency of registrar from Debian's and npm's registries.
# Idempotent: re-running it on a prepared machine takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsodium-dev libspdlog-dev libfmt-dev libcli11-dev libsqlite3-dev sqlite3
  libmariadb-dev mariadb-server mariadb-client
  librabbitmq-dev rabbitmq-server
  # Redis: the server the tests start (redis-server, redis-cli); OpenSSL for rediss:// through Asio
  redis-server redis-tools libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # scripts/fuzz.sh: clang, its compiler-rt (libclang_rt.fuzzer/asan/ubsan: only Recommended by
  # clang-14, so named here) and llvm-symbolizer for readable sanitizer stacks
  clang libclang-rt-14-dev llvm-14
)
# Node.js + npm (the black-box tests and the npm build input): the machine's own Node 20 when
# present (its package bundles npm); Debian's otherwise.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  APT_PACKAGES+=(nodejs npm)
fi
# Benchmark tools.
if [[ "${REGISTRAR_WITH_BENCH:-0}" == 1 ]]; then
  APT_PACKAGES+=(wrk)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages, each from its lockfile: the common-password list and bull's Lua scripts (build
# inputs) and the Node clients used by the wire-compatibility tests.
for d in third_party/common-passwords third_party/bull tests/node; do
  if [[ -f "$d/package-lock.json" ]]; then
    if [[ ! -d "$d/node_modules" || "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]]; then
      (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done
