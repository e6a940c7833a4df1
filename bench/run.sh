#!/usr/bin/env bash
# Side-by-side benchmark of registrar and the Node peer (shared/peers/node-seed) on this machine.
#
#   bench/run.sh                      everything: install, build (Release), run, print the table
#   DB=mysql bench/run.sh             the same with registrar on MySQL: the peer's private MariaDB
#                                     (a database of its own there), over TCP loopback
#
# Environment: DB (sqlite, the default, or mysql), DURATION (wrk run length, default 15s), CEILING_SECONDS (argon2 ceiling, default 10),
# PEER_DIR (default <repo>/../shared/peers/node-seed), SKIP_INSTALL=1, SKIP_BUILD=1,
# QUIET_MAX_BUSY / QUIET_TIMEOUT (each phase first waits up to 300 s for the machine to use at most
# 15 % of its CPU; the CPU that other processes used during each phase is reported, since other
# builds next to a benchmark skew every figure).
#
# One run: installs wrk/MariaDB and the peer's npm packages if missing, builds registrar in
# Release (build-release/), starts a private MariaDB for the peer, the peer, and registrar on free
# loopback ports; measures the argon2id ceilings (argon2_ceiling.cpp), sign-ups/s, logins/s and GET /users/me (req/s and latency
# percentiles) for both, registrar's resident memory; prints a markdown table and writes it to
# bench/results/latest.md (DB=mysql: latest-mysql.md). Every process it starts is stopped on exit,
# whatever happens.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DB=${DB:-sqlite}
[[ $DB == sqlite || $DB == mysql ]] || { echo "bench: DB must be sqlite or mysql, not $DB" >&2; exit 2; }
PEER_DIR=${PEER_DIR:-$REPO/../shared/peers/node-seed}
DURATION=${DURATION:-15s}
CEILING_SECONDS=${CEILING_SECONDS:-10}
BUILD_DIR=$REPO/build-release
RESULTS=$REPO/bench/results
WORK=$(mktemp -d /tmp/registrar-bench.XXXXXX)
PIDS=()

