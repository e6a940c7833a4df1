// Load client of bench/socketio.sh: Socket.IO connections against registrar serve or node-seed's
// notify.js, with the stock socket.io-client (node-seed's copy, found through NODE_PATH).
//
//   node client.js hold URL N FIRST [LOCAL_ADDRESS]
//       opens N websocket connections, tokens for the subjects uFIRST … u(FIRST+N-1), from
//       LOCAL_ADDRESS (a loopback address such as 127.0.0.2: each source address has its own
//       ephemeral ports), at most INFLIGHT (200) handshakes at once; prints one line
//       `READY {"ok","fail","ms"}` when every one has connected or failed, then holds them idle
//       until SIGTERM and prints `DONE {"ok","disconnects"}`.
//   node client.js notify URL RATE SECONDS [RECEIVERS]
//       node-seed's own API: RECEIVERS (100) sockets in the rooms r0 … r99 and one emitter socket;
//       the emitter sends `notify` {id: r<i>, success, message: <send time>} at RATE per second;
//       each `notification` is timed on arrival (same process, one monotonic clock).
//   node client.js emit URL REDIS_URL RATE SECONDS [RECEIVERS]
//       a worker's emit through Redis, as a worker in another process makes it: RECEIVERS (100)
//       sockets connect to URL in the rooms r0 … r99, and the same process publishes with the stock
//       @socket.io/redis-emitter (on ioredis, node-seed's copies) `notification` {id: r<i>, success,
//       message: <send time>} to room r<i> at RATE per second; the server at URL gets them from
//       REDIS_URL through its Redis adapter (registrar serve --redis-url, or notify-redis.js). Each
//       arrival is timed as in `notify` (one process, one monotonic clock).
//   node client.js signup URL RATE SECONDS
//       registrar's product path: one socket with the admin token (ADMIN_TOKEN) in `admins`; HTTP
//       POST /auth/register at RATE per second; each `user.registered` is matched to its request by
//       username and timed from the request's send time (and from its 201 answer).
//   node client.js connect URL COUNT
//       COUNT handshakes one after the other (websocket, CONNECT with a token), each timed from
//       io() to `connect`, then closed.
// Timed modes print one JSON line. JWT_SECRET signs the tokens (HS256, sub, exp in 2 h, no typ:
// what node-seed's services sign, and what registrar accepts with --accept-foreign-tokens true).
'use strict';
const { io } = require('socket.io-client');
const jwt = require('jsonwebtoken');
const http = require('http');

const SECRET = process.env.JWT_SECRET || 'peer-secret-peer-secret-peer-secret-32';
const [mode, url, ...args] = process.argv.slice(2);
const token = (sub) => jwt.sign({ sub }, SECRET, { algorithm: 'HS256', expiresIn: '2h' });
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
const summary = (values) => {
  const s = Float64Array.from(values).sort();
  const r = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return { n: s.length, p50: r(pct(s, 50)), p90: r(pct(s, 90)), p99: r(pct(s, 99)), max: r(s.length ? s[s.length - 1] : null) };
};
const socketOptions = (extra) => ({ transports: ['websocket'], reconnection: false, timeout: 60000, forceNew: true, ...extra });

async function hold(n, first, localAddress) {
  const inflightMax = +(process.env.INFLIGHT || 200);
  let ok = 0, fail = 0, inflight = 0, disconnects = 0;
  const socks = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    while (inflight >= inflightMax) await sleep(2);
    inflight++;
    const s = io(url, socketOptions({ auth: { token: token('u' + (first + i)) }, ...(localAddress ? { localAddress } : {}) }));
    s.once('connect', () => { ok++; inflight--; });
    s.once('connect_error', (e) => { fail++; inflight--; if (fail <= 3) console.error('connect_error:', e.message); });
    s.on('disconnect', () => disconnects++);
    socks.push(s);
  }
  while (ok + fail < n && now() - t0 < 300000) await sleep(20);
  console.log('READY ' + JSON.stringify({ ok, fail, ms: Math.round(now() - t0) }));
  await new Promise((r) => process.once('SIGTERM', r));
  console.log('DONE ' + JSON.stringify({ ok, disconnects }));
  process.exit(0);
}

// Sends at `rate` per second for `seconds`, in 5 ms ticks that catch up on the schedule.
async function paced(rate, seconds, send) {
  const total = Math.round(rate * seconds);
  const t0 = now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - t0) / 1000) * rate) + 1);
    while (sent < due) send(sent++);
    await sleep(5);
  }
  return (now() - t0) / 1000;
}

async function connectOne(sub) {
  const s = io(url, socketOptions({ auth: { token: token(sub) } }));
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
  return s;
}

// RECEIVERS sockets in the rooms r0 … r<n-1>, each `notification` timed on arrival into `lat`
// (its message is the send time, on this process's clock).
async function joinReceivers(n, lat) {
  const rx = [];
  for (let i = 0; i < n; i++) {
    const s = await connectOne('r' + i);
    s.on('notification', (m) => lat.push(now() - +m.message));
    rx.push(s);
  }
  return rx;
}

