#!/usr/bin/env bash
# The RabbitMQ event path, measured (issue 3):
#
#   bench/relay.sh          install (scripts/install-deps.sh), build Release, run, print the table
#
# ROUNDS paired rounds (the ratio is taken within each round; medians and ranges reported), each:
# 1. bare publisher ceiling: the Node peer's publish-bench.js (amqplib, persistent messages,
#    publisher confirms in windows of 1000, one durable queue) against a private broker;
# 2. relay throughput: RELAY_EVENTS rows put straight into a fresh SQLite outbox (sqlite3, no
#    argon2 cost), then `registrar relay` on it, timed until no row is unsent → events/s, and its
#    share of that round's bare publisher (target ≥ 85 %). Same broker, one durable queue each;
# 2b. the built-in consumers over RabbitMQ (CONSUMERS: audit, welcome, email-verification): the
#    relay's messages copied unchanged to each one's queue (registrar.<name>), then each
#    `registrar consume NAME` timed, one after the other, until it has handled every one (audit:
#    lines in its audit log; welcome and email-verification: messages in messages.jsonl, the
#    development mail sender; email-verification with its code store on a private Redis), target:
#    ≥ the relay's events/s; with a check that each event had its effect exactly once;
# then, once:
# 3. register → consumer latency: `registrar serve --amqp-url … --consumers audit` at the production
#    argon2 cost; its sign-up ceiling from a short wrk burst, then sign-ups driven at half of it by
#    a fixed-rate (open-loop) Node client for LATENCY_SECONDS; per event latency = the audit line's
#    receivedAt − occurredAt → p50 / p99 (target p99 ≤ 50 ms; the NestJS sign-up service's timeline shows 350 ms).
# Prints a markdown table and writes it to bench/results/relay-latest.md.
#
# Environment: RELAY_EVENTS (50000), ROUNDS (3), CONSUMERS ("audit welcome email-verification"), BURST_SECONDS (8),
# LATENCY_SECONDS (20), BUILD_DIR (<repo>/build-release), PEER_DIR (<repo>/../shared/peers/node-seed), SKIP_INSTALL=1, SKIP_BUILD=1,
# QUIET_MAX_BUSY (15 %) / QUIET_TIMEOUT (120 s): each phase first waits for other processes to
# settle (the machine is shared); the CPU use and load average seen are in the report.
# Every process it starts is stopped on exit, whatever happens (trap).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PEER_DIR=${PEER_DIR:-$REPO/../shared/peers/node-seed}
RELAY_EVENTS=${RELAY_EVENTS:-50000}
ROUNDS=${ROUNDS:-3}
read -r -a CONSUMERS <<<"${CONSUMERS:-audit welcome email-verification}"
BURST_SECONDS=${BURST_SECONDS:-8}
LATENCY_SECONDS=${LATENCY_SECONDS:-20}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-120}
BUILD_DIR=${BUILD_DIR:-$REPO/build-release}
BIN=$BUILD_DIR/registrar
RESULTS=$REPO/bench/results
RMQ=$REPO/scripts/rabbitmq-private.sh
WORK=$(mktemp -d /tmp/registrar-relaybench.XXXXXX)
# The broker's directory: directly under /tmp (the rabbitmq user must traverse its parents).
BROKER_DIR=/tmp/registrar-relaybench-rmq.$$.$RANDOM
BROKER_PORT=
PIDS=()

BENCH_NAME="relay bench"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [[ -n $BROKER_PORT && -d $BROKER_DIR ]]; then
    "$RMQ" stop "$BROKER_DIR" "$BROKER_PORT" >/dev/null 2>&1 || "$RMQ" kill "$BROKER_DIR" "$BROKER_PORT" >/dev/null 2>&1 || true
  fi
  wait 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then
    echo "relay bench: failed (exit $rc); logs kept in $WORK (broker: $BROKER_DIR)" >&2
  else
    rm -rf "$WORK" "$BROKER_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

CONDITIONS=()
phase_start() { # phase: waits for a quiet machine and records what it saw
  wait_quiet "$1"
  CONDITIONS+=("$1: before ${QUIET_BUSY}% CPU busy, load $(loadavg)")
}
phase_done() { CONDITIONS[-1]+="; after: load $(loadavg)"; }

