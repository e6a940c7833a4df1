'use strict';
// RabbitMQ helpers for the black-box tests: a private broker (scripts/rabbitmq-private.sh) that a
// test can stop and start again, `registrar relay` / `registrar consume NAME` child processes with
// their JSON log lines captured, a resilient amqplib consumer of a queue that survives broker
// restarts (and records every delivery, duplicates included), and small queue utilities.

const { spawn, execFile, execFileSync } = require('node:child_process');
const { EventEmitter } = require('node:events');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { promisify } = require('node:util');

const { REPO_ROOT, BIN, requireNode } = require('../harness');

const amqp = requireNode('amqplib');
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'rabbitmq-private.sh');
const execFileP = promisify(execFile);

// A TCP port nobody listens on right now (the broker also needs PORT±20000 for distribution,
// which the script derives; a clash there is unlikely and shows as a start failure).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function freeBrokerPort() {
  for (;;) {
    const p = await freePort();
    if (p >= 1024 && p < 45536 && p + 20000 < 65536) return p;
  }
}

// ---- the broker -------------------------------------------------------------------------------

const liveBrokers = new Set();
process.on('exit', () => {
  for (const b of liveBrokers) {
    try { execFileSync(SCRIPT, ['kill', b.dir, String(b.port)], { stdio: 'ignore', timeout: 30_000 }); } catch { /* best effort */ }
  }
});

class Broker {
  constructor({ dir, port }) {
    this.dir = dir;
    this.port = port;
    this.url = `amqp://guest:guest@127.0.0.1:${port}/`;
  }

