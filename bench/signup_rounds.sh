#!/usr/bin/env bash
# Sign-ups against the argon2id ceiling in paired rounds, for a machine whose speed drifts.
#
#   bench/signup_rounds.sh [ROUNDS]        default 6 rounds; extra `registrar serve` flags via SERVE_ARGS
#   DB=mysql bench/signup_rounds.sh [ROUNDS]   the same on a private MariaDB (scripts/mariadb-private.sh)
#   MODE=login bench/signup_rounds.sh [ROUNDS]  logins instead of sign-ups: one account logged in again
#                                               and again (bench/login.lua; each login verifies its hash)
#
# One registrar (SQLite or MySQL, defaults, Release build in build-release/) serves all rounds. Each round
# measures the ceiling (4 s; one single-threaded hashing process per core, in memory reused for every
# hash as registrar's hash workers do: argon2_ceiling.cpp --memory reused), registrar's sign-ups (wrk -t2 -c16, 8 s, unique users, only 201s
# counted) and the ceiling again (4 s), and prints sign-ups / mean of the two ceilings, with the
# machine's idle share in each phase and the CPU (all processes) per hash and per sign-up. The last
# line is the median ratio over the rounds: compare that with the target, not a single round.
# Each round first waits (up to QUIET_TIMEOUT s) for the machine to use at most QUIET_MAX_BUSY % CPU.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_NAME=signup_rounds
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
ROUNDS=${1:-6}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15} QUIET_TIMEOUT=${QUIET_TIMEOUT:-300}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not $ROUNDS"
BUILD_DIR=$REPO/build-release
command -v wrk >/dev/null || die "wrk is missing: REGISTRAR_WITH_BENCH=1 scripts/install-deps.sh"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building registrar (Release) in $BUILD_DIR"
  "$REPO/scripts/build.sh" Release "$BUILD_DIR" >/dev/null
fi

DB=${DB:-sqlite}
MODE=${MODE:-signup}
[[ $MODE == signup || $MODE == login ]] || die "MODE must be signup or login, not $MODE"
[[ $DB == sqlite || $DB == mysql ]] || die "DB must be sqlite or mysql, not $DB"
WORK=$(mktemp -d /tmp/registrar-rounds.XXXXXX)
REG_PID=
cleanup() {
  [[ -n $REG_PID ]] && stop_pid "$REG_PID"
  [[ $DB == mysql ]] && "$REPO/scripts/mariadb-private.sh" purge "$WORK/mariadb" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
DB_ARGS=()
if [[ $DB == mysql ]]; then
  log "starting a private MariaDB"
  DB_ARGS=(--database-url "$("$REPO/scripts/mariadb-private.sh" start "$WORK/mariadb")")
fi

cpu_ticks() { awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }  # busy idle(+iowait)
ceiling() { # → hashes hashes/s busy-ticks idle-ticks
  local b0 i0 b1 i1 out
  read -r b0 i0 < <(cpu_ticks)
  out=$("$BUILD_DIR/argon2_ceiling" --processes "$(nproc)" --memory reused --seconds 4 | sed -n 's/^RESULT .*hashes=\([0-9]*\) hashes_per_sec=\([0-9.]*\).*/\1 \2/p')
  read -r b1 i1 < <(cpu_ticks)
  echo "$out $((b1 - b0)) $((i1 - i0))"
}

PORT=$(free_port)
# shellcheck disable=SC2086
"$BUILD_DIR/registrar" serve --rate-limits false --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" "${DB_ARGS[@]}" ${SERVE_ARGS:-} >"$WORK/registrar.log" 2>&1 &
REG_PID=$!
wait_until 30 "registrar /readyz" curl -fsS "http://127.0.0.1:$PORT/readyz"

LOGIN_EMAIL="rounds$$@bench.example.com" LOGIN_PASSWORD="Rounds-$$-login-pw"
if [[ $MODE == login ]]; then
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$LOGIN_EMAIL\",\"username\":\"rounds$$\",\"password\":\"$LOGIN_PASSWORD\"}" \
    "http://127.0.0.1:$PORT/auth/register" || die "cannot register the login account"
fi
# One measured run of the mode: → count per_second (sign-ups: 201s; logins: 200s)
measured() { # round
  if [[ $MODE == login ]]; then
    wrk -t2 -c16 -d8s -s "$REPO/bench/login.lua" "http://127.0.0.1:$PORT" -- "$LOGIN_EMAIL" "$LOGIN_PASSWORD" \
      | sed -n 's/^LOGIN ok=\([0-9]*\) .*ok_per_sec=\([0-9.]*\).*/\1 \2/p'
  else
    wrk -t2 -c16 -d8s -s "$REPO/bench/register.lua" "http://127.0.0.1:$PORT" -- "r$$x$1" \
      | sed -n 's/^REGISTER created=\([0-9]*\) .*created_per_sec=\([0-9.]*\).*/\1 \2/p'
  fi
}
WHAT=sign-ups; [[ $MODE == login ]] && WHAT=logins
RATIOS=()
for r in $(seq "$ROUNDS"); do
  wait_quiet "round $r"  # other builds next to the rounds skew every figure
  read -r n1 c1 cb1 ci1 < <(ceiling)
  read -r b0 i0 < <(cpu_ticks)
  read -r n s < <(measured "$r")
  read -r b1 i1 < <(cpu_ticks)
  read -r n2 c2 cb2 ci2 < <(ceiling)
  line=$(awk -v s="$s" -v a="$c1" -v b="$c2" -v db=$((b1 - b0)) -v di=$((i1 - i0)) -v n="$n" \
    -v hb=$((cb1 + cb2)) -v hn=$((n1 + n2)) -v hi=$((ci1 + ci2)) -v r="$r" -v what="$WHAT" 'BEGIN {
      printf "round %d: ceiling %.1f / %.1f hashes/s (idle %.1f %%, %.2f ms CPU per hash); %s %.1f/s (idle %.1f %%, %.2f ms CPU per request); ratio %.1f %%\n",
        r, a, b, 100 * hi / (hb + hi), 1000 / 100 * hb / hn, what, s, 100 * di / (db + di), 1000 / 100 * db / n, 200 * s / (a + b) }')
  echo "$line"
  RATIOS+=("$(echo "$line" | sed -n 's/.*ratio \([0-9.]*\) %.*/\1/p')")
done
printf '%s\n' "${RATIOS[@]}" | sort -n | awk -v what="$WHAT" '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "MEDIAN %s vs ceiling over %d rounds: %.1f %% (min %.1f, max %.1f); target >= 90 %%\n", what, NR, m, v[1], v[NR] }'