# ---------------------------------------------------------------- 1. install and build
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  log "dependencies (scripts/install-deps.sh, with the benchmark tools)"
  REGISTRAR_WITH_BENCH=1 "$REPO/scripts/install-deps.sh" >&2
fi
for tool in wrk sqlite3 node; do command -v "$tool" >/dev/null || die "$tool is missing (run without SKIP_INSTALL)"; done
[[ -f $PEER_DIR/publish-bench.js ]] || die "the Node peer's publish-bench.js is not at $PEER_DIR (set PEER_DIR)"
# The peer's publisher runs unmodified from its (read-only) directory. Its one dependency, amqplib,
# comes from the peer's own node_modules when installed, else from tests/node (installed from that
# lockfile by install-deps.sh) provided the version is the one the peer's lockfile pins.
PEER_AMQPLIB=$(node -e 'const l=require(process.argv[1]);console.log(l.packages["node_modules/amqplib"].version)' "$PEER_DIR/package-lock.json")
if [[ -d $PEER_DIR/node_modules/amqplib ]]; then
  PEER_NODE_PATH=
else
  PEER_NODE_PATH=$REPO/tests/node/node_modules
  HAVE_AMQPLIB=$(node -e 'console.log(require(process.argv[1]).version)' "$PEER_NODE_PATH/amqplib/package.json" 2>/dev/null || echo none)
  [[ $HAVE_AMQPLIB == "$PEER_AMQPLIB" ]] || die "amqplib $PEER_AMQPLIB (the peer's lockfile) is not installed: tests/node has $HAVE_AMQPLIB (run scripts/install-deps.sh)"
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building registrar (Release) in $BUILD_DIR"
  "$REPO/scripts/build.sh" Release "$BUILD_DIR" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log" >&2; die "build failed"; }
fi
[[ -x $BIN ]] || die "missing $BIN"

# ---------------------------------------------------------------- 2. the broker
BROKER_PORT=$(free_port)
log "starting a private RabbitMQ on 127.0.0.1:$BROKER_PORT ($BROKER_DIR)"
"$RMQ" start "$BROKER_DIR" "$BROKER_PORT" >&2
AMQP_URL=amqp://guest:guest@127.0.0.1:$BROKER_PORT/
RABBIT_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?')

amqp_node() { # runs a Node snippet with amqplib (tests/node) and AMQP_URL
  NODE_PATH=$REPO/tests/node/node_modules AMQP_URL=$AMQP_URL node -e "$1"
}
delete_queue() {
  amqp_node "const a=require('amqplib');(async()=>{const c=await a.connect(process.env.AMQP_URL);const ch=await c.createChannel();await ch.deleteQueue('$1');await c.close()})().catch(e=>{console.error(e.message);process.exit(1)})"
}

