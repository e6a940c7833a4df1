#!/usr/bin/env bash
# Create_User jobs, registrar's worker next to the Node peer's (../shared/peers/node-seed/worker.js),
# fed by the same Node producer (node-seed's produce.js: `bull` queue.add + job.finished(), codes
# written plain under each session id, tokens signed with the shared secret) on one Redis and one
# MariaDB — registrar in its drop-in settings, as it would replace that worker.
#
#   bench/jobs.sh [ROUNDS]     default 3 interleaved rounds (node, registrar, node, registrar, …)
#
# Two producers feed the same jobs: node-seed's produce.js as is (`stock`: one `job.finished()` per
# job, each with its own listeners and a 5 s watchdog — at a few hundred jobs/s it, not the worker,
# sets the pace), and bench/jobs/produce-fast.js (`fast`: `addBulk` in chunks, completions counted by
# one listener on bull's global events), so that the workers themselves are measured too.
#
# Each round measures, for both workers: jobs/s at the production argon2id cost (m=19 MiB, t=2),
# with the argon2id ceiling of the machine (argon2_ceiling --memory reused, before the round) for
# the ratio; and jobs/s with hashing excluded from both (the Node worker's HASH=0, SHA-256; registrar
# at argon2's smallest cost, 8 KiB and one pass, allowed by REGISTRAR_ALLOW_WEAK_ARGON2 for
# benchmarks and tests only): the queue's own overhead. Prints the medians and writes
# bench/results/jobs-latest.md.
#
# Environment: N (jobs per run, 300), N_NOHASH (2000), N_FAST (1000) and N_FAST_NOHASH (6000) for the
# fast producer, PRODUCERS ("stock fast"), SKIP_BUILD=1, SKIP_INSTALL=1,
# PEER_DIR (<repo>/../shared/peers/node-seed). node-seed's worker connects to MariaDB on
# 127.0.0.1:3306 (it has no port setting): the private MariaDB takes that port, which must be free.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_NAME="jobs bench"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
ROUNDS=${1:-3}
N=${N:-300}
N_NOHASH=${N_NOHASH:-2000}
N_FAST=${N_FAST:-1000}
N_FAST_NOHASH=${N_FAST_NOHASH:-6000}
PRODUCERS=${PRODUCERS:-stock fast}
PEER_DIR=${PEER_DIR:-$REPO/../shared/peers/node-seed}
PEER_RUN=${XDG_CACHE_HOME:-$HOME/.cache}/registrar-bench/node-seed-jobs
BUILD_DIR=${BUILD_DIR:-$REPO/build-release}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15} QUIET_TIMEOUT=${QUIET_TIMEOUT:-120}
SECRET=peer-secret-peer-secret-peer-secret-32
WORK=$(mktemp -d /tmp/registrar-jobsbench.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  "$REPO/scripts/mariadb-private.sh" purge "$WORK/mariadb" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then echo "jobs bench: failed (exit $rc); logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not $ROUNDS"
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  "$REPO/scripts/install-deps.sh" >/dev/null
fi
[[ -f $PEER_DIR/worker.js ]] || die "the Node peer is not at $PEER_DIR (set PEER_DIR)"
mkdir -p "$PEER_RUN"
cp "$PEER_DIR"/{worker.js,produce.js,package.json,package-lock.json} "$PEER_RUN/"
cp "$REPO/bench/jobs/produce-fast.js" "$PEER_RUN/"  # needs the peer's bull, ioredis, jsonwebtoken
if ! cmp -s "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"; then
  log "npm ci (node-seed peer) in $PEER_RUN"
  (cd "$PEER_RUN" && { npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 \
    || npm install --no-audit --no-fund --loglevel=error >/dev/null; })
  cp "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building registrar (Release) in $BUILD_DIR"
  CMAKE_ARGS="${CMAKE_ARGS:-} -DREGISTRAR_BUILD_TESTS=OFF -DREGISTRAR_BUILD_BENCH=ON" \
    "$REPO/scripts/build.sh" Release "$BUILD_DIR" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log" >&2; die "build failed"; }
fi

log "starting a private MariaDB on 127.0.0.1:3306 and a private Redis"
(exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null && die "127.0.0.1:3306 is taken (node-seed's worker can only use that port)"
DB_URL=$("$REPO/scripts/mariadb-private.sh" start "$WORK/mariadb" 3306)
mariadb --no-defaults --socket="$WORK/mariadb/mysqld.sock" -uroot -e "CREATE DATABASE IF NOT EXISTS peer; CREATE USER IF NOT EXISTS 'peer'@'127.0.0.1' IDENTIFIED BY 'peer'; CREATE USER IF NOT EXISTS 'peer'@'localhost' IDENTIFIED BY 'peer'; GRANT ALL ON peer.* TO 'peer'@'127.0.0.1'; GRANT ALL ON peer.* TO 'peer'@'localhost';"
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_until 10 "Redis" redis-cli -p "$REDIS_PORT" ping
MARIADB_PID=$(cat "$WORK/mariadb/mysqld.pid")

# CPU time (user + system, ms) of a process and its live children (registrar's hash workers).
TICK_MS=$((1000 / $(getconf CLK_TCK)))
cpu_ms() {
  local total=0 p
  for p in "$@" $(pgrep -P "$1" 2>/dev/null); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat") * TICK_MS))
  done
  echo "$total"
}

ceiling() { "$BUILD_DIR/argon2_ceiling" --processes "$(nproc)" --memory reused --seconds 4 | sed -n 's/^RESULT .*hashes_per_sec=\([0-9.]*\).*/\1/p'; }

# One run: start the worker ($1: node | registrar, $2: hash | nohash), produce $3 jobs with producer
# $4 (stock | fast), print jobs/s.
run_once() {
  local who=$1 mode=$2 n=$3 producer=$4 db=0 pid out script=produce.js
  [[ $producer == fast ]] && script=produce-fast.js
  [[ $who == registrar ]] && db=1
  redis-cli -p "$REDIS_PORT" -n "$db" flushdb >/dev/null
  local url="redis://127.0.0.1:$REDIS_PORT/$db"
  if [[ $who == node ]]; then
    (cd "$PEER_RUN" && exec env REDIS_URL="$url" JWT_SECRET="$SECRET" HASH=$([[ $mode == hash ]] && echo 1 || echo 0) node worker.js) \
      >"$WORK/worker-$who.log" 2>&1 &
    pid=$!
    wait_until 30 "the Node worker" grep -q 'peer worker ready' "$WORK/worker-$who.log"
  else
    local weak=()
    [[ $mode == nohash ]] && weak=(--argon2-memory-kib 8 --argon2-iterations 1)
    # A database of its own per run: produce.js numbers its phones from 0 each time, and a phone
    # is unique among registrar's accounts (node-seed's table does not check).
    local database="bench_${r}_${mode}_$producer"  # r: the round (run_once runs in a subshell: no counter)
    mariadb --no-defaults --socket="$WORK/mariadb/mysqld.sock" -uroot \
      -e "CREATE DATABASE $database CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    REGISTRAR_ALLOW_WEAK_ARGON2=1 REGISTRAR_JWT_SECRET="$SECRET" "$BUILD_DIR/registrar" worker \
      --data-dir "$WORK/registrar-data" --database-url "${DB_URL%/*}/$database" --redis-url "$url" --access-log false \
      --code-layout node --accept-foreign-tokens true "${weak[@]}" >"$WORK/worker-$who.log" 2>&1 &
    pid=$!
    wait_until 30 "registrar's worker" grep -q '"msg":"worker ready"' "$WORK/worker-$who.log"
  fi
  PIDS+=("$pid")
  local w0 d0 r0 w1 d1 r1
  w0=$(cpu_ms "$pid") d0=$(cpu_ms "$MARIADB_PID") r0=$(cpu_ms "$REDIS_PID")
  out=$(cd "$PEER_RUN" && REDIS_URL="$url" JWT_SECRET="$SECRET" N="$n" node "$script" 2>>"$WORK/produce.log")
  w1=$(cpu_ms "$pid") d1=$(cpu_ms "$MARIADB_PID") r1=$(cpu_ms "$REDIS_PID")
  stop_pid "$pid"
  # jobs/s, then CPU per job in µs of the worker (with registrar's hash workers), MariaDB and Redis.
  echo "$out" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const r=JSON.parse(s);if(r.ok!==r.jobs)console.error(`only ${r.ok} of ${r.jobs} jobs succeeded`);const a=process.argv.slice(1).map(Number),us=(d)=>Math.round(1000*d/r.jobs);console.log(r.jobsPerSecond,us(a[1]-a[0]),us(a[3]-a[2]),us(a[5]-a[4]))})' \
    "$w0" "$w1" "$d0" "$d1" "$r0" "$r1"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A R C
for r in $(seq "$ROUNDS"); do
  wait_quiet "round $r"
  c=$(ceiling)
  R[ceiling]+="$c "
  for producer in $PRODUCERS; do
    for mode in hash nohash; do
      if [[ $producer == fast ]]; then n=$N_FAST; [[ $mode == nohash ]] && n=$N_FAST_NOHASH
      else n=$N; [[ $mode == nohash ]] && n=$N_NOHASH; fi
      for who in node registrar; do
        read -r v cw cd cr < <(run_once "$who" "$mode" "$n" "$producer")
        R[$producer-$who-$mode]+="$v "
        C[$producer-$who-$mode-w]+="$cw " C[$producer-$who-$mode-d]+="$cd " C[$producer-$who-$mode-r]+="$cr "
        echo "round $r: $producer producer: $who $mode: $v jobs/s (ceiling $c hashes/s); CPU per job, µs: worker $cw, MariaDB $cd, Redis $cr" >&2
      done
    done
  done
done

m() { tr ' ' '\n' <<<"${R[$1]}" | grep -v '^$' | median; }
mc() { tr ' ' '\n' <<<"${C[$1]}" | grep -v '^$' | median; }
# jobs/s of each round as a share of the same round's ceiling (the machine's speed drifts between
# rounds more than within one), in percent: "70 95 48".
per_round() { paste -d' ' <(tr ' ' '\n' <<<"${R[$1]}" | grep -v '^$') <(tr ' ' '\n' <<<"${R[ceiling]}" | grep -v '^$') |
  awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), 100 * $1 / $2 }'; }
med_of() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
cpu_row() { # producer mode: "worker / MariaDB / Redis" medians for registrar and node
  local who out=()
  for who in registrar node; do out+=("$(mc "$1-$who-$2-w") / $(mc "$1-$who-$2-d") / $(mc "$1-$who-$2-r")"); done
  echo "| CPU per job, µs: worker / MariaDB / Redis ($2) | ${out[0]} | ${out[1]} | | |"
}
CEIL=$(m ceiling)
mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/jobs-latest.md
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
{
  echo "# Create_User jobs: registrar worker vs node-seed worker.js — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "registrar $(git -C "$REPO" rev-parse --short HEAD), $ROUNDS interleaved rounds, medians; one MariaDB, one Redis; argon2id ceiling (reused memory, per round: ${R[ceiling]}) median $CEIL hashes/s."
  for producer in $PRODUCERS; do
    RH=$(m "$producer-registrar-hash") NH=$(m "$producer-node-hash") RN=$(m "$producer-registrar-nohash") NN=$(m "$producer-node-nohash")
    if [[ $producer == fast ]]; then desc="bench/jobs/produce-fast.js (addBulk, one global listener; N=$N_FAST, N=$N_FAST_NOHASH without hashing)"
    else desc="node-seed produce.js as is (N=$N, N=$N_NOHASH without hashing)"; fi
    echo
    echo "Producer: $desc. Per round: registrar ${R[$producer-registrar-hash]}/ node ${R[$producer-node-hash]}(argon2); registrar ${R[$producer-registrar-nohash]}/ node ${R[$producer-node-nohash]}(no hashing)."
    echo
    echo "| measure | registrar | Node worker | registrar / Node | target |"
    echo "|---|---:|---:|---:|---|"
    echo "| jobs/s, argon2id m=19 MiB t=2 | $RH | $NH | $(ratio "$RH" "$NH") | |"
    PR=$(per_round "$producer-registrar-hash") PN=$(per_round "$producer-node-hash")
    echo "| vs that round's argon2 ceiling: median (per round) | $(med_of "$PR") % ($PR) | $(med_of "$PN") % ($PN) | | ≥ 90 % $(mark "$(awk -v a="$(med_of "$PR")" 'BEGIN { print (a >= 90) }')") |"
    echo "| jobs/s, hashing excluded (queue overhead) | $RN | $NN | $(ratio "$RN" "$NN") | ≥ 5× $(mark "$(awk -v a="$RN" -v b="$NN" 'BEGIN { print (a >= 5 * b) }')") |"
    cpu_row "$producer" hash
    cpu_row "$producer" nohash
  done
} >"$OUT"
cat "$OUT"
