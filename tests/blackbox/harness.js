'use strict';
// Black-box harness: starts the real `registrar` binary on port 0 with a fresh data directory,
// waits for its "listening" log line (event-driven), captures every log line, and offers HTTP
// (keep-alive), raw TCP and database helpers. Used by the *.test.js files beside it (node --test).
//
// Backend: embedded SQLite by default. With REGISTRAR_TEST_DB=mysql every Server runs on MySQL
// (MariaDB): one private server per test process (scripts/mariadb-private.sh, started on first use,
// removed when the process exits), and a fresh database per Server, passed as --database-url.
// The data dir stays per Server either way (generated secrets, audit.jsonl, messages.jsonl).

const { spawn, execFile, execFileSync } = require('node:child_process');
const { createRequire } = require('node:module');
const { EventEmitter } = require('node:events');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
// The Node dependencies (jsonwebtoken, …) live in tests/node, installed from its lockfile.
const requireNode = createRequire(path.join(REPO_ROOT, 'tests', 'node', 'package.json'));

const BIN = path.resolve(REPO_ROOT, process.env.REGISTRAR_BIN || path.join('build', 'registrar'));
const MARIADB_SCRIPT = path.join(REPO_ROOT, 'scripts', 'mariadb-private.sh');
// The backend every Server of this process runs on unless told otherwise ({ db } option).
const TEST_DB = (process.env.REGISTRAR_TEST_DB || 'sqlite').toLowerCase();
if (!['sqlite', 'mysql'].includes(TEST_DB)) throw new Error(`REGISTRAR_TEST_DB must be sqlite or mysql, not ${TEST_DB}`);
// Sanitizer builds run several times slower: scripts/test.sh sets REGISTRAR_TEST_TIMEOUT_SCALE and
// every wait of the harness (deadline, eventually, start/stop) and of the tests (scaled()) grows by it.
const TIMEOUT_SCALE = Number(process.env.REGISTRAR_TEST_TIMEOUT_SCALE || 1);
if (!(TIMEOUT_SCALE >= 1)) throw new Error(`REGISTRAR_TEST_TIMEOUT_SCALE must be a number >= 1, not ${process.env.REGISTRAR_TEST_TIMEOUT_SCALE}`);
function scaled(ms) { return Math.round(ms * TIMEOUT_SCALE); }
// The sanitizer stage this run is part of (scripts/test.sh sets it: asan or tsan), else ''. A test
// that cannot run under the sanitizer runtimes skips itself with the reason (it runs in the normal stage).
const SANITIZER = process.env.REGISTRAR_TEST_SANITIZER || '';
// Where that stage collects sanitizer reports. Most reach it by themselves (log_path), but GCC's
// UBSan, when linked beside ASan, ignores log_path and prints to stderr: any such line a server
// prints is copied there, so the stage fails on it whatever the test concluded.
const SANITIZER_REPORTS = process.env.REGISTRAR_TEST_SANITIZER_REPORTS || '';
const SANITIZER_LINE = /runtime error:|ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|WARNING: ThreadSanitizer/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 25_000; // above the server's 20 s shutdown grace