# ---------------------------------------------------------------- 3. paired rounds
# Each round: the bare publisher, then the relay on a fresh outbox (same broker, one durable queue
# each), then the audit consumer catching up with the relay's messages. The ratio is taken within a
# round (the machine is shared: its speed drifts between minutes more than between the two runs).
cat >"$WORK/shovel.js" <<'JS'
// Moves every message of queue argv[2] into each of the queues argv[3…] (declared durable, as the
// consumers declare them), properties and body unchanged: the relay's messages, for the consumers
// to catch up.
const a = require('amqplib');
(async () => {
  const [from, ...to] = process.argv.slice(2);
  const c = await a.connect(process.env.AMQP_URL);
  const ch = await c.createConfirmChannel();
  for (const q of to) await ch.assertQueue(q, { durable: true });
  const total = (await ch.checkQueue(from)).messageCount;
  await ch.prefetch(1000);
  let moved = 0;
  await new Promise((resolve, reject) => {
    if (total === 0) return resolve();
    ch.consume(from, (m) => {
      let left = to.length;
      for (const q of to)
        ch.publish('', q, m.content, m.properties, (err) => {
          if (err) return reject(err);
          if (--left > 0) return;
          ch.ack(m);
          if (++moved === total) resolve();
        });
    }).catch(reject);
  });
  await ch.waitForConfirms();
  await c.close();
  console.log(moved);
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
pending() { sqlite3 -cmd '.timeout 5000' "$1" 'SELECT count(*) FROM outbox WHERE sent_at IS NULL'; }
queue_count() {
  amqp_node "const a=require('amqplib');(async()=>{const c=await a.connect(process.env.AMQP_URL);const ch=await c.createChannel();console.log((await ch.checkQueue('$1')).messageCount);await c.close()})()"
}
# Waits until "$@" prints 0 or less (true: "$1 pending"), dies when nothing changed for 30 s; sets WAIT_MS.
wait_drained() { # label pid command…
  local label=$1 pid=$2 start last_progress last p t
  shift 2
  start=$(now_ms) last_progress=$start last=
  while :; do
    p=$("$@")
    t=$(now_ms)
    ((p <= 0)) && break
    kill -0 "$pid" 2>/dev/null || die "$label exited (log in $WORK)"
    if [[ $p != "$last" ]]; then last=$p last_progress=$t; fi
    ((t - last_progress > 30000)) && die "$label made no progress for 30 s ($p left)"
    sleep 0.1
  done
  WAIT_MS=$((t - start))
}
# The audit log and messages.jsonl rotate by size (audit.jsonl.1, …: 64 MiB each), so their lines
# are in the file and its rotated ones: with 200,000 events they no longer fit in one.
lines_missing() { # file expected
  local n=0 f
  for f in "$1" "$1".*; do [[ -f $f ]] && n=$((n + $(wc -l <"$f"))); done
  echo $(($2 - n))
}
# What each consumer writes, one line per event handled (in its data dir).
consumer_file() {
  case $1 in
    audit) echo audit.jsonl ;;
    *) echo messages.jsonl ;;
  esac
}
# JavaScript that reads every line of the log named by argv[1] and its rotated files into `ls`.
READ_LINES_JS='const fs=require("fs"),path=require("path"),f=process.argv[1],dir=path.dirname(f),base=path.basename(f);
  const ls=fs.readdirSync(dir).filter((n)=>n===base||n.startsWith(base+".")).flatMap((n)=>fs.readFileSync(path.join(dir,n),"utf8").split("\n").filter(Boolean));'


# The email-verification consumer keeps its codes where the API checks them: a private Redis.
REDIS_URL=
if [[ " ${CONSUMERS[*]} " == *" email-verification "* ]]; then
  REDIS_PORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  wait_until 10 "Redis" redis-cli -p "$REDIS_PORT" ping
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
fi

declare -A CONSUMER_RATES=() CONSUMER_STEADIES=()
BARE_RATES=() RELAY_RATES=() RELAY_STEADIES=() RATIOS=() CHECKS=()
for ((round = 1; round <= ROUNDS; round++)); do
  phase_start "round $round: bare publisher"
  log "round $round: bare publisher (node-seed publish-bench.js, amqplib $PEER_AMQPLIB)"
  (cd "$PEER_DIR" && NODE_PATH=$PEER_NODE_PATH AMQP_URL=$AMQP_URL node publish-bench.js) | tee "$WORK/bare-$round.json" >&2
  phase_done
  BARE=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).perSecond)' "$WORK/bare-$round.json")
  BARE_MESSAGES=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).messages)' "$WORK/bare-$round.json")
  BARE_RATES+=("$BARE")

  RELAY_DATA=$WORK/relay-data-$round
  mkdir -p "$RELAY_DATA"
  "$BIN" migrate --data-dir "$RELAY_DATA" >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrate failed"; }
  DB=$RELAY_DATA/registrar.db
  log "round $round: pre-filling the outbox with $RELAY_EVENTS user.registered events (sqlite3)"
  sqlite3 "$DB" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RELAY_EVENTS)
INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at)
SELECT printf('0193a000-0000-7000-8$(printf %03d "$round")-%012d', i),
       'user.registered',
       printf('0193a000-0000-7000-9000-%012d', i),
       json_object('event', 'user.registered', 'pattern', 'user.registered',
                   'data', json_object('id', printf('0193a000-0000-7000-9000-%012d', i),
                                       'email', printf('bench.user%d@example.com', i),
                                       'username', printf('bench_user%d', i),
                                       'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                   'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM n;
SQL
  [[ $(pending "$DB") == "$RELAY_EVENTS" ]] || die "the outbox does not hold $RELAY_EVENTS pending rows"
  PAYLOAD_BYTES=$(sqlite3 "$DB" 'SELECT avg(length(payload)) FROM outbox' | cut -d. -f1)

  phase_start "round $round: relay"
  log "round $round: registrar relay: draining $RELAY_EVENTS events"
  "$BIN" relay --data-dir "$RELAY_DATA" --amqp-url "$AMQP_URL" >"$WORK/relay-$round.log" 2>&1 &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  wait_drained "the relay" "$RELAY_PID" pending "$DB"
  RELAY_MS=$WAIT_MS
  phase_done
  stop_pid "$RELAY_PID"
  RELAY_RATE=$(awk -v n="$RELAY_EVENTS" -v ms="$RELAY_MS" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
  # Steady state, from the outbox's own sent_at stamps: events after the first batch's stamp, over
  # the span from it to the last stamp (excludes the process start and first connect).
  STEADY=$(sqlite3 "$DB" "SELECT count(*) FILTER (WHERE sent_at > (SELECT min(sent_at) FROM outbox)),
    (julianday(max(sent_at)) - julianday(min(sent_at))) * 86400.0 FROM outbox" | tr '|' ' ')
  RELAY_STEADIES+=("$(awk -v s="$STEADY" 'BEGIN { split(s, a, " "); if (a[2] > 0) printf "%.0f", a[1] / a[2]; else print "n/a" }')")
  RELAY_RATES+=("$RELAY_RATE")
  RATIOS+=("$(awk -v a="$RELAY_RATE" -v b="$BARE" 'BEGIN { printf "%.1f", 100 * a / b }')")
  SENT_LINES=$(grep -c '"User registration sent to RabbitMQ: ' "$WORK/relay-$round.log" || true)
  QUEUED=$(queue_count topic_validateJSON)
  log "round $round: relay $RELAY_RATE events/s = ${RATIOS[-1]} % of the bare $BARE/s; $QUEUED in the queue"

  # The consumers, over RabbitMQ, catching up with the round's messages (as after an outage).
  node_moved=$(NODE_PATH=$REPO/tests/node/node_modules AMQP_URL=$AMQP_URL node "$WORK/shovel.js" topic_validateJSON \
    "${CONSUMERS[@]/#/registrar.}")
  delete_queue topic_validateJSON
  check="round $round: rows marked sent $RELAY_EVENTS / in the queue $QUEUED / \"sent\" log lines $SENT_LINES"
  for consumer in "${CONSUMERS[@]}"; do
    C_DATA=$WORK/$consumer-data-$round
    C_FILE=$C_DATA/$(consumer_file "$consumer")
    mkdir -p "$C_DATA"
    extra=()
    [[ $consumer == email-verification ]] && { redis-cli -p "$REDIS_PORT" flushdb >/dev/null; extra=(--redis-url "$REDIS_URL"); }
    phase_start "round $round: $consumer consumer"
    log "round $round: registrar consume $consumer: $node_moved messages waiting"
    "$BIN" consume "$consumer" --data-dir "$C_DATA" --amqp-url "$AMQP_URL" "${extra[@]}" >"$WORK/$consumer-$round.log" 2>&1 &
    C_PID=$!
    PIDS+=("$C_PID")
    wait_drained "the $consumer consumer" "$C_PID" lines_missing "$C_FILE" "$node_moved"
    C_MS=$WAIT_MS
    phase_done
    stop_pid "$C_PID"
    CONSUMER_RATES[$consumer]+="$(awk -v n="$node_moved" -v ms="$C_MS" 'BEGIN { printf "%.0f", n / (ms / 1000) }') "
    if [[ $consumer == audit ]]; then
      # Steady: from the first to the last line's receivedAt. Exactly once: distinct event ids.
      CONSUMER_STEADIES[$consumer]+="$(node -e "$READ_LINES_JS"'
        const ts=ls.map((l)=>Date.parse(JSON.parse(l).receivedAt));
        const t0=ts.reduce((a,b)=>Math.min(a,b)), t1=ts.reduce((a,b)=>Math.max(a,b)), after=ts.filter((t)=>t>t0).length;
        console.log(t1>t0?Math.round(after/((t1-t0)/1000)):"n/a")' "$C_FILE") "
      check+=" / audit lines (distinct/all) $(node -e "$READ_LINES_JS"'console.log(new Set(ls.map((l)=>JSON.parse(l).eventId)).size+"/"+ls.length)' "$C_FILE")"
    else
      # Steady: from the first to the last spool file's mtime. Exactly once: one spool file per
      # message, one message per address (the lines' "to").
      CONSUMER_STEADIES[$consumer]+="$(node -e '
        const fs=require("fs"),path=require("path"),d=process.argv[1];
        const ts=fs.readdirSync(d).map((n)=>fs.statSync(path.join(d,n)).mtimeMs);
        const t0=Math.min(...ts), t1=Math.max(...ts), after=ts.filter((t)=>t>t0).length;
        console.log(t1>t0?Math.round(after/((t1-t0)/1000)):"n/a")' "$C_DATA/spool/mail") "
      check+=" / $consumer messages (distinct addresses/lines/spool files) $(node -e "$READ_LINES_JS"'
        console.log(new Set(ls.map((l)=>JSON.parse(l).to)).size+"/"+ls.length+"/"+require("fs").readdirSync(process.argv[2]).length)' \
        "$C_FILE" "$C_DATA/spool/mail")"
    fi
    log "round $round: $consumer consumer $(echo "${CONSUMER_RATES[$consumer]}" | awk '{ print $NF }') events/s"
    delete_queue "registrar.$consumer"
  done
  CHECKS+=("$check")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { printf '%s\n' "$@" | sort -n | sed -n '1p;$p' | paste -sd' ' - | awk '{ print $1 "–" $2 }'; }
BARE_MED=$(median "${BARE_RATES[@]}") RELAY_MED=$(median "${RELAY_RATES[@]}") RATIO_MED=$(median "${RATIOS[@]}")
declare -A CONSUMER_MEDS=()
for consumer in "${CONSUMERS[@]}"; do
  # shellcheck disable=SC2086 # the rates are a space-separated list
  CONSUMER_MEDS[$consumer]=$(median ${CONSUMER_RATES[$consumer]})
done

# ---------------------------------------------------------------- 5. register → consumer latency
REG_DATA=$WORK/serve-data
mkdir -p "$REG_DATA"
log "registrar serve (production argon2 cost) with --amqp-url and --consumers audit"
"$BIN" serve --rate-limits false --listen 127.0.0.1:0 --data-dir "$REG_DATA" --amqp-url "$AMQP_URL" --consumers audit >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
SERVE_PID=$!
wait_until 30 "serve's listening line" grep -q '"msg":"listening"' "$WORK/serve.log"
PORT=$(grep -m1 '"msg":"listening"' "$WORK/serve.log" | sed -n 's/.*"port":\([0-9]*\).*/\1/p')
[[ -n $PORT ]] || die "no port in serve's listening line"
wait_until 30 "the audit consumer" grep -q '"msg":"consuming from RabbitMQ"' "$WORK/serve.log"
users() { sqlite3 -cmd '.timeout 5000' "$REG_DATA/registrar.db" 'SELECT count(*) FROM users'; }
audit_lines() { [[ -f $REG_DATA/audit.jsonl ]] && wc -l <"$REG_DATA/audit.jsonl" || echo 0; }
caught_up() { [[ $(audit_lines) -ge $(users) ]]; }

phase_start "sign-up ceiling"
log "sign-up ceiling: wrk -t2 -c16 -d${BURST_SECONDS}s -s bench/register.lua"
wrk -t2 -c16 -d"${BURST_SECONDS}s" -s "$REPO/bench/register.lua" "http://127.0.0.1:$PORT" -- "rl$(date +%s | tail -c 6)" | tee "$WORK/burst.txt" >&2
phase_done
CEILING=$(sed -n 's/^REGISTER .*created_per_sec=\([0-9.]*\).*/\1/p' "$WORK/burst.txt")
BURST_STATUSES=$(sed -n 's/^REGISTER .*statuses=\([^ ]*\).*/\1/p' "$WORK/burst.txt")
[[ -n $CEILING ]] && awk -v c="$CEILING" 'BEGIN { exit !(c > 0) }' || die "no sign-up rate from wrk"
RATE=$(awk -v c="$CEILING" 'BEGIN { r = c / 2; printf "%.1f", (r < 1 ? 1 : r) }')
wait_until 120 "the audit consumer to catch up with the burst" caught_up

cat >"$WORK/drive.js" <<'JS'
// Open-loop sign-ups at a fixed rate: request i leaves at t0 + i / rate whatever the answers do.
// Then waits for every created user's audit line and prints the latencies (JSON).
const http = require('node:http');
const fs = require('node:fs');
const crypto = require('node:crypto');
const [port, rate, seconds, auditFile] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const total = Math.max(1, Math.round(rate * seconds));
const answers = [];
function register(i) {
  const id = crypto.randomBytes(6).toString('hex');
  const body = JSON.stringify({ email: `lat.${id}@bench.example.com`, username: `lat_${id}`, password: `Lat-${crypto.randomBytes(12).toString('base64url')}` });
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/auth/register', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let userId;
        try { userId = JSON.parse(Buffer.concat(chunks).toString()).user.id; } catch { /* not a 201 */ }
        answers.push({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, userId });
        resolve();
      });
    });
    req.on('error', (e) => { answers.push({ status: `error ${e.code || e.message}`, ms: NaN }); resolve(); });
    req.end(body);
  });
}
const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
(async () => {
  const inflight = [];
  const start = Date.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(register(i));
  }
  await Promise.all(inflight);
  const elapsed = (Date.now() - start) / 1000;
  const created = answers.filter((a) => a.status === 201);
  const want = new Set(created.map((a) => a.userId));
  const deadline = Date.now() + 120000;
  let lines = [];
  for (;;) {
    lines = fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    const seen = new Set(lines.map((l) => l.payload && l.payload.data && l.payload.data.id).filter((id) => want.has(id)));
    if (seen.size >= want.size || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const lat = lines.filter((l) => l.payload && l.payload.data && want.has(l.payload.data.id))
    .map((l) => Date.parse(l.receivedAt) - Date.parse(l.occurredAt)).sort((a, b) => a - b);
  const httpMs = created.map((a) => a.ms).sort((a, b) => a - b);
  const statuses = {};
  for (const a of answers) statuses[a.status] = (statuses[a.status] || 0) + 1;
  console.log(JSON.stringify({
    requests: total, rateTarget: rate, achieved: +(created.length / elapsed).toFixed(1), seconds: +elapsed.toFixed(1), statuses,
    delivered: lat.length, expected: want.size,
    latency: { p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99), max: lat[lat.length - 1] },
    http: { p50: +pct(httpMs, 50).toFixed(1), p99: +pct(httpMs, 99).toFixed(1) },
  }));
  agent.destroy();
})();
JS
phase_start "latency"
log "register → audit latency: $RATE sign-ups/s (half of $CEILING) for ${LATENCY_SECONDS}s"
node "$WORK/drive.js" "$PORT" "$RATE" "$LATENCY_SECONDS" "$REG_DATA/audit.jsonl" | tee "$WORK/latency.json" >&2
phase_done
kill -0 "$SERVE_PID" 2>/dev/null || die "serve died during the run (log: $WORK/serve.log)"
j() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const v=process.argv[2].split(".").reduce((a,k)=>a&&a[k],o);console.log(typeof v==="object"?Object.entries(v).map(([k,n])=>k+":"+n).join(","):v)' "$WORK/latency.json" "$1"; }
P50=$(j latency.p50) P90=$(j latency.p90) P99=$(j latency.p99) PMAX=$(j latency.max)

