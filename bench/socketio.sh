#!/usr/bin/env bash
# Socket.IO: registrar serve's /socket.io/ next to node-seed's notify.js (../shared/peers/node-seed),
# in interleaved rounds (registrar, node, registrar, node, …), with the stock socket.io-client
# (bench/socketio/client.js, node-seed's copy of the package).
#
#   bench/socketio.sh            default ROUNDS=2, N=10000
#
# Each round, for each server (started fresh): its idle CPU with no connection (IDLE0 s); resident
# memory (VmRSS and PSS of the server process) before and after N websocket connections are up and
# idle (SETTLE s after the last one), divided by N; its CPU time (utime + stime, /proc/PID/stat) over
# IDLE s with the N connections idle (Engine.IO's default ping every 25 s, on both), per 1,000
# connections net of the no-connection idle; then, with the N still connected, notifications
# (below) and CONNECTS handshakes one after the other, each timed from io() to `connect`.
#
# Notifications (issue 13: "from the worker's emit to the client, p50/p99 at 1,000 notifications/s
# with 10,000 connected, target p99 ≤ 10 ms"), at RATE (1000)/s for LAT_SECONDS, to 100 receivers
# in the rooms r0 … r99 (subjects of their tokens), timed in one process with one clock:
# - Node: node-seed's own worker path — a socket.io client emits `notify` {id, success, message} and
#   notify.js forwards it as `notification` to room id (client.js notify).
# - registrar: its workers reach clients through Redis in @socket.io/redis-adapter's format (a
#   `registrar worker` publishes, `serve --redis-url` subscribes). A client cannot make registrar
#   emit, but the stock @socket.io/redis-emitter is exactly a worker's emit: client.js emit
#   publishes `notification` to room r<i> on a private redis-server (started here, loopback, temp
#   dir) that registrar serve --redis-url subscribes to. So registrar runs with --redis-url in every
#   phase (its Bull worker, code store and adapter subscription are part of its idle figures).
# - Node through the same Redis path (NODE_REDIS=1): notify.js unchanged plus @socket.io/redis-adapter
#   (bench/socketio/notify-redis.js), in a third, short server run per round: the N connections, then
#   the same emitter. Its memory and CPU are not measured (notify.js's are, above).
# The ratio registrar / Node is drawn for both: each server's worker path, and the same Redis path.
# Also registrar's product path that emits on request (SIGNUP_RATE 50/s, 0 skips it): a sign-up,
# POST /auth/register → outbox → the socketio consumer → `user.registered` to `admins`, with argon2
# at its smallest cost (REGISTRAR_ALLOW_WEAK_ARGON2=1, so hashing is not the limit), timed from the
# request and from its 201 answer; Node has no such path, so no ratio.
#
# Environment: ROUNDS (2), N (10000), PER_CLIENT (5000 connections per client process; process k
# binds 127.0.0.(2+k), each source address has its own ephemeral ports), SETTLE (10), IDLE0 (10),
# IDLE (50), RATE (1000), SIGNUP_RATE (50), LAT_SECONDS (10), CONNECTS (200), NODE_REDIS (1), BUILD_DIR
# (build-release), SKIP_BUILD=1, SKIP_INSTALL=1, PEER_DIR, QUIET_MAX_BUSY (15) / QUIET_TIMEOUT (30: each round first waits that long at most for a quiet machine).
# `ulimit -n` is raised to the hard limit; N must fit under it (one server process holds them all).
# Prints per-round figures, medians (min–max) and ratios; writes bench/results/socketio-latest.md.
set -Eeuo pipefail
trap 'echo "socketio bench: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_NAME="socketio bench"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
ROUNDS=${ROUNDS:-2} N=${N:-10000} PER_CLIENT=${PER_CLIENT:-5000}
SETTLE=${SETTLE:-10} IDLE0=${IDLE0:-10} IDLE=${IDLE:-50}
RATE=${RATE:-1000} SIGNUP_RATE=${SIGNUP_RATE:-50} LAT_SECONDS=${LAT_SECONDS:-10} CONNECTS=${CONNECTS:-200}
NODE_REDIS=${NODE_REDIS:-1}
PEER_DIR=${PEER_DIR:-$REPO/../shared/peers/node-seed}
PEER_RUN=${XDG_CACHE_HOME:-$HOME/.cache}/registrar-bench/node-seed
BUILD_DIR=${BUILD_DIR:-$REPO/build-release}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15} QUIET_TIMEOUT=${QUIET_TIMEOUT:-30}
SECRET=peer-secret-peer-secret-peer-secret-32
ADMIN_TOKEN=bench-admin-token-bench-admin-token-0123456789
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/registrar-siobench.XXXXXX)
PIDS=() REDIS_PID=
# Only processes that are still this script's children are stopped: a PID of an earlier round may
# belong to someone else by now.
stop_child() { [[ $(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ') == "$$" ]] && stop_pid "$1"; return 0; }
cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_child "${PIDS[i]}"; done
  [[ -n $REDIS_PID ]] && stop_child "$REDIS_PID"
  wait 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then echo "socketio bench: failed (exit $rc); logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for v in ROUNDS N PER_CLIENT; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, not ${!v}"; done
# Every connection is a descriptor in the server (and one in a client process): raise the soft
# limit as far as the hard one goes; without the privilege to raise the hard limit, N must fit.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
((N + CONNECTS + 500 <= NOFILE)) || die "N=$N connections need ulimit -n above $((N + CONNECTS + 500)); the hard limit here is $NOFILE (raise it as root with CAP_SYS_RESOURCE, e.g. prlimit)"
((PER_CLIENT + 100 <= NOFILE)) || die "PER_CLIENT=$PER_CLIENT is above ulimit -n $NOFILE"

[[ -f $PEER_DIR/notify.js ]] || die "the Node peer is not at $PEER_DIR (set PEER_DIR)"
mkdir -p "$PEER_RUN"
cp "$PEER_DIR"/{notify.js,package.json,package-lock.json} "$PEER_RUN/"
if [[ ${SKIP_INSTALL:-0} != 1 ]] && { [[ ! -f $PEER_RUN/node_modules/.package-lock.json ]] || ! cmp -s "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"; }; then
  log "npm ci (node-seed peer) in $PEER_RUN"
  (cd "$PEER_RUN" && { npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 \
    || npm install --no-audit --no-fund --loglevel=error >/dev/null; })
  cp "$PEER_DIR/package-lock.json" "$PEER_RUN/.installed-lock.json"
fi
for pkg in socket.io-client @socket.io/redis-emitter @socket.io/redis-adapter ioredis; do
  [[ -d $PEER_RUN/node_modules/$pkg ]] || die "no $pkg in $PEER_RUN/node_modules (run without SKIP_INSTALL)"
done
export NODE_PATH=$PEER_RUN/node_modules JWT_SECRET=$SECRET
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building registrar (Release) in $BUILD_DIR"
  CMAKE_ARGS="${CMAKE_ARGS:-} -DREGISTRAR_BUILD_TESTS=OFF" \
    nice -n 15 "$REPO/scripts/build.sh" Release "$BUILD_DIR" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log" >&2; die "build failed"; }
fi
[[ -x $BUILD_DIR/registrar ]] || die "no $BUILD_DIR/registrar (build it, or set BUILD_DIR)"
CLIENT=$REPO/bench/socketio/client.js

# A private Redis for the whole run (one server uses it at a time; flushed before each starts).
command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_until 10 "Redis" redis-cli -p "$REDIS_PORT" ping
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0

# ---------------------------------------------------------------- measuring helpers
with_children() { echo "$1"; cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$' || true; }
ticks() { # pids… → utime + stime of them and their live children, in clock ticks
  local p rest t=0
  for p in $(for q in "$@"; do with_children "$q"; done); do
    rest=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2086
    set -- $rest
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
machine() { # → busy ticks, total ticks (all cores)
  local u n s i w q sq st
  read -r _ u n s i w q sq st _ </proc/stat
  echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
kb() { awk -v k="$2:" '$1 == k { print $2 }' "$1"; } # file field → kB
# pid → VmRSS, RssAnon (its anonymous part: heap, stacks), PSS (kB). PSS is kept for the log only:
# the node client processes share the node binary's pages with notify.js, so its PSS falls as they
# start; RssAnon is the server's own memory whoever else runs.
mem() { echo "$(kb "/proc/$1/status" VmRSS) $(kb "/proc/$1/status" RssAnon) $(kb "/proc/$1/smaps_rollup" Pss)"; }
# Phase accounting: others% = the machine's busy time minus ours (server, clients), over all cores.
PHASE_B=0 PHASE_T=0 PHASE_O=0
phase_start() { read -r PHASE_B PHASE_T < <(machine); PHASE_O=$(ticks "$@"); }
phase_others() { # pids… (the same as at the start; a client that exited is added by the caller)
  local b t o extra=${EXTRA_TICKS:-0}
  read -r b t < <(machine)
  o=$(ticks "$@")
  awk -v b="$((b - PHASE_B))" -v o="$((o - PHASE_O + extra))" -v t="$((t - PHASE_T))" \
    'BEGIN { x = b - o; if (x < 0) x = 0; printf "%.0f", 100 * x / t }'
}
# A client run in the foreground whose CPU is counted as ours: its ticks come from `time`.
timed_client() { # outfile command… → sets EXTRA_TICKS
  local out=$1 TIMEFORMAT='%3U %3S'; shift
  { time "$@" >"$out" 2>"$out.err"; } 2>"$out.time"
  EXTRA_TICKS=$(awk -v hz="$HZ" '{ printf "%d", ($1 + $2) * hz }' "$out.time")
}

# ---------------------------------------------------------------- servers
SERVER_PID= URL=
start_server() { # registrar | node | node-redis
  local who=$1 port
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  if [[ $who == registrar ]]; then
    rm -rf "$WORK/data"
    REGISTRAR_JWT_SECRET=$SECRET REGISTRAR_ADMIN_TOKEN=$ADMIN_TOKEN REGISTRAR_ALLOW_WEAK_ARGON2=1 \
      "$BUILD_DIR/registrar" serve --rate-limits false --listen 127.0.0.1:0 --data-dir "$WORK/data" --accept-foreign-tokens true \
      --access-log false --argon2-memory-kib 8 --argon2-iterations 1 --redis-url "$REDIS_URL" >"$WORK/server-$who.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_until 30 "registrar's listening line" grep -q '"msg":"listening"' "$WORK/server-$who.log"
    port=$(grep -m1 '"msg":"listening"' "$WORK/server-$who.log" | grep -o '"port":[0-9]*' | grep -o '[0-9]*$')
  else
    local wrap=()
    [[ $who == node-redis ]] && wrap=("$REPO/bench/socketio/notify-redis.js")
    port=$(free_port)
    (cd "$PEER_RUN" && exec env PORT_MESSAGES_USERS="$port" JWT_SECRET="$SECRET" REDIS_URL="$REDIS_URL" NODE_ENV=production node "${wrap[@]}" notify.js) \
      >"$WORK/server-$who.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_until 30 "notify.js" grep -q 'peer notify listening' "$WORK/server-$who.log"
  fi
  URL=http://127.0.0.1:$port
  wait_until 10 "$who's Socket.IO endpoint" curl -fsS -o /dev/null "$URL/socket.io/?EIO=4&transport=polling"
}

median_of() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "n/a"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f (%.2f–%.2f)", m, v[1], v[NR] }'; }
median_only() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print ""; exit } print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
jget() { node -e 'const o=JSON.parse(require("fs").readFileSync(0,"utf8"));const v=process.argv[1].split(".").reduce((a,k)=>a==null?a:a[k],o);console.log(v==null?"n/a":v)' "$1"; }
declare -A R OTH

one_round() { # round who: registrar | node (every phase) | node-redis (the connections, then the Redis path only)
  local r=$1 who=$2 full=1 m0 m1 i c0 c1 cn0 cn1 clients=() n k first ready ok=0 fail=0 t0 conn_s
  [[ $who == node-redis ]] && full=0
  wait_quiet "round $r $who"
  start_server "$who"
  if ((full)); then
    sleep 2
    # Idle with no connection (timers of the runtime, the service's own loops).
    phase_start "$SERVER_PID" "$REDIS_PID"; cn0=$(ticks "$SERVER_PID"); sleep "$IDLE0"; cn1=$(ticks "$SERVER_PID")
    OTH[$who-idle0]+="$(phase_others "$SERVER_PID" "$REDIS_PID")% "
    m0=$(mem "$SERVER_PID")
  fi
  # N connections from PER_CLIENT-sized client processes, each on its own source address.
  phase_start "$SERVER_PID" "$REDIS_PID"
  t0=$(date +%s.%N)
  for ((k = 0, first = 0; first < N; k++, first += PER_CLIENT)); do
    n=$((N - first < PER_CLIENT ? N - first : PER_CLIENT))
    node "$CLIENT" hold "$URL" "$n" "$first" "127.0.0.$((2 + k))" >"$WORK/hold-$k.out" 2>"$WORK/hold-$k.err" &
    clients+=($!); PIDS+=($!)
  done
  for ((i = 0; i < ${#clients[@]}; i++)); do
    wait_until 300 "client $i's connections" grep -q '^READY ' "$WORK/hold-$i.out"
    ready=$(sed -n 's/^READY //p' "$WORK/hold-$i.out")
    ok=$((ok + $(jget ok <<<"$ready"))) fail=$((fail + $(jget fail <<<"$ready")))
  done
  conn_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  OTH[$who-connect]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
  ((fail == 0)) || echo "socketio bench: round $r $who: $fail of $N connections failed ($(head -3 "$WORK"/hold-*.err | tr '\n' ' '))" >&2
  sleep "$SETTLE"
  if ((full)); then
    m1=$(mem "$SERVER_PID")
    # Idle with the N connections.
    phase_start "$SERVER_PID" "$REDIS_PID" "${clients[@]}"; c0=$(ticks "$SERVER_PID"); sleep "$IDLE"; c1=$(ticks "$SERVER_PID")
    OTH[$who-idle]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
  fi
  # Notifications with the N connected: node-seed's own `notify` path (node), a worker's emit
  # through Redis (registrar, node-redis).
  phase_start "$SERVER_PID" "$REDIS_PID" "${clients[@]}"
  if [[ $who == node ]]; then
    timed_client "$WORK/notify-$r-$who.json" node "$CLIENT" notify "$URL" "$RATE" "$LAT_SECONDS"
    OTH[$who-notify]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
  else
    timed_client "$WORK/emit-$r-$who.json" node "$CLIENT" emit "$URL" "$REDIS_URL" "$RATE" "$LAT_SECONDS"
    OTH[$who-emit]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
  fi
  EXTRA_TICKS=0
  if [[ $who == registrar ]] && ((SIGNUP_RATE > 0)); then
    phase_start "$SERVER_PID" "$REDIS_PID" "${clients[@]}"
    ADMIN_TOKEN=$ADMIN_TOKEN timed_client "$WORK/signup-$r-$who.json" node "$CLIENT" signup "$URL" "$SIGNUP_RATE" "$LAT_SECONDS"
    OTH[$who-signup]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
    EXTRA_TICKS=0
  fi
  if ((full)); then
    phase_start "$SERVER_PID" "$REDIS_PID" "${clients[@]}"
    timed_client "$WORK/conn-$r-$who.json" node "$CLIENT" connect "$URL" "$CONNECTS"
    OTH[$who-handshake]+="$(phase_others "$SERVER_PID" "$REDIS_PID" "${clients[@]}")% "
    EXTRA_TICKS=0
  fi
  # Were the N still connected at the end?
  local dropped=0 d
  for ((i = 0; i < ${#clients[@]}; i++)); do
    kill -TERM "${clients[i]}" 2>/dev/null || true
    wait "${clients[i]}" 2>/dev/null || true
    d=$(sed -n 's/^DONE //p' "$WORK/hold-$i.out" | jget disconnects 2>/dev/null || true)
    [[ $d =~ ^[0-9]+$ ]] || { echo "socketio bench: round $r $who: client $i did not report its disconnects" >&2; d=0; }
    dropped=$((dropped + d))
  done
  kill -0 "$SERVER_PID" 2>/dev/null || die "$who died during round $r (log kept in $WORK)"
  stop_pid "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  PIDS=()

  # Figures of the round.
  local lat line="round $r $who: $ok of $N up in ${conn_s}s, $dropped dropped"
  R[$who-conn_s]+="$conn_s " R[$who-ok]+="$ok " R[$who-dropped]+="$dropped "
  if [[ $who == node ]]; then
    lat=$(cat "$WORK/notify-$r-$who.json")
    R[$who-notify50]+="$(jget latencyMs.p50 <<<"$lat") " R[$who-notify99]+="$(jget latencyMs.p99 <<<"$lat") "
    R[$who-notify_n]+="$(jget received <<<"$lat")/$(jget sent <<<"$lat") "
    line+="; notify → notification $lat"
  else
    lat=$(cat "$WORK/emit-$r-$who.json")
    R[$who-emit50]+="$(jget latencyMs.p50 <<<"$lat") " R[$who-emit99]+="$(jget latencyMs.p99 <<<"$lat") "
    R[$who-emit_n]+="$(jget received <<<"$lat")/$(jget sent <<<"$lat") "
    line+="; Redis emit → notification $lat"
  fi
  if [[ $who == registrar ]] && ((SIGNUP_RATE > 0)); then
    lat=$(cat "$WORK/signup-$r-$who.json")
    R[$who-signup50]+="$(jget latencyMs.p50 <<<"$lat") " R[$who-signup99]+="$(jget latencyMs.p99 <<<"$lat") "
    R[$who-signup_n]+="$(jget received <<<"$lat")/$(jget sent <<<"$lat") "
    R[$who-ans50]+="$(jget answerMs.p50 <<<"$lat") " R[$who-ans99]+="$(jget answerMs.p99 <<<"$lat") "
    R[$who-a2n50]+="$(jget answerToNotificationMs.p50 <<<"$lat") " R[$who-a2n99]+="$(jget answerToNotificationMs.p99 <<<"$lat") "
    line+="; sign-ups $lat"
  fi
  if ((full)); then
    local rss0 anon0 pss0 rss1 anon1 pss1 conn
    read -r rss0 anon0 pss0 <<<"$m0"; read -r rss1 anon1 pss1 <<<"$m1"
    local per_rss per_anon cpu0 cpu cpu_k
    per_rss=$(awk -v a="$rss0" -v b="$rss1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }')
    per_anon=$(awk -v a="$anon0" -v b="$anon1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }')
    # CPU, ms per second of wall time: without connections, with N; per 1,000 connections net of the first.
    cpu0=$(awk -v t="$((cn1 - cn0))" -v hz="$HZ" -v s="$IDLE0" 'BEGIN { printf "%.2f", 1000 * t / hz / s }')
    cpu=$(awk -v t="$((c1 - c0))" -v hz="$HZ" -v s="$IDLE" 'BEGIN { printf "%.2f", 1000 * t / hz / s }')
    cpu_k=$(awk -v a="$cpu0" -v b="$cpu" -v n="$N" 'BEGIN { printf "%.3f", (b - a) / (n / 1000) }')
    conn=$(cat "$WORK/conn-$r-$who.json")
    R[$who-rss0]+="$((rss0 / 1024)) " R[$who-rss1]+="$((rss1 / 1024)) " R[$who-anon0]+="$((anon0 / 1024)) " R[$who-anon1]+="$((anon1 / 1024)) "
    R[$who-per_rss]+="$per_rss " R[$who-per_anon]+="$per_anon " R[$who-cpu0]+="$cpu0 " R[$who-cpu]+="$cpu " R[$who-cpu_k]+="$cpu_k "
    R[$who-hs50]+="$(jget latencyMs.p50 <<<"$conn") " R[$who-hs99]+="$(jget latencyMs.p99 <<<"$conn") "
    line+="; RSS $((rss0 / 1024)) → $((rss1 / 1024)) MB, RssAnon $((anon0 / 1024)) → $((anon1 / 1024)) MB (PSS $((pss0 / 1024)) → $((pss1 / 1024)) MB): $per_rss KB RSS / $per_anon KB RssAnon per connection; CPU idle ${cpu0} ms/s without, ${cpu} ms/s with $N connections → $cpu_k ms/s per 1,000; handshakes $conn"
  fi
  echo "$line" >&2
  echo "round $r $who: others' CPU: $(others_of "$who" last)" >&2
}
PHASES=(idle0 connect idle notify emit signup handshake)
others_of() { # who [last]: the other processes' share per phase, every round (or the last round's)
  local p v out=
  for p in "${PHASES[@]}"; do
    v=${OTH[$1-$p]:-}
    [[ -n $v ]] || continue
    [[ ${2:-} == last ]] && { v=${v% }; v=${v##* }; }
    out+="$p ${v% }, "
  done
  echo "${out%, }"
}

log "Socket.IO: registrar $(git -C "$REPO" rev-parse --short HEAD) vs node-seed notify.js; $ROUNDS rounds, N=$N, ulimit -n $NOFILE, Redis on 127.0.0.1:$REDIS_PORT"
WHO=(registrar node)
((NODE_REDIS)) && WHO+=(node-redis)
for r in $(seq "$ROUNDS"); do
  for who in "${WHO[@]}"; do one_round "$r" "$who"; done
done

# ---------------------------------------------------------------- the table
M() { median_of <<<"${R[$1]:-}"; }
m() { median_only <<<"${R[$1]:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }
L() { local v=${R[$1]:-}; echo "${v% }"; } # the per-round list, without its trailing space
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "" && a + 0 <= b + 0) }'; }
inv() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a + 0 == 0 || a >= b) print ""; else printf " (1/%.1f)", b / a }'; }
mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/socketio-latest.md
{
  echo "# Socket.IO: registrar serve vs node-seed notify.js — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "registrar $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+changes') ($(basename "$BUILD_DIR")); Node $(node --version), socket.io $(node -p 'require("socket.io/package.json").version'); $ROUNDS interleaved rounds (${WHO[*]}, …), medians (min–max). N=$N websocket connections from $(((N + PER_CLIENT - 1) / PER_CLIENT)) client processes (127.0.0.2…), settled ${SETTLE}s; idle CPU over ${IDLE0}s without and ${IDLE}s with them (pings every 25 s). registrar serve runs with \`--redis-url\` to a private redis-server ($(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-)) in every phase; notifications go to 100 receivers (rooms r0 … r99) among the N, timed in the sending process."
  echo
  echo "| measure | registrar | Node notify.js | registrar / Node | target |"
  echo "|---|---:|---:|---:|---|"
  echo "| connections up / N (per round) | ${R[registrar-ok]}| ${R[node-ok]}| | |"
  echo "| dropped while held (per round) | ${R[registrar-dropped]}| ${R[node-dropped]}| | 0 |"
  echo "| seconds to open N (INFLIGHT 200 per client) | $(M registrar-conn_s) | $(M node-conn_s) | | |"
  echo "| server RSS idle → with N, MB | $(m registrar-rss0) → $(m registrar-rss1) | $(m node-rss0) → $(m node-rss1) | | |"
  echo "| server RssAnon idle → with N, MB | $(m registrar-anon0) → $(m registrar-anon1) | $(m node-anon0) → $(m node-anon1) | | |"
  echo "| **RSS per connection, KB** | $(M registrar-per_rss) | $(M node-per_rss) | $(ratio "$(m registrar-per_rss)" "$(m node-per_rss)")$(inv "$(m registrar-per_rss)" "$(m node-per_rss)") | ≤ 1/6 $(mark "$(awk -v a="$(m registrar-per_rss)" -v b="$(m node-per_rss)" 'BEGIN { print (b > 0 && a * 6 <= b) }')") |"
  echo "| RssAnon per connection, KB | $(M registrar-per_anon) | $(M node-per_anon) | $(ratio "$(m registrar-per_anon)" "$(m node-per_anon)") | |"
  echo "| server CPU idle without connections, ms per s | $(M registrar-cpu0) | $(M node-cpu0) | | |"
  echo "| server CPU idle with N, ms per s | $(M registrar-cpu) | $(M node-cpu) | $(ratio "$(m registrar-cpu)" "$(m node-cpu)") | |"
  echo "| **CPU per 1,000 idle connections, ms per s** (net of the no-connection idle) | $(M registrar-cpu_k) | $(M node-cpu_k) | $(ratio "$(m registrar-cpu_k)" "$(m node-cpu_k)") | |"
  echo "| handshake io() → connect, p50 / p99 ms ($CONNECTS, one at a time, N connected) | $(M registrar-hs50) / $(M registrar-hs99) | $(M node-hs50) / $(M node-hs99) | $(ratio "$(m registrar-hs50)" "$(m node-hs50)") / $(ratio "$(m registrar-hs99)" "$(m node-hs99)") | |"
  p99ok() { mark "$(le "$(m "$1")" 10)"; }
  echo "| **a worker's emit → \`notification\` at $RATE/s with N connected, p50 / p99 ms**: registrar through Redis (@socket.io/redis-emitter → \`serve --redis-url\`), Node by its own path (a socket.io client's \`notify\` → notify.js) (received/sent per round: registrar $(L registrar-emit_n), Node $(L node-notify_n)) | $(M registrar-emit50) / $(M registrar-emit99) | $(M node-notify50) / $(M node-notify99) | $(ratio "$(m registrar-emit50)" "$(m node-notify50)") / $(ratio "$(m registrar-emit99)" "$(m node-notify99)") | p99 ≤ 10 ms: registrar $(p99ok registrar-emit99), Node $(p99ok node-notify99) |"
  if ((NODE_REDIS)); then
    echo "| the same Redis path for both, p50 / p99 ms: Node is notify.js + @socket.io/redis-adapter (bench/socketio/notify-redis.js, a short run of its own per round: $(L node-redis-ok) up, $(L node-redis-dropped) dropped; received/sent $(L node-redis-emit_n)) | $(M registrar-emit50) / $(M registrar-emit99) | $(M node-redis-emit50) / $(M node-redis-emit99) | $(ratio "$(m registrar-emit50)" "$(m node-redis-emit50)") / $(ratio "$(m registrar-emit99)" "$(m node-redis-emit99)") | p99 ≤ 10 ms: Node $(p99ok node-redis-emit99) |"
  fi
  if ((SIGNUP_RATE > 0)); then
    echo "| registrar: POST /auth/register sent → \`user.registered\` at \`admins\`, $SIGNUP_RATE/s, p50 / p99 ms (received/sent: $(L registrar-signup_n)) | $(M registrar-signup50) / $(M registrar-signup99) | | | |"
    echo "| registrar: its 201 answer → \`user.registered\` (outbox, relay pass, consumer, socket), p50 / p99 ms | $(M registrar-a2n50) / $(M registrar-a2n99) | | | |"
    echo "| registrar: the sign-up's own answer time, p50 / p99 ms | $(M registrar-ans50) / $(M registrar-ans99) | | | |"
  fi
  echo
  echo "Share of the machine's CPU used by other processes (not the servers, Redis or the clients), per phase, every round:"
  for who in "${WHO[@]}"; do echo "- $who: $(others_of "$who")"; done
  echo
  echo "Notification latency per round, p50 / p99 ms: registrar (Redis) $(L registrar-emit50) / $(L registrar-emit99); Node (notify) $(L node-notify50) / $(L node-notify99)$( ((NODE_REDIS)) && echo "; Node (Redis) $(L node-redis-emit50) / $(L node-redis-emit99)")."
  echo
  echo "Per round: RSS per connection registrar ${R[registrar-per_rss]}, node ${R[node-per_rss]}; CPU per 1,000 registrar ${R[registrar-cpu_k]}, node ${R[node-cpu_k]}."
} >"$OUT"
cat "$OUT"
echo >&2
echo "written to ${OUT#"$REPO"/}" >&2