// Every child we start, so that none outlives the test process whatever happens.
const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function deadline(ms, what) {
  ms = scaled(ms);
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

// Polls `probe` (sync or async) every `intervalMs` until it returns a truthy value or the deadline
// passes. For "eventually" conditions that have no event to wait on (a file being appended to).
async function eventually(probe, { timeoutMs = 15_000, intervalMs = 50, what = 'condition' } = {}) {
  timeoutMs = scaled(timeoutMs);
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`not satisfied within ${timeoutMs} ms: ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function randomId(bytes = 5) {
  return crypto.randomBytes(bytes).toString('hex');
}

// A fresh, valid sign-up: unique e-mail and username, a random strong password (never a common one).
function newUser(prefix = 'u') {
  const id = randomId(6);
  return {
    email: `${prefix}.${id}@example.com`,
    username: `${prefix}_${id}`.slice(0, 32),
    password: `Pw-${crypto.randomBytes(18).toString('base64url')}`,
  };
}

// Minimal incremental HTTP/1.1 response parser (Content-Length, chunked, or until close),
// for raw-socket tests (pipelining, malformed requests).
function parseResponses(buf, { atEof = false } = {}) {
  const responses = [];
  let offset = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', offset);
    if (headEnd < 0) break;
    const head = buf.subarray(offset, headEnd).toString('latin1');
    const [statusLine, ...headerLines] = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headers = {};
    for (const line of headerLines) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let bodyStart = headEnd + 4;
    let body;
    let next;
    if (status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      next = bodyStart;
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(buf.subarray(p, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd === lineEnd) { next = lineEnd + 4; complete = true; }
          else if (buf.indexOf('\r\n', lineEnd + 2) === lineEnd + 2) { next = lineEnd + 4; complete = true; }
          else if (trailerEnd >= 0) { next = trailerEnd + 4; complete = true; }
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      if (buf.length < bodyStart + len) break;
      body = buf.subarray(bodyStart, bodyStart + len);
      next = bodyStart + len;
    } else {
      if (!atEof) break; // delimited by close
      body = buf.subarray(bodyStart);
      next = buf.length;
    }
    const text = body.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    responses.push({ status, headers, text, json, statusLine });
    offset = next;
  }
  return { responses, rest: buf.subarray(offset) };
}

// ---- a private MariaDB server (for REGISTRAR_TEST_DB=mysql and MySQL-only tests) ----
// The script's conventions: root without a password, only through DIR/mysqld.sock; the user
// `registrar` (all privileges) over TCP with the password in DIR/password.
class MariaDb {
  constructor(dir) {
    this.dir = dir;
    this.socket = path.join(dir, 'mysqld.sock');
  }

  // Installs (first time) and starts the server, or returns at once if it runs already.
  async start() {
    const out = await runFile(MARIADB_SCRIPT, ['start', this.dir], { timeoutMs: 90_000 });
    const m = /^mysql:\/\/([^:]+):([^@]+)@([^:/]+):(\d+)\//m.exec(out);
    if (!m) throw new Error(`unexpected output of mariadb-private.sh start: ${out}`);
    [, this.user, this.password, this.host] = m;
    this.port = Number(m[4]);
    return this;
  }

  stop() { return runFile(MARIADB_SCRIPT, ['stop', this.dir], { timeoutMs: 60_000 }); } // graceful
  kill() { return runFile(MARIADB_SCRIPT, ['kill', this.dir], { timeoutMs: 30_000 }); } // SIGKILL

  // The URL registrar connects with, for database `db`.
  url(db) { return `mysql://${this.user}:${this.password}@${this.host}:${this.port}/${db}`; }

  // Runs SQL as root over the socket; returns the rows as objects (see parseBatch).
  query(sql, { db } = {}) {
    const args = ['--no-defaults', '--protocol=socket', `--socket=${this.socket}`, '-uroot', '--batch'];
    if (db) args.push(`--database=${db}`);
    args.push('-e', sql);
    return parseBatch(execFileSync('mariadb', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }));
  }

  // A new, empty database; returns its name.
  createDatabase(prefix = 'bb') {
    const name = `${prefix}_${randomId(6)}`;
    this.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    return name;
  }

  dropDatabase(name) { this.query(`DROP DATABASE IF EXISTS \`${name}\``); }

  // Synchronous, for process exit: kill the server and delete its directory (kept with KEEP_DATA=1:
  // `scripts/mariadb-private.sh start DIR` brings it back for a look).
  purgeSync() {
    try { execFileSync(MARIADB_SCRIPT, ['kill', this.dir], { stdio: 'ignore', timeout: 30_000 }); } catch { /* best effort */ }
    if (process.env.KEEP_DATA) process.stderr.write(`kept the MariaDB data in ${this.dir}\n`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // A new server in a fresh directory under /tmp (short: the socket path must stay < 100 bytes),
  // killed and removed when this process exits (also on SIGINT/SIGTERM).
  static async create() {
    installMariaDbCleanup();
    const db = new MariaDb(fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-mdb-')));
    liveMariaDbs.add(db);
    try {
      await db.start();
    } catch (e) {
      let errorLog = '';
      try { errorLog = fs.readFileSync(path.join(db.dir, 'error.log'), 'utf8').slice(-3000); } catch { /* none */ }
      throw new Error(`${e.message}\n--- mariadb error.log ---\n${errorLog}`);
    }
    return db;
  }

  async dispose() {
    liveMariaDbs.delete(this);
    this.purgeSync();
  }
}

const liveMariaDbs = new Set();
let mariaDbCleanupInstalled = false;
function installMariaDbCleanup() {
  if (mariaDbCleanupInstalled) return;
  mariaDbCleanupInstalled = true;
  process.on('exit', () => { for (const db of liveMariaDbs) db.purgeSync(); });
  // The servers run in their own session (setsid): without this they would outlive an interrupted
  // run. After cleaning up, the signal is raised again with its default action.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => { for (const db of liveMariaDbs) db.purgeSync(); process.kill(process.pid, sig); });
  }
}

// The one shared server of this process (REGISTRAR_TEST_DB=mysql), started on first use.
let sharedMariaDb;
function mariadb() {
  if (!sharedMariaDb) sharedMariaDb = MariaDb.create();
  return sharedMariaDb;
}

function runFile(file, args, { timeoutMs }) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// `mariadb --batch` output (a header line, then tab-separated rows with \t \n \\ \0 escaped and
// NULL for null) as objects keyed by column name, like `sqlite3 -json`: integers become numbers
// (counts, seq; ids here are UUIDs and never all digits), NULL becomes null.
function parseBatch(out) {
  const lines = out.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) return [];
  const unescape = (v) => v.replace(/\\(.)/g, (_, c) => ({ t: '\t', n: '\n', 0: '\0', '\\': '\\' })[c] ?? c);
  const columns = lines[0].split('\t').map(unescape);
  return lines.slice(1).map((line) => {
    const values = line.split('\t');
    const row = {};
    columns.forEach((c, i) => {
      const v = values[i];
      if (v === 'NULL') row[c] = null;
      else if (/^-?\d{1,15}$/.test(v)) row[c] = Number(v);
      else row[c] = unescape(v);
    });
    return row;
  });
}

class Server extends EventEmitter {
  // db: 'sqlite' | 'mysql' (default: REGISTRAR_TEST_DB, else sqlite). With 'mysql', `mariadb` names
  // the server to use (a MariaDb; default: this process's shared one) and the Server gets a fresh
  // database on it on first start, kept across restarts and dropped by dispose().
  // command: 'serve' (default), 'worker' (no HTTP: ready at its "worker ready" log line), or
  // 'socketio-echo' (HTTP, but no data directory, database or argon2 settings).
  constructor({ dataDir, args = [], env = {}, weakArgon2 = true, db = TEST_DB, mariadb: mdb, command = 'serve' } = {}) {
    super();
    this.command = command;
    this.setMaxListeners(100);
    this.db = db;
    this.mariadb = mdb || null;
    this.database = null; // MySQL database name, once created
    this.ownsDataDir = !dataDir;
    this.dataDir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-bb-'));
    this.extraArgs = args;
    this.extraEnv = env;
    this.weakArgon2 = weakArgon2;
    this.logs = []; // parsed JSON objects from stdout
    this.lines = []; // every captured line: { stream, text, json?, run }
    this.runs = 0;
    this.child = null;
    this.agent = null;
  }

  static async start(opts) {
    const s = new Server(opts);
    await s.start();
    return s;
  }

  get dbPath() { return path.join(this.dataDir, 'registrar.db'); }
  get databaseUrl() { return this.db === 'mysql' && this.database ? this.mariadb.url(this.database) : `sqlite://${this.dbPath}`; }
  get auditPath() { return path.join(this.dataDir, 'audit.jsonl'); }
  get secretPath() { return path.join(this.dataDir, 'jwt-secret'); }
  get pid() { return this.child && this.child.pid; }
  get running() { return !!this.child && this.exitStatus === undefined; }

  jwtSecret() {
    if (this.extraEnv.REGISTRAR_JWT_SECRET) return this.extraEnv.REGISTRAR_JWT_SECRET;
    return fs.readFileSync(this.secretPath, 'utf8').trim();
  }

  // All captured output (stdout and stderr, every run) as one string: for "never logged" checks.
  logText() { return this.lines.map((l) => l.text).join('\n'); }

  async start() {
    if (this.running) throw new Error('already running');
    if (!fs.existsSync(BIN)) throw new Error(`registrar binary not found at ${BIN} (set REGISTRAR_BIN or run scripts/build.sh)`);
    if (this.db === 'mysql' && !this.database && this.command !== 'socketio-echo') {
      if (!this.mariadb) this.mariadb = await mariadb();
      this.database = this.mariadb.createDatabase();
    }
    this.runs += 1;
    const run = this.runs;
    const echo = this.command === 'socketio-echo';
    const listens = this.command === 'serve' || echo;
    const args = this.command === 'serve'
      ? ['serve', '--listen', '127.0.0.1:0', '--data-dir', this.dataDir]
      : echo ? [this.command, '--listen', '127.0.0.1:0'] : [this.command, '--data-dir', this.dataDir];
    if (this.db === 'mysql' && !echo) args.push('--database-url', this.databaseUrl);
    const env = { ...process.env, ...this.extraEnv };
    if (this.weakArgon2 && !echo) {
      // Cheap hashing keeps the suite fast; the production floor is exercised by the benchmarks.
      args.push('--argon2-memory-kib', '1024', '--argon2-iterations', '1');
      env.REGISTRAR_ALLOW_WEAK_ARGON2 = '1';
    }
    // Abuse limits are off unless a test sets them (most tests sign up and log in from one
    // address far more often than the defaults allow); tests/blackbox/abuse_limits.test.js turns them on.
    if (this.command === 'serve' && !('REGISTRAR_RATE_LIMITS' in this.extraEnv) && !this.extraArgs.includes('--rate-limits')) {
      env.REGISTRAR_RATE_LIMITS = 'false';
    }
    args.push(...this.extraArgs);
    this.exitStatus = undefined;
    const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        if (process.env.BB_ECHO) process.stderr.write(`[registrar ${child.pid}] exited code=${code} signal=${signal}\n`);
        this.exitStatus = { code, signal };
        this.emit('exit', this.exitStatus);
        resolve(this.exitStatus);
      });
    });
    const spawnError = new Promise((_, reject) => child.on('error', reject));
    for (const [stream, name] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (text) => {
        const entry = { stream: name, text, run };
        if (name === 'stdout') {
          try {
            entry.json = JSON.parse(text);
            this.logs.push(entry.json);
          } catch { /* not JSON: kept as text, flagged by the structured-log test */ }
        }
        this.lines.push(entry);
        if (SANITIZER_REPORTS && SANITIZER_LINE.test(text)) {
          fs.appendFileSync(path.join(SANITIZER_REPORTS, `stderr-of-registrar.${child.pid}`), `${text}\n`);
        }
        if (process.env.BB_ECHO) process.stderr.write(`[registrar ${this.child ? this.child.pid : '?'} ${name}] ${text}\n`);
        this.emit('line', entry);
      });
    }
    try {
      if (!listens) {
        await Promise.race([
          this.waitForLog((l) => l.msg === 'worker ready' && l.run === run, { timeoutMs: START_TIMEOUT_MS, what: 'the "worker ready" log line' }),
          spawnError,
        ]);
        return this;
      }
      const listening = await Promise.race([
        this.waitForLog((l) => l.msg === 'listening' && l.run === run, { timeoutMs: START_TIMEOUT_MS, what: 'the "listening" log line' }),
        spawnError,
      ]);
      const address = listening.json.address || `${listening.json.host}:${listening.json.port}`;
      const m = /:(\d+)$/.exec(String(address));
      if (!m) throw new Error(`no port in the listening line: ${listening.text}`);
      this.port = Number(m[1]);
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    } catch (e) {
      if (this.running) { child.kill('SIGKILL'); await this.exited; }
      throw new Error(`${e.message}\n--- captured log ---\n${this.logText()}`);
    }
    return this;
  }

  // Resolves with the first captured line (of any run, unless the predicate checks `run`) that
  // satisfies `pred(lineWithJsonMerged)`. Rejects on timeout or if the process exits first.
  waitForLog(pred, { timeoutMs = 10_000, what = 'log line', fromIndex = 0 } = {}) {
    const test = (entry) => {
      if (!entry.json) return false;
      try { return pred({ ...entry.json, run: entry.run }, entry); } catch { return false; }
    };
    for (let i = fromIndex; i < this.lines.length; i++) {
      if (test(this.lines[i])) return Promise.resolve(this.lines[i]);
    }
    return new Promise((resolve, reject) => {
      const d = deadline(timeoutMs, what);
      const onLine = (entry) => { if (test(entry)) { done(); resolve(entry); } };
      const onExit = (st) => { done(); reject(new Error(`process exited (${JSON.stringify(st)}) before ${what}`)); };
      const done = () => { d.cancel(); this.off('line', onLine); this.off('exit', onExit); };
      this.on('line', onLine);
      this.once('exit', onExit);
      d.promise.catch((e) => { done(); reject(e); });
    });
  }

  // SIGTERM (graceful) and wait for the exit; SIGKILL if it does not exit in time (then throws).
  async stop({ signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS } = {}) {
    if (this.agent) { this.agent.destroy(); this.agent = null; }
    if (!this.running) return this.exitStatus;
    this.child.kill(signal);
    const d = deadline(timeoutMs, `exit after ${signal}`);
    try {
      return await Promise.race([this.exited, d.promise]);
    } catch (e) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${e.message}\n--- captured log ---\n${this.logText().slice(-4000)}`);
    } finally {
      d.cancel();
    }
  }

  async kill9() {
    if (this.agent) { this.agent.destroy(); this.agent = null; }
    if (!this.running) return this.exitStatus;
    this.child.kill('SIGKILL');
    return this.exited;
  }

  async restart() {
    if (this.running) await this.stop();
    return this.start();
  }

  // Stops (if needed) and removes the data directory we created (kept with KEEP_DATA=1).
  async dispose() {
    try {
      if (this.running) await this.stop().catch(() => this.kill9());
    } finally {
      if (this.ownsDataDir && !process.env.KEEP_DATA) fs.rmSync(this.dataDir, { recursive: true, force: true });
      if (this.database && !process.env.KEEP_DATA) {
        try { this.mariadb.dropDatabase(this.database); } catch { /* the server may be down; it goes at exit */ }
      }
    }
  }

  // Graceful stop that must end in exit code 0: as shutdown waits for every connection to finish,
  // a crash caused by the connections of the test that just ran shows up here, deterministically.
  async stopCleanly() {
    const assert = require('node:assert/strict');
    const exit = await this.stop();
    assert.deepEqual(exit, { code: 0, signal: null },
      `the server did not exit cleanly (crashed during the test?); log tail:\n${this.logText().slice(-3000)}`);
  }

  // ---- HTTP (keep-alive agent) ----
  request(method, urlPath, { headers = {}, body, json, agent } = {}) {
    let payload = body;
    const h = { ...headers };
    if (json !== undefined) {
      payload = Buffer.from(JSON.stringify(json));
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    if (payload !== undefined) h['content-length'] = Buffer.byteLength(payload);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.port, method, path: urlPath, headers: h, agent: agent === undefined ? this.agent : agent },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed;
            try { parsed = JSON.parse(text); } catch { parsed = undefined; }
            resolve({ status: res.statusCode, headers: res.headers, text, json: parsed });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  register(user, extraHeaders) { return this.request('POST', '/auth/register', { json: user, headers: extraHeaders }); }
  login(creds) { return this.request('POST', '/auth/login', { json: creds }); }
  me(token) {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    return this.request('GET', '/users/me', { headers });
  }

  // Registers a fresh user and returns { user, res } (asserting nothing but the 201).
  async registerNew(prefix) {
    const user = newUser(prefix);
    const res = await this.register(user);
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
    return { user, res, token: res.json.accessToken, id: res.json.user.id };
  }

  // ---- raw TCP ----
  // Writes `data` (a string/Buffer, or an array written back to back) on a fresh socket and
  // collects responses until `expect` complete ones have arrived or the server closes.
  raw(data, { expect = 1, timeoutMs = 10_000, endAfterWrite = false } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      let responses = [];
      let closed = false;
      let writeError = null;
      const d = deadline(timeoutMs, `raw response(s) (got ${responses.length}/${expect})`);
      const finish = (err) => {
        d.cancel();
        sock.destroy();
        if (err) reject(err);
        else resolve({ responses, closed, writeError, rest: buf });
      };
      d.promise.catch((e) => finish(new Error(`${e.message}; received so far: ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`)));
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        try {
          const r = parseResponses(buf);
          responses = responses.concat(r.responses);
          buf = r.rest;
        } catch (e) { return finish(e); }
        if (responses.length >= expect) finish();
      });
      sock.on('error', (e) => { writeError = writeError || e; });
      sock.on('close', () => {
        closed = true;
        try {
          const r = parseResponses(buf, { atEof: true });
          responses = responses.concat(r.responses);
          buf = r.rest;
        } catch { /* incomplete */ }
        finish();
      });
      sock.on('connect', () => {
        const parts = Array.isArray(data) ? data : [data];
        for (const p of parts) sock.write(p);
        if (endAfterWrite) sock.end();
      });
    });
  }

  // A persistent raw connection: write bytes whenever, await the next N parsed responses.
  async connect() {
    const sock = net.connect(this.port, '127.0.0.1');
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    let buf = Buffer.alloc(0);
    const queue = [];
    const waiters = [];
    let closed = false;
    const closedPromise = new Promise((resolve) => sock.on('close', () => {
      try {
        const r = parseResponses(buf, { atEof: true }); // a response delimited by the close
        queue.push(...r.responses);
        buf = r.rest;
      } catch { /* incomplete */ }
      closed = true;
      resolve();
      wake();
    }));
    const wake = () => {
      while (waiters.length && (queue.length >= waiters[0].n || closed)) {
        const w = waiters.shift();
        w.resolve(queue.splice(0, w.n));
      }
    };
    sock.on('error', () => { /* surfaced as close */ });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const r = parseResponses(buf);
      queue.push(...r.responses);
      buf = r.rest;
      wake();
    });
    return {
      socket: sock,
      write: (data) => sock.write(data),
      // Resolves with the next `n` responses (fewer if the server closed the connection).
      read: (n = 1, timeoutMs = 10_000) => {
        const d = deadline(timeoutMs, `${n} response(s) on a raw connection`);
        const p = new Promise((resolve) => { waiters.push({ n, resolve }); wake(); });
        return Promise.race([p, d.promise]).finally(d.cancel);
      },
      get closed() { return closed; },
      whenClosed: (timeoutMs = 10_000) => {
        const d = deadline(timeoutMs, 'the server to close the connection');
        return Promise.race([closedPromise, d.promise]).finally(d.cancel);
      },
      close: () => sock.destroy(),
    };
  }

  // Sends request `head` then streams `totalBytes` of body (a generator of chunks) with
  // back-pressure, ignoring write errors (the server may stop reading), and resolves with the
  // first response (or none if the connection closed without one).
  rawStream(head, chunks, { timeoutMs = 20_000 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      let settled = false;
      let bytesWritten = 0;
      const d = deadline(timeoutMs, 'response to a streamed request');
      const finish = (res, err) => {
        if (settled) return;
        settled = true;
        d.cancel();
        sock.destroy();
        if (err) reject(err); else resolve({ response: res, bytesWritten });
      };
      d.promise.catch((e) => finish(null, e));
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        try {
          const r = parseResponses(buf);
          if (r.responses.length) finish(r.responses[0]);
        } catch (e) { finish(null, e); }
      });
      sock.on('error', () => { /* EPIPE/ECONNRESET once the server stops reading */ });
      sock.on('close', () => {
        let res = null;
        try { res = parseResponses(buf, { atEof: true }).responses[0] || null; } catch { /* none */ }
        finish(res);
      });
      sock.on('connect', async () => {
        sock.write(head);
        for (const c of chunks) {
          if (settled || sock.destroyed) return;
          bytesWritten += c.length;
          if (!sock.write(c)) {
            await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
          }
        }
      });
    });
  }

  // ---- the database ----
  // Runs SQL on this server's database, whichever the backend (the sqlite3 CLI, or the mariadb CLI
  // as root over the private server's socket); returns rows as objects keyed by column name, with
  // integers as numbers. Write portable SQL (no column aliases in WHERE, …).
  query(sql) {
    if (this.db !== 'mysql') return this.sql(sql);
    if (!this.database) throw new Error('query() before the first start(): no database yet');
    return this.mariadb.query(sql, { db: this.database });
  }

  // SQLite only (the sqlite3 CLI, on the data dir's database).
  sql(query) {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', this.dbPath, query], { encoding: 'utf8' });
    return out.trim() ? JSON.parse(out) : [];
  }

  // Lines of audit.jsonl, parsed (a torn last line, if any, is returned as { torn: text }).
  auditLines() {
    let text;
    try { text = fs.readFileSync(this.auditPath, 'utf8'); } catch (e) { if (e.code === 'ENOENT') return []; throw e; }
    return text.split('\n').filter((l) => l.length).map((l) => { try { return JSON.parse(l); } catch { return { torn: l }; } });
  }
}

// Asserts an RFC 9457 problem response with the project's fields; returns its body.
function assertProblem(res, status, code) {
  const assert = require('node:assert/strict');
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  const ct = res.headers['content-type'] || '';
  assert.match(ct, /^application\/problem\+json\b/, `content-type of a ${status}: ${ct}`);
  assert.ok(res.json && typeof res.json === 'object', `problem body is JSON: ${res.text}`);
  for (const f of ['type', 'title', 'detail', 'code', 'requestId']) {
    assert.equal(typeof res.json[f], 'string', `problem field ${f} is a string in ${res.text}`);
    assert.ok(res.json[f].length > 0, `problem field ${f} is not empty in ${res.text}`);
  }
  assert.equal(res.json.status, status, `problem.status in ${res.text}`);
  if (code) assert.equal(res.json.code, code);
  return res.json;
}

// The pids of a process's children (the server's hash workers), from /proc.
function childPids(pid) {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

// CPU time (user + system, ms) that a server's hash workers have used so far. Idle workers use
// none, so its growth says that a hash is running. (Their memory does not grow with a hash: each
// keeps its argon2 region from the start, src/adapters/sodium/argon2_memory.hpp.)
let clockTicksPerSecond;
function workersCpuMs(pid) {
  clockTicksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  let ticks = 0;
  for (const p of childPids(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch { /* gone meanwhile */ }
  }
  return (ticks * 1000) / clockTicksPerSecond;
}

// Rejects if `promise` takes longer than `ms` (scaled): a bound, never a wait; the tests go on events.
function within(ms, promise, what) {
  let t;
  return Promise.race([promise, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`no ${what} within ${ms} ms`)), scaled(ms)); })])
    .finally(() => clearTimeout(t));
}

// Problem bodies compared without their per-request fields.
function stripPerRequest(problem) {
  const { requestId, instance, ...rest } = problem || {};
  return rest;
}

module.exports = {
  REPO_ROOT, BIN, TEST_DB, SANITIZER, Server, scaled, MariaDb, newUser, assertProblem, randomId, eventually, parseResponses, stripPerRequest, requireNode, within,
  childPids, workersCpuMs,
  jwt: requireNode('jsonwebtoken'),
};