# ---------------------------------------------------------------- 6. the table
RATIO_OK=$(awk -v r="$RATIO_MED" 'BEGIN { print (r >= 85) }')
P99_OK=$(awk -v a="$P99" 'BEGIN { print (a != "" && a + 0 <= 50) }')
mkdir -p "$RESULTS"
OUT=$RESULTS/relay-latest.md
{
  echo "# registrar: RabbitMQ relay and event latency — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), shared with other work;"
  echo "registrar $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+changes') ($(sed -n "s/^CMAKE_BUILD_TYPE:STRING=//p" "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo "?"), SQLite WAL);"
  echo "RabbitMQ $RABBIT_VERSION (private node on loopback, default settings); Node $(node --version), amqplib $PEER_AMQPLIB."
  echo "$ROUNDS paired rounds, each: bare publisher, relay, consumers (${CONSUMERS[*]}). Bare publisher: node-seed \`publish-bench.js\` ($BARE_MESSAGES persistent messages, confirms in windows of 1000, one durable queue)."
  echo "Relay: \`registrar relay\` draining $RELAY_EVENTS outbox rows (${PAYLOAD_BYTES}-byte bodies) put there with sqlite3, one durable queue (\`topic_validateJSON\`),"
  echo "timed from the process start to no unsent row (polled every 100 ms); steady = from the outbox's first to last \`sent_at\`."
  echo "Consumers: the round's messages copied (unchanged) to \`registrar.<name>\`, then each \`registrar consume <name>\` (one at a time; email-verification with \`--redis-url\`, a private redis-server) timed from its start to its last line (audit.jsonl; messages.jsonl of the development mail sender); steady = from the first to the last line's \`receivedAt\` (audit) or spool file's mtime (mail)."
  echo "Latency: \`serve --consumers audit\`, argon2id m=19 MiB t=2 p=1; ceiling from \`wrk -t2 -c16 -d${BURST_SECONDS}s\`, then open-loop sign-ups at half of it"
  echo "for ${LATENCY_SECONDS}s; latency = audit line \`receivedAt\` − \`occurredAt\` (the event's commit-time stamp), ms resolution."
  echo "Machine state around each phase (CPU in use by anything just before; load average 1/5/15 min before and after):"
  for c in "${CONDITIONS[@]}"; do echo "- $c"; done
  echo
  echo "| measure | value | target |"
  echo "|---|---:|---|"
  echo "| bare publisher, messages/s (median; per round: $(IFS=/; echo "${BARE_RATES[*]}")) | $BARE_MED | |"
  echo "| relay, events/s (median; per round: $(IFS=/; echo "${RELAY_RATES[*]}"); steady: $(IFS=/; echo "${RELAY_STEADIES[*]}")) | $RELAY_MED | |"
  echo "| relay / bare publisher, same round (median, range $(range "${RATIOS[@]}") %) | $RATIO_MED % | ≥ 85 % $(mark "$RATIO_OK") |"
  for consumer in "${CONSUMERS[@]}"; do
    ok=$(awk -v a="${CONSUMER_MEDS[$consumer]}" -v b="$RELAY_MED" 'BEGIN { print (a >= b) }')
    # shellcheck disable=SC2086 # the rates are space-separated lists
    echo "| $consumer consumer over RabbitMQ, events/s (median; per round: $(echo ${CONSUMER_RATES[$consumer]} | tr ' ' /); steady: $(echo ${CONSUMER_STEADIES[$consumer]} | tr ' ' /)) | ${CONSUMER_MEDS[$consumer]} | ≥ the relay's $(mark "$ok") |"
  done
  for c in "${CHECKS[@]}"; do echo "| check, $c | | equal |"; done
  echo "| sign-up ceiling (serve + relay + audit, wrk burst), sign-ups/s | $CEILING ($BURST_STATUSES) | |"
  echo "| driven rate, sign-ups/s (target / achieved) | $RATE / $(j achieved) ($(j statuses)) | half the ceiling |"
  echo "| register → audit consumer latency p50 / p90 / p99 / max, ms ($(j delivered) of $(j expected) events) | $P50 / $P90 / $P99 / $PMAX | p99 ≤ 50 ms $(mark "$P99_OK") (NestJS sign-up service: 350 ms) |"
  echo "| POST /auth/register response time p50 / p99, ms | $(j http.p50) / $(j http.p99) | |"
} >"$OUT"
cat "$OUT"
echo >&2
echo "written to ${OUT#"$REPO"/}" >&2