  // A fresh node in a new directory directly under /tmp (the rabbitmq user must traverse it).
  static async start() {
    const port = await freeBrokerPort();
    const dir = path.join('/tmp', `registrar-rmq-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    const b = new Broker({ dir, port });
    await b.start();
    return b;
  }

  async start() {
    liveBrokers.add(this);
    const t0 = Date.now();
    await this.script('start');
    this.lastStartMs = Date.now() - t0;
  }

  async stop() { await this.script('stop'); }
  async kill() { await this.script('kill'); }

  // Stops the node and removes its directory.
  async dispose() {
    try { await this.script('stop'); } catch { await this.script('kill').catch(() => {}); }
    liveBrokers.delete(this);
    if (!process.env.KEEP_DATA) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async script(cmd) {
    try {
      await execFileP(SCRIPT, [cmd, this.dir, String(this.port)], { timeout: 120_000 });
    } catch (e) {
      throw new Error(`rabbitmq-private.sh ${cmd} failed: ${e.message}\n${e.stdout || ''}${e.stderr || ''}`);
    }
  }

  connect() { return amqp.connect(this.url); }
}

// Deletes queues (if they exist), so that a test starts from an empty topology on a shared broker.
async function deleteQueues(url, names) {
  const conn = await amqp.connect(url);
  conn.on('error', () => {});
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    for (const q of names) await ch.deleteQueue(q);
    await ch.close();
  } finally {
    await conn.close().catch(() => {});
  }
}

// The queues the built-in consumer NAME uses with the default retry settings (1 s doubling, 5
// attempts → 1000, 2000, 4000, 8000 ms; fewer attempts use a prefix of these).
function consumerQueues(name) {
  const base = `registrar.${name}`;
  return [base, `${base}.dlq`, ...[1000, 2000, 4000, 8000, 16000, 32000, 60000].map((ms) => `${base}.retry.${ms}`)];
}

// Ready-message count of a queue (checkQueue on a throwaway connection).
async function queueDepth(url, queue) {
  const conn = await amqp.connect(url);
  conn.on('error', () => {});
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const r = await ch.checkQueue(queue);
    await ch.close();
    return r.messageCount;
  } finally {
    await conn.close().catch(() => {});
  }
}

// ---- a consumer that survives broker restarts -------------------------------------------------

// Consumes `queue` (asserted durable, like registrar declares it) with manual acks, recording every
// delivery { body, properties, fields, at } before acking it. Reconnects every `retryMs` after the
// connection is lost, so it sees what the broker kept across an outage (and redeliveries of what
// was unacked when it went: duplicates by message id are expected and kept).
class QueueConsumer extends EventEmitter {
  constructor(url, queue, { retryMs = 300, prefetch = 64 } = {}) {
    super();
    this.setMaxListeners(100);
    this.url = url;
    this.queue = queue;
    this.retryMs = retryMs;
    this.prefetch = prefetch;
    this.messages = [];
    this.connections = 0;
    this.stopped = false;
    this.conn = null;
  }

  static async start(url, queue, opts) {
    const c = new QueueConsumer(url, queue, opts);
    await c.connectOnce();
    c.loop = c.runLoop();
    return c;
  }

  async connectOnce() {
    const conn = await amqp.connect(this.url);
    const closed = new Promise((resolve) => { conn.on('close', resolve); });
    conn.on('error', () => { /* followed by close */ });
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await ch.assertQueue(this.queue, { durable: true });
      await ch.prefetch(this.prefetch);
      await ch.consume(this.queue, (msg) => {
        if (!msg) return; // cancelled by the broker
        const entry = { body: msg.content, properties: msg.properties, fields: msg.fields, at: Date.now() };
        this.messages.push(entry);
        this.emit('message', entry);
        try { ch.ack(msg); } catch { /* channel gone: redelivered later */ }
      }, { noAck: false });
    } catch (e) {
      await conn.close().catch(() => {});
      throw e;
    }
    this.conn = conn;
    this.connections += 1;
    this.closed = closed;
  }

  async runLoop() {
    while (!this.stopped) {
      await this.closed;
      this.conn = null;
      while (!this.stopped) {
        await new Promise((r) => setTimeout(r, this.retryMs));
        if (this.stopped) break;
        try { await this.connectOnce(); break; } catch { /* broker still away */ }
      }
    }
  }

  // Distinct message ids seen.
  messageIds() { return new Set(this.messages.map((m) => m.properties.messageId)); }

  async stop() {
    this.stopped = true;
    if (this.conn) await this.conn.close().catch(() => {});
    await this.loop;
  }
}

// ---- registrar roles other than serve --------------------------------------------------------

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }
});

// `registrar relay|consume NAME …` with its JSON log lines captured (like harness.Server, without
// HTTP). `args` follow the role, e.g. ['consume', 'audit', '--data-dir', d, '--amqp-url', u].
class RoleProcess extends EventEmitter {
  constructor(args, { env = {}, name } = {}) {
    super();
    this.setMaxListeners(100);
    this.args = args;
    this.env = env;
    this.name = name || args.slice(0, 2).join(' ');
    this.lines = [];
    this.logs = [];
  }

  static start(args, opts) {
    const p = new RoleProcess(args, opts);
    p.start();
    return p;
  }

  get running() { return !!this.child && this.exitStatus === undefined; }
  get pid() { return this.child && this.child.pid; }

  start() {
    if (!fs.existsSync(BIN)) throw new Error(`registrar binary not found at ${BIN}`);
    this.exitStatus = undefined;
    const child = spawn(BIN, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        this.exitStatus = { code, signal };
        this.emit('exit', this.exitStatus);
        resolve(this.exitStatus);
      });
    });
    child.on('error', (e) => this.emit('spawn-error', e));
    for (const [stream, sname] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (text) => {
        const entry = { stream: sname, text, pid: child.pid };
        try { entry.json = JSON.parse(text); } catch { /* plain text */ }
        if (entry.json) this.logs.push({ ...entry.json, pid: child.pid });
        this.lines.push(entry);
        if (process.env.BB_ECHO) process.stderr.write(`[${this.name} ${child.pid} ${sname}] ${text}\n`);
        this.emit('line', entry);
      });
    }
    return this;
  }

  logText() { return this.lines.map((l) => l.text).join('\n'); }

  // Resolves with the first line (JSON) matching `pred`, past or future; rejects on timeout/exit.
  waitForLog(pred, { timeoutMs = 15_000, what = 'log line' } = {}) {
    const test = (e) => { try { return !!e.json && pred(e.json, e); } catch { return false; } };
    const found = this.lines.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.logText().slice(-3000)}`)); }, timeoutMs);
      const onLine = (e) => { if (test(e)) { done(); resolve(e); } };
      const onExit = (st) => { done(); reject(new Error(`${this.name} exited (${JSON.stringify(st)}) before ${what}\n${this.logText().slice(-3000)}`)); };
      const done = () => { clearTimeout(timer); this.off('line', onLine); this.off('exit', onExit); };
      this.on('line', onLine);
      this.once('exit', onExit);
    });
  }

  async stop({ timeoutMs = 25_000 } = {}) {
    if (!this.running) return this.exitStatus;
    this.child.kill('SIGTERM');
    let timer;
    const t = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'timeout'); });
    const r = await Promise.race([this.exited, t]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.name} did not stop within ${timeoutMs} ms after SIGTERM\n${this.logText().slice(-3000)}`);
    }
    return r;
  }

  async kill9() {
    if (!this.running) return this.exitStatus;
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

// ---- files ----------------------------------------------------------------------------------

// A JSON-lines file, parsed; a torn line is returned as { torn: text }; a missing file as [].
function readJsonLines(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { if (e.code === 'ENOENT') return []; throw e; }
  return text.split('\n').filter((l) => l.length).map((l) => { try { return JSON.parse(l); } catch { return { torn: l }; } });
}

// Values occurring more than once in `values`, with their counts.
function duplicates(values) {
  const counts = new Map();
  for (const v of values) counts.set(v, (counts.get(v) || 0) + 1);
  return [...counts].filter(([, n]) => n > 1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = {
  amqp, Broker, QueueConsumer, RoleProcess, consumerQueues, deleteQueues, duplicates, freePort, queueDepth, readJsonLines, sleep,
};