BENCH_NAME=bench
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-300}
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cleanup() {
  local rc=$? pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  wait 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then
    echo "bench: failed (exit $rc); logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time (ticks) used by the whole machine: "busy total".
cpu_totals() {
  local u n s i w q sq st
  read -r _ u n s i w q sq st _ </proc/stat
  echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
# A process and its live children (registrar's hash workers): every thread may have started some.
with_children() { # pid → pids
  echo "$1"
  cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$' || true
}
# CPU time (ticks) used so far by the long-running processes this script started, and their children.
own_ticks() {
  local pid t=0 rest
  for pid in $(for p in "${PIDS[@]}"; do with_children "$p"; done); do
    [[ -r /proc/$pid/stat ]] || continue
    rest=$(sed 's/^.*) //' "/proc/$pid/stat")
    # shellcheck disable=SC2086
    set -- $rest
    t=$((t + ${12} + ${13})) # utime, stime
  done
  echo "$t"
}
# Runs one measured phase (stdout to a file), after waiting for a quiet machine, and records the
# share of the machine's CPU that processes other than ours (servers, wrk, the ceiling program)
# used meanwhile: a figure measured next to someone else's build is flagged in the report.
OTHERS=()
OTHERS_MAX=0
measure_phase() { # label outfile command...
  local label=$1 out=$2 b0 t0 o0 b1 t1 o1 child others pct
  shift 2
  wait_quiet "$label"
  read -r b0 t0 < <(cpu_totals)
  o0=$(own_ticks)
  local TIMEFORMAT='%3U %3S'
  { time "$@" >"$out" 2>"$out.err"; } 2>"$out.time"
  read -r b1 t1 < <(cpu_totals)
  o1=$(own_ticks)
  child=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($1 + $2) * hz }' "$out.time")
  others=$(((b1 - b0) - (o1 - o0) - child))
  ((others < 0)) && others=0
  pct=$((100 * others / (t1 - t0)))
  OTHERS+=("$label ${pct}%")
  ((pct > OTHERS_MAX)) && OTHERS_MAX=$pct
  cat "$out" >&2
  return 0
}

# ---------------------------------------------------------------- 1. install and build
install_bench_tools() {
  local need=() p
  for p in wrk mariadb-server mariadb-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  ((${#need[@]})) || return 0
  log "installing ${need[*]}"
  local SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # Debian starts mariadb's system service on install; this benchmark runs its own private one,
  # so forbid service starts for the duration of the install (policy-rc.d, exit 101 = denied).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" && added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  ((added_policy)) && $SUDO rm -f "$policy"
  return 0
}

# The peer directory is read-only shared material: install its packages into a copy of it.
PEER_RUN=${XDG_CACHE_HOME:-$HOME/.cache}/registrar-bench/node-seed
install_peer() {
  [[ -f $PEER_DIR/server.js ]] || die "the Node peer is not at $PEER_DIR (set PEER_DIR)"
  mkdir -p "$PEER_RUN"
  cp "$PEER_DIR/server.js" "$PEER_DIR/package.json" "$PEER_DIR/package-lock.json" "$PEER_RUN/"
  if [[ ! -f $PEER_RUN/node_modules/.package-lock.json ]] || ! cmp -s "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"; then
    log "npm ci (node-seed peer) in $PEER_RUN"
    # npm ci first; the peer's lockfile lacks some optional platform entries that newer npm
    # versions insist on, and then `npm install` (in this copy) keeps the locked versions and fills
    # in the rest.
    (cd "$PEER_RUN" && { npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 \
      || npm install --no-audit --no-fund --loglevel=error >/dev/null; })
    cp "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"
  fi
}

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  install_bench_tools
  # The project's own dependencies (compilers, libraries); a failure here is reported, and the
  # build below is what decides whether anything needed is really missing.
  "$REPO/scripts/install-deps.sh" || echo "bench: warning: scripts/install-deps.sh failed; trying the build anyway" >&2
  install_peer
fi
for tool in wrk mariadbd mariadb-install-db mariadb-admin mariadb node; do
  command -v "$tool" >/dev/null || die "$tool is missing (run without SKIP_INSTALL)"
done
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building registrar (Release) in $BUILD_DIR"
  CMAKE_ARGS="${CMAKE_ARGS:-} -DREGISTRAR_BUILD_TESTS=OFF -DREGISTRAR_BUILD_BENCH=ON" \
    "$REPO/scripts/build.sh" Release "$BUILD_DIR" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log" >&2; die "build failed"; }
fi
[[ -x $BUILD_DIR/registrar && -x $BUILD_DIR/argon2_ceiling ]] || die "missing $BUILD_DIR/registrar or argon2_ceiling"

# ---------------------------------------------------------------- 2. start the services
log "starting a private MariaDB"
DB_DIR=$WORK/mariadb DB_SOCK=$WORK/mariadb.sock DB_PORT=$(free_port)
mariadb-install-db --no-defaults --user=root --datadir="$DB_DIR" --auth-root-authentication-method=normal \
  --skip-test-db >"$WORK/mariadb-install.log" 2>&1 || { tail -30 "$WORK/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
mariadbd --no-defaults --user=root --datadir="$DB_DIR" --port="$DB_PORT" --socket="$DB_SOCK" \
  --bind-address=127.0.0.1 --pid-file="$WORK/mariadb.pid" --skip-log-bin --max-connections=200 \
  >"$WORK/mariadb.log" 2>&1 &
PIDS+=($!)
wait_until 60 "MariaDB" mariadb-admin --no-defaults --socket="$DB_SOCK" -uroot ping
mariadb --no-defaults --socket="$DB_SOCK" -uroot -e "CREATE DATABASE IF NOT EXISTS peer; CREATE USER IF NOT EXISTS 'peer'@'localhost' IDENTIFIED BY 'peer'; CREATE USER IF NOT EXISTS 'peer'@'127.0.0.1' IDENTIFIED BY 'peer'; GRANT ALL ON peer.* TO 'peer'@'localhost'; GRANT ALL ON peer.* TO 'peer'@'127.0.0.1';"
DB_PID=${PIDS[-1]}
REG_DB_ARGS=()
if [[ $DB == mysql ]]; then
  # registrar's own database and user on the same server (the peer keeps `peer`).
  mariadb --no-defaults --socket="$DB_SOCK" -uroot -e "CREATE DATABASE IF NOT EXISTS registrar CHARACTER SET utf8mb4; CREATE USER IF NOT EXISTS 'registrar'@'127.0.0.1' IDENTIFIED BY 'registrar'; GRANT ALL ON registrar.* TO 'registrar'@'127.0.0.1';"
  REG_DB_ARGS=(--database-url "mysql://registrar:registrar@127.0.0.1:$DB_PORT/registrar")
fi

log "starting the Node peer"
PEER_PORT=$(free_port)
(cd "$PEER_RUN" && exec env -u AMQP_URL PORT="$PEER_PORT" DB_SOCKET="$DB_SOCK" NODE_ENV=production node server.js) \
  >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
wait_until 30 "the Node peer" curl -fsS "http://127.0.0.1:$PEER_PORT/healthz"

log "starting registrar"
REG_DATA=$WORK/registrar-data
mkdir -p "$REG_DATA"
"$BUILD_DIR/registrar" serve --rate-limits false --listen 127.0.0.1:0 --data-dir "$REG_DATA" "${REG_DB_ARGS[@]}" >"$WORK/registrar.log" 2>&1 &
REG_PID=$!
PIDS+=("$REG_PID")
wait_until 30 "registrar's listening line" grep -q '"msg":"listening"' "$WORK/registrar.log"
REG_PORT=$(grep -m1 '"msg":"listening"' "$WORK/registrar.log" | grep -o '"address":"[^"]*"' | grep -o '[0-9]*"$' | tr -d '"')
[[ -n $REG_PORT ]] || die "no port in registrar's listening line"
wait_until 10 "registrar /readyz" curl -fsS "http://127.0.0.1:$REG_PORT/readyz"

# ---------------------------------------------------------------- 3. the argon2 ceilings
# Both limits of argon2_ceiling, each in one single-threaded process per core: argon2 in memory
# reused for every hash, as registrar's hash workers do (the ceiling that sign-ups are compared
# with), and libsodium as shipped, which maps fresh memory for every hash (the ceiling until
# issue 11; for the record).
log "argon2id: one core, reused memory (3s), then both ceilings (${CEILING_SECONDS}s each, $(nproc) processes)"
measure_phase "argon2 one core" "$WORK/one-core.txt" "$BUILD_DIR/argon2_ceiling" --processes 1 --memory reused --seconds 3
measure_phase "argon2 ceilings" "$WORK/ceiling.txt" "$BUILD_DIR/argon2_ceiling" --processes "$(nproc)" --memory both --seconds "$CEILING_SECONDS"
result() { # file memory field → that field of the file's RESULT line for that memory (shipped | reused)
  sed -n "s/^RESULT .* memory=$2 .* $3=\([0-9.]*\).*/\1/p" "$1"
}
SHIPPED_RATE=$(result "$WORK/ceiling.txt" shipped hashes_per_sec)
CEILING=$(result "$WORK/ceiling.txt" reused hashes_per_sec)
MS_PER_HASH=$(result "$WORK/ceiling.txt" reused ms_per_hash)
MS_ONE_CORE=$(result "$WORK/one-core.txt" reused ms_per_hash)

# ---------------------------------------------------------------- 4. sign-ups per second
RUNID=$(date +%s | tail -c 7)
register_rate() { # name port → created/s
  local name=$1 port=$2
  log "POST /auth/register: $name (wrk -t2 -c16 -d$DURATION)"
  measure_phase "sign-ups $name" "$WORK/register-$name.txt" \
    wrk -t2 -c16 -d"$DURATION" -s "$REPO/bench/register.lua" "http://127.0.0.1:$port" -- "${RUNID}${name:0:1}"
  local line; line=$(grep '^REGISTER ' "$WORK/register-$name.txt")
  echo "$line" | sed -n 's/.*created_per_sec=\([0-9.]*\).*/\1/p' >"$WORK/register-$name.rate"
  echo "$line" | sed -n 's/.*statuses=\([^ ]*\).*/\1/p' >"$WORK/register-$name.statuses"
}
register_rate registrar "$REG_PORT"
# The ceiling again, right after registrar's sign-ups: the machine is shared and its speed drifts
# over minutes, so registrar's rate is compared with the mean of the ceilings just before and after.
measure_phase "argon2 ceiling (after)" "$WORK/ceiling-after.txt" "$BUILD_DIR/argon2_ceiling" --processes "$(nproc)" --memory reused --seconds "$CEILING_SECONDS"
CEILING_BEFORE=$CEILING
CEILING_AFTER=$(result "$WORK/ceiling-after.txt" reused hashes_per_sec)
CEILING=$(awk -v a="$CEILING_BEFORE" -v b="$CEILING_AFTER" 'BEGIN { printf "%.1f", (a + b) / 2 }')
register_rate node "$PEER_PORT"

# ---------------------------------------------------------------- 4b. logins per second
# One account per server, logged in again and again: each login is one argon2id verification.
login_rate() { # name port → ok/s
  local name=$1 port=$2 email password line
  email="login${RUNID}${name:0:1}@bench.example.com" password="Bench-login-${RUNID}-pw"
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"username\":\"login${RUNID}${name:0:1}\",\"password\":\"$password\"}" \
    "http://127.0.0.1:$port/auth/register" || die "cannot register the login account on $name"
  log "POST /auth/login: $name (wrk -t2 -c16 -d$DURATION)"
  measure_phase "logins $name" "$WORK/login-$name.txt" \
    wrk -t2 -c16 -d"$DURATION" -s "$REPO/bench/login.lua" "http://127.0.0.1:$port" -- "$email" "$password"
  line=$(grep '^LOGIN ' "$WORK/login-$name.txt")
  echo "$line" | sed -n 's/.*ok_per_sec=\([0-9.]*\).*/\1/p' >"$WORK/login-$name.rate"
  echo "$line" | sed -n 's/.*statuses=\([^ ]*\).*/\1/p' >"$WORK/login-$name.statuses"
}
login_rate registrar "$REG_PORT"
login_rate node "$PEER_PORT"

# ---------------------------------------------------------------- 5. GET /users/me
proc_ticks() { # pid → CPU ticks (user + system) it and its live children used so far
  local p rest t=0
  for p in $(with_children "$1"); do
    rest=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2086
    set -- $rest
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
token_for() { # port → access token of a fresh user
  local port=$1 body
  body=$(printf '{"email":"me%s@bench.example.com","username":"me%s","password":"Bench-me-%s-pw"}' "$RANDOM$RANDOM" "$RANDOM$RANDOM" "$RANDOM")
  curl -fsS -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$port/auth/register" \
    | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>console.log(JSON.parse(s).accessToken))'
}
to_ms() { # wrk latency like 812.00us / 1.23ms / 1.01s → ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
me_rate() { # name port
  local name=$1 port=$2 token f
  token=$(token_for "$port")
  [[ -n $token && $token != undefined ]] || die "no token from $name"
  curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/users/me" >/dev/null || die "GET /users/me fails on $name"
  log "GET /users/me: $name (wrk -t2 -c64 -d$DURATION --latency)"
  f=$WORK/me-$name.txt
  local server_pid=$REG_PID s0 d0 t0 s1 d1 t1
  [[ $name == node ]] && server_pid=$PEER_PID
  s0=$(proc_ticks "$server_pid") d0=$(proc_ticks "$DB_PID") t0=$(cpu_totals | cut -d' ' -f2)
  measure_phase "/users/me $name" "$f" \
    wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port/users/me"
  s1=$(proc_ticks "$server_pid") d1=$(proc_ticks "$DB_PID") t1=$(cpu_totals | cut -d' ' -f2)
  # Where the machine's CPU went during the phase (percent of all cores): the server, MariaDB, wrk.
  awk -v s="$((s1 - s0))" -v d="$((d1 - d0))" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v w="$(cat "$f.time")" \
    'BEGIN { split(w, a, " "); printf "%.0f / %.0f / %.0f", 100 * s / t, 100 * d / t, 100 * (a[1] + a[2]) * hz / t }' >"$WORK/me-$name.cpu"
  sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$f" >"$WORK/me-$name.rate"
  for p in 50 90 99; do to_ms "$(awk -v p="$p%" '$1 == p { print $2 }' "$f")" >"$WORK/me-$name.p$p"; echo >>"$WORK/me-$name.p$p"; done
  (grep -o 'Non-2xx or 3xx responses: [0-9]*' "$f" | grep -o '[0-9]*$' || echo 0) >"$WORK/me-$name.non2xx"
}
me_rate registrar "$REG_PORT"
me_rate node "$PEER_PORT"

# ---------------------------------------------------------------- 6. resident memory
# Memory of a process with its children: PSS (shared pages divided among the processes sharing
# them, so the workers' share of the binary and libraries is not counted twice) and the sum of
# each process's peak RSS (an upper bound: peaks need not coincide, shared pages count in each).
rss_mb() { with_children "$1" | while read -r p; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '/^Pss:/ { kb += $2 } END { printf "%.1f", kb / 1024 }'; }
hwm_mb() { with_children "$1" | while read -r p; do cat "/proc/$p/status" 2>/dev/null; done | awk '/^VmHWM:/ { kb += $2 } END { printf "%.1f", kb / 1024 }'; }
kill -0 "$REG_PID" 2>/dev/null || die "registrar died during the run (log: $WORK/registrar.log)"
kill -0 "$PEER_PID" 2>/dev/null || die "the Node peer died during the run (log: $WORK/peer.log)"
REG_RSS=$(rss_mb "$REG_PID") REG_HWM=$(hwm_mb "$REG_PID")
PEER_RSS=$(rss_mb "$PEER_PID") PEER_HWM=$(hwm_mb "$PEER_PID")
if [[ $DB == mysql ]]; then
  USERS=$(mariadb --no-defaults --socket="$DB_SOCK" -uroot -N -B -e 'SELECT count(*) FROM registrar.users' 2>/dev/null || echo '?')
  OUTBOX=$(mariadb --no-defaults --socket="$DB_SOCK" -uroot -N -B -e 'SELECT count(*) FROM registrar.outbox' 2>/dev/null || echo '?')
else
  USERS=$(sqlite3 "$REG_DATA/registrar.db" 'SELECT count(*) FROM users' 2>/dev/null || echo '?')
  OUTBOX=$(sqlite3 "$REG_DATA/registrar.db" 'SELECT count(*) FROM outbox' 2>/dev/null || echo '?')
fi

# ---------------------------------------------------------------- 7. the table
r() { cat "$WORK/$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }

REG_SIGNUPS=$(r register-registrar.rate) NODE_SIGNUPS=$(r register-node.rate)
REG_LOGINS=$(r login-registrar.rate) NODE_LOGINS=$(r login-node.rate)
REG_ME=$(r me-registrar.rate) NODE_ME=$(r me-node.rate)
REG_P99=$(r me-registrar.p99)
mkdir -p "$RESULTS"
OUT=$RESULTS/latest.md
REG_BACKEND="SQLite WAL"
if [[ $DB == mysql ]]; then
  OUT=$RESULTS/latest-mysql.md
  REG_BACKEND="MySQL: the peer's MariaDB server, own database, over TCP loopback (the peer: Unix socket)"
fi
{
  echo "# registrar$([[ $DB == mysql ]] && echo ' on MySQL') vs Node peer — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);"
  echo "registrar $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+changes') (Release, $REG_BACKEND, in-process events);"
  echo "peer: node-seed server.js on Node $(node --version), MariaDB $(mariadbd --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*-MariaDB' | head -1), no AMQP."
  echo "wrk on the same machine: sign-ups \`wrk -t2 -c16 -d$DURATION -s bench/register.lua\` (only 201s counted),"
  echo "\`GET /users/me\` \`wrk -t2 -c64 -d$DURATION --latency\` with one user's token. argon2id m=19 MiB, t=2, p=1 everywhere."
  OTHERS_LIST=$(printf '%s, ' "${OTHERS[@]}")
  echo "Share of the machine's CPU used by processes other than the benchmark's during each phase: ${OTHERS_LIST%, }."
  if ((OTHERS_MAX > 10)); then
    echo "**Warning: other processes used over 10 % of the CPU during a phase; those figures are skewed. Re-run on a quiet machine.**"
  fi
  echo
  echo "| measure | registrar | Node peer | registrar / Node | target |"
  echo "|---|---:|---:|---:|---|"
  echo "| argon2id ceiling, hashes/s: argon2 in memory reused for every hash, as registrar's workers hash ($(nproc) single-threaded processes; mean of $CEILING_BEFORE before and $CEILING_AFTER after registrar's sign-ups; $MS_PER_HASH ms per hash per core; one core alone: $MS_ONE_CORE ms) | $CEILING | | | |"
  echo "| libsodium as shipped (fresh memory for every hash), $(nproc) processes, hashes/s (for comparison: the ceiling until issue 11) | $SHIPPED_RATE | | | |"
  echo "| sign-ups/s (201s) | $REG_SIGNUPS | $NODE_SIGNUPS | $(ratio "$REG_SIGNUPS" "$NODE_SIGNUPS") | |"
  echo "| sign-ups vs argon2 ceiling | $(pct "$REG_SIGNUPS" "$CEILING") | $(pct "$NODE_SIGNUPS" "$CEILING") | | ≥ 90 % $(mark "$(awk -v a="$REG_SIGNUPS" -v b="$CEILING" 'BEGIN { print (a >= 0.9 * b) }')") |"
  echo "| sign-up answers by status | $(r register-registrar.statuses) | $(r register-node.statuses) | | |"
  echo "| logins/s (200s; one account, each login verifies its hash) | $REG_LOGINS | $NODE_LOGINS | $(ratio "$REG_LOGINS" "$NODE_LOGINS") | |"
  echo "| logins vs argon2 ceiling | $(pct "$REG_LOGINS" "$CEILING") | $(pct "$NODE_LOGINS" "$CEILING") | | ≥ 90 % $(mark "$(awk -v a="$REG_LOGINS" -v b="$CEILING" 'BEGIN { print (a >= 0.9 * b) }')") |"
  echo "| login answers by status | $(r login-registrar.statuses) | $(r login-node.statuses) | | |"
  echo "| GET /users/me req/s (64 conns) | $REG_ME | $NODE_ME | $(ratio "$REG_ME" "$NODE_ME") | ≥ 10× $(mark "$(awk -v a="$REG_ME" -v b="$NODE_ME" 'BEGIN { print (a >= 10 * b) }')") |"
  echo "| GET /users/me p50 / p90 / p99, ms | $(r me-registrar.p50) / $(r me-registrar.p90) / $REG_P99 | $(r me-node.p50) / $(r me-node.p90) / $(r me-node.p99) | | p99 < 5 ms $(mark "$(awk -v a="$REG_P99" 'BEGIN { print (a < 5) }')") |"
  echo "| GET /users/me non-2xx answers | $(r me-registrar.non2xx) | $(r me-node.non2xx) | | 0 |"
  echo "| CPU during GET /users/me, % of all cores: server / MariaDB / wrk | $(r me-registrar.cpu) | $(r me-node.cpu) | | |"
  echo "| resident memory after the run, MB (PSS of the process and its children; peak: sum of their VmHWM) | $REG_RSS (peak $REG_HWM) | $PEER_RSS (peak $PEER_HWM; + MariaDB) | | < 64 MB $(mark "$(awk -v a="$REG_RSS" 'BEGIN { print (a < 64) }')") |"
  echo
  echo "registrar held $USERS users and $OUTBOX outbox rows at the end of the run."
} >"$OUT"
cat "$OUT"
echo >&2
echo "written to ${OUT#"$REPO"/}" >&2
