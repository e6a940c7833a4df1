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
  # the openssl CLI: scripts/make-test-certs.sh makes the TLS tests' certificates with it
  openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  # scripts/fuzz.sh: clang, its compiler-rt (libclang_rt.fuzzer/asan/ubsan: only Recommended by
  # clang-14, so named here) and llvm-symbolizer for readable sanitizer stacks
  clang libclang-rt-14-dev llvm-14
  # lld: every build links with it when present (CMakeLists.txt: ~4x faster links than GNU ld)
  lld
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

# msgpack-c (C++ headers) for the Socket.IO Redis adapter's wire format (notepack.io's msgpack).
# Debian 12's libmsgpack-cxx-dev depends on libboost-dev (1.74), which cannot be installed next to
# the Boost 1.81 packages above; the library is header-only and is used with MSGPACK_NO_BOOST, so
# its .deb is fetched from Debian's registry and unpacked into .deps/msgpack without apt's
# dependency resolution. CMake looks for the headers there (REGISTRAR_MSGPACK_DIR).
MSGPACK_DIR=.deps/msgpack
MSGPACK_WANT="4.1."
if [[ ! -f "$MSGPACK_DIR/usr/include/msgpack.hpp" ]] || ! grep -q "^$MSGPACK_WANT" "$MSGPACK_DIR/VERSION" 2>/dev/null; then
  tmp=$(mktemp -d)
  # apt's lists may be missing on a machine that had every package already (no update ran above).
  (cd "$tmp" && { apt-get download libmsgpack-cxx-dev >/dev/null 2>&1 ||
                  { $SUDO apt-get update -qq && apt-get download libmsgpack-cxx-dev >/dev/null; }; })
  deb=$(ls "$tmp"/libmsgpack-cxx-dev_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  if [[ "$version" != "$MSGPACK_WANT"* ]]; then
    echo "install-deps: libmsgpack-cxx-dev is $version, expected ${MSGPACK_WANT}x" >&2
    rm -rf "$tmp"; exit 1
  fi
  rm -rf "$MSGPACK_DIR" && mkdir -p "$MSGPACK_DIR"
  dpkg-deb -x "$deb" "$MSGPACK_DIR"
  echo "$version" >"$MSGPACK_DIR/VERSION"
  rm -rf "$tmp"
fi