async function notify(rate, seconds, receivers) {
  const lat = [];
  await joinReceivers(receivers, lat);
  const tx = await connectOne('emitter');
  await sleep(500);
  const took = await paced(rate, seconds, (i) => tx.emit('notify', { id: 'r' + (i % receivers), success: true, message: String(now()) }));
  await sleep(2000);
  console.log(JSON.stringify({ mode: 'notify', rate, sent: Math.round(rate * seconds), received: lat.length, sendSeconds: +took.toFixed(2), latencyMs: summary(lat) }));
  process.exit(0);
}

async function emitThroughRedis(redisUrl, rate, seconds, receivers) {
  const Redis = require('ioredis');
  const { Emitter } = require('@socket.io/redis-emitter');
  const redis = new Redis(redisUrl);
  let publishErrors = 0;
  // The emitter does not wait on its PUBLISHes: a failed one is counted here (and shows as lost).
  const publish = redis.publish.bind(redis);
  redis.publish = (...a) => publish(...a).catch(() => { publishErrors++; });
  const emitter = new Emitter(redis);
  const lat = [];
  const rx = await joinReceivers(receivers, lat);
  // The server subscribes to Redis on its own schedule (and ioredis connects lazily): probes go to
  // r0 until one arrives, so the timed run starts on a path known to be live end to end.
  await new Promise((resolve, reject) => {
    const probe = setInterval(() => emitter.to('r0').emit('probe', {}), 50);
    const giveUp = setTimeout(() => { clearInterval(probe); reject(new Error('no probe came back through Redis within 30 s')); }, 30000);
    rx[0].once('probe', () => { clearInterval(probe); clearTimeout(giveUp); resolve(); });
  });
  await sleep(500);
  const took = await paced(rate, seconds, (i) => emitter.to('r' + (i % receivers)).emit('notification', { id: 'r' + (i % receivers), success: true, message: String(now()) }));
  await sleep(2000);
  console.log(JSON.stringify({ mode: 'emit', rate, sent: Math.round(rate * seconds), received: lat.length, publishErrors, sendSeconds: +took.toFixed(2), latencyMs: summary(lat) }));
  process.exit(0);
}

async function signup(rate, seconds) {
  const admin = io(url, socketOptions({ auth: { token: process.env.ADMIN_TOKEN } }));
  await new Promise((resolve, reject) => { admin.once('connect', resolve); admin.once('connect_error', reject); });
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: +(process.env.HTTP_CONNECTIONS || 64) });
  const run = Date.now().toString(36) + process.pid.toString(36);
  const sentAt = new Map(), answeredAt = new Map();
  const lat = [], afterAnswer = [], answer = [];
  const statuses = {};
  admin.on('user.registered', (e) => {
    const t = now(), s = sentAt.get(e && e.username);
    if (s === undefined) return;
    lat.push(t - s);
    const a = answeredAt.get(e.username);
    if (a !== undefined) afterAnswer.push(t - a);
    sentAt.delete(e.username);
  });
  const took = await paced(rate, seconds, (i) => {
    const username = `sb${run}x${i}`;
    const body = JSON.stringify({ email: `${username}@bench.example.com`, username, password: `Bench-${run}-pw-${i}` });
    const t = now();
    sentAt.set(username, t);
    const req = http.request({ host: u.hostname, port: u.port, path: '/auth/register', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => { const a = now(); answer.push(a - t); answeredAt.set(username, a); statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1; });
    });
    req.on('error', () => { statuses.error = (statuses.error || 0) + 1; });
    req.end(body);
  });
  await sleep(3000);
  console.log(JSON.stringify({ mode: 'signup', rate, sent: Math.round(rate * seconds), received: lat.length, sendSeconds: +took.toFixed(2), statuses,
    latencyMs: summary(lat), answerMs: summary(answer), answerToNotificationMs: summary(afterAnswer) }));
  process.exit(0);
}

async function connectLatency(count) {
  const lat = [];
  let fail = 0;
  for (let i = 0; i < count; i++) {
    const t = now();
    try { const s = await connectOne('c' + i); lat.push(now() - t); s.close(); } catch { fail++; }
  }
  console.log(JSON.stringify({ mode: 'connect', count, fail, latencyMs: summary(lat) }));
  process.exit(0);
}

const main = {
  hold: () => hold(+args[0], +args[1], args[2]),
  notify: () => notify(+args[0], +args[1], +(args[2] || 100)),
  emit: () => emitThroughRedis(args[0], +args[1], +args[2], +(args[3] || 100)),
  signup: () => signup(+args[0], +args[1]),
  connect: () => connectLatency(+args[0]),
}[mode];
if (!main || !url) { console.error('usage: see the top of bench/socketio/client.js'); process.exit(2); }
main().catch((e) => { console.error(e); process.exit(1); });
