'use strict';
// Client mode (--notify-url): registrar's Create_User worker as a Socket.IO client of an existing
// notification server, the Node service's PORT_MESSAGES_USERS server — here the real one,
// ../shared/peers/node-seed/notify.js, on Node's socket.io. A user's stock socket.io-client is
// connected to notify.js with a token whose `sub` is its verification session; registrar emits
// `notify` {id, success, message} and notify.js forwards it as `notification` to room `id`.
//
// To make "the user is connected before registrar's client flushes" an event and not a race, the
// tests that bring notify.js up late reach it from registrar through a gate (a TCP forwarder the
// test opens and closes): closed, registrar cannot connect — exactly as with notify.js down — and
// it is opened once the user's client is in its room.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Server, BIN, REPO_ROOT, newUser, requireNode, within, scaled } = require('./harness');
const { newPhone, verificationSession } = require('./support/verification');

const { io } = requireNode('socket.io-client');

const NOTIFY_JS = path.resolve(REPO_ROOT, '..', 'shared', 'peers', 'node-seed', 'notify.js');
const NODE_MODULES = path.join(REPO_ROOT, 'tests', 'node', 'node_modules');
const SECRET = `client-mode-${crypto.randomBytes(24).toString('hex')}`;  // registrar's and notify.js's

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// notify.js on `port`, ready once it prints its "listening" line.
async function startNotify(port) {
  const child = spawn(process.execPath, [NOTIFY_JS], {
    env: { ...process.env, NODE_PATH: NODE_MODULES, PORT_MESSAGES_USERS: String(port), JWT_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); }));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const ready = new Promise((resolve) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => { if (line.includes(`listening on ${port}`)) resolve(); });
  });
  await within(10000, Promise.race([ready, exited.then((st) => { throw new Error(`notify.js exited ${JSON.stringify(st)}: ${stderr}`); })]),
    'notify.js listening');
  return { child, kill: async () => { child.kill('SIGKILL'); await exited; } };
}

// A TCP forwarder from `port` to notify.js's port, listening only while open.
class Gate {
  constructor(port, target) { this.port = port; this.target = target; this.server = null; this.sockets = new Set(); }
  async open() {
    this.server = net.createServer((down) => {
      const up = net.connect(this.target, '127.0.0.1');
      for (const s of [down, up]) { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); s.on('error', () => { down.destroy(); up.destroy(); }); }
      down.pipe(up);
      up.pipe(down);
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
  }
  async close() {
    if (!this.server) return;
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = null;
  }
}

// A user's socket.io-client on notify.js, in the room of its session (the token's `sub`).
async function userOnNotify(port, token) {
  const socket = io(`http://127.0.0.1:${port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  await within(5000, once(socket, 'connect'), 'the user\'s connection to notify.js');
  return socket;
}

// A Create_User job (POST /users) for a new verified session; resolves once it is queued.
async function submitJob(server, session, phone) {
  const user = newUser('cm');
  const res = await server.request('POST', '/users', { json: { id: session.id, token: session.token, code: session.code,
    phone, password: user.password, username: user.username, image: '' } });
  assert.equal(res.status, 202, res.text);
}

// The worker's outcome in registrar's log: the job ended and its notification was handed over.
function outcomeLogged(server, id) {
  return server.waitForLog((l) => l.msg === 'notification' && l.id === id, { timeoutMs: 15000, what: `the outcome of ${id}` });
}

describe('Socket.IO client mode: registrar notifies an existing notification server (notify.js)', () => {
  it('a Create_User outcome reaches the user on notify.js, and on registrar\'s own /socket.io/ too', async () => {
    const port = await freePort();
    const notify = await startNotify(port);
    const server = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--notify-url', `http://127.0.0.1:${port}`] });
    const sockets = [];
    try {
      await server.waitForLog((l) => l.msg === 'notification server connected', { what: 'registrar connected to notify.js' });
      const phone = newPhone();
      const session = await verificationSession(server, phone);
      const onNotify = await userOnNotify(port, session.token);
      const onRegistrar = io(`http://127.0.0.1:${server.port}`, { auth: { token: session.token }, transports: ['websocket'], reconnection: false });
      sockets.push(onNotify, onRegistrar);
      await within(5000, once(onRegistrar, 'connect'), 'the user\'s connection to registrar');
      const viaNotify = once(onNotify, 'notification');
      const viaRegistrar = once(onRegistrar, 'notification');
      await submitJob(server, session, phone);
      const expected = { id: session.id, success: true, message: 'User created successfully' };
      assert.deepEqual((await within(15000, viaNotify, 'the notification through notify.js'))[0], expected);
      assert.deepEqual((await within(15000, viaRegistrar, 'the notification on registrar\'s hub'))[0], expected);
      // A refusal is a notification too (success false, the Node service's message).
      const phone2 = newPhone();
      const other = await verificationSession(server, phone2);
      const onNotify2 = await userOnNotify(port, other.token);
      sockets.push(onNotify2);
      const refused = once(onNotify2, 'notification');
      await submitJob(server, { ...other, code: other.code === '000000' ? '111111' : '000000' }, phone2);
      assert.deepEqual((await within(15000, refused, 'the refusal through notify.js'))[0],
        { id: other.id, success: false, message: 'The verification code is incorrect' });
      await server.stopCleanly();
    } finally {
      for (const s of sockets) s.close();
      await server.dispose();
      await notify.kill();
    }
  });

  it('PORT_MESSAGES_USERS alone (the Node service\'s variable) names the notification server on this host', async () => {
    const port = await freePort();
    const notify = await startNotify(port);
    const server = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET, PORT_MESSAGES_USERS: String(port) } });
    let onNotify;
    try {
      await server.waitForLog((l) => l.msg === 'notification server connected', { what: 'registrar connected to notify.js' });
      const phone = newPhone();
      const session = await verificationSession(server, phone);
      onNotify = await userOnNotify(port, session.token);
      const viaNotify = once(onNotify, 'notification');
      await submitJob(server, session, phone);
      assert.deepEqual((await within(15000, viaNotify, 'the notification through notify.js'))[0],
        { id: session.id, success: true, message: 'User created successfully' });
      await server.stopCleanly();
    } finally {
      if (onNotify) onNotify.close();
      await server.dispose();
      await notify.kill();
    }
  });

  it('notify.js started after registrar: the notifications that waited are delivered once it is up', async () => {
    const [port, gatePort] = [await freePort(), await freePort()];
    const gate = new Gate(gatePort, port);
    const server = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--notify-url', `http://127.0.0.1:${gatePort}`] });
    const sockets = [];
    let notify;
    try {
      await server.waitForLog((l) => l.msg.startsWith('cannot reach the notification server'), { what: 'the failed first attempt' });
      const jobs = [];
      for (let i = 0; i < 2; i++) {
        const phone = newPhone();
        const session = await verificationSession(server, phone);
        await submitJob(server, session, phone);
        await outcomeLogged(server, session.id);  // done, and waiting in the client's queue
        jobs.push(session);
      }
      notify = await startNotify(port);
      const received = [];
      for (const session of jobs) {
        const socket = await userOnNotify(port, session.token);
        sockets.push(socket);
        received.push(once(socket, 'notification'));
      }
      await gate.open();
      for (const [i, session] of jobs.entries()) {
        const [n] = await within(30000, received[i], `the buffered notification ${i}`);
        assert.deepEqual(n, { id: session.id, success: true, message: 'User created successfully' });
      }
      const connected = await server.waitForLog((l) => l.msg === 'notification server connected', { what: 'the connection' });
      assert.equal(connected.json.pending, 2, connected.text);
      await server.stopCleanly();
    } finally {
      for (const s of sockets) s.close();
      await server.dispose();
      await gate.close();
      if (notify) await notify.kill();
    }
  });

  it('notify.js killed mid-way and restarted: registrar reconnects and delivers what came meanwhile', async () => {
    const [port, gatePort] = [await freePort(), await freePort()];
    const gate = new Gate(gatePort, port);
    let notify = await startNotify(port);
    await gate.open();
    const server = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--notify-url', `http://127.0.0.1:${gatePort}`] });
    const sockets = [];
    try {
      await server.waitForLog((l) => l.msg === 'notification server connected', { what: 'the first connection' });
      const phone1 = newPhone();
      const before = await verificationSession(server, phone1);
      const user1 = await userOnNotify(port, before.token);
      sockets.push(user1);
      const first = once(user1, 'notification');
      await submitJob(server, before, phone1);
      assert.equal((await within(15000, first, 'the notification before the kill'))[0].id, before.id);

      const lost = server.waitForLog((l) => l.msg === 'notification server connection lost; reconnecting', { what: 'the lost connection' });
      await notify.kill();
      await gate.close();
      await lost;
      const phone2 = newPhone();
      const during = await verificationSession(server, phone2);
      await submitJob(server, during, phone2);
      await outcomeLogged(server, during.id);

      notify = await startNotify(port);
      const user2 = await userOnNotify(port, during.token);
      sockets.push(user2);
      const second = once(user2, 'notification');
      const reconnected = server.waitForLog((l) => l.msg === 'notification server connected' && l.pending >= 0,
        { what: 'the reconnection', fromIndex: server.lines.length });
      await gate.open();
      assert.deepEqual((await within(30000, second, 'the notification after the restart'))[0],
        { id: during.id, success: true, message: 'User created successfully' });
      await reconnected;
      await server.stopCleanly();
    } finally {
      for (const s of sockets) s.close();
      await server.dispose();
      await gate.close();
      await notify.kill();
    }
  });

  it('registrar worker (Bull on Redis, a Node producer) notifies notify.js the same way', async () => {
    const { startRedis } = require('./support/redis');
    const Queue = requireNode('bull');
    const redis = await startRedis();
    const port = await freePort();
    const notify = await startNotify(port);
    let api;
    let worker;
    let queue;
    let user;
    try {
      // The API issues the verification session; only the worker runs jobs (same data dir: one deployment).
      api = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--redis-url', redis.url, '--worker-in-serve', 'false'] });
      worker = await Server.start({ command: 'worker', dataDir: api.dataDir, env: { REGISTRAR_JWT_SECRET: SECRET },
        args: ['--redis-url', redis.url, '--notify-url', `ws://127.0.0.1:${port}`] });
      await worker.waitForLog((l) => l.msg === 'notification server connected', { what: 'the worker connected to notify.js' });
      const phone = newPhone();
      const session = await verificationSession(api, phone);
      user = await userOnNotify(port, session.token);
      const arrived = once(user, 'notification');
      queue = new Queue('Create_User', redis.url);
      const account = newUser('cmw');
      const job = await queue.add({ id: session.id, token: session.token, code: session.code, phone,
        password: account.password, username: account.username, image: '' });
      const expected = { id: session.id, success: true, message: 'User created successfully' };
      const result = await within(20000, job.finished(), 'the job\'s result');  // the record (with the userId)
      assert.deepEqual({ id: result.id, success: result.success, message: result.message }, expected);
      assert.deepEqual((await within(15000, arrived, 'the notification through notify.js'))[0], expected);
      await worker.stopCleanly();
      await api.stopCleanly();
    } finally {
      if (user) user.close();
      if (queue) await queue.close();
      if (worker) await worker.dispose();
      if (api) await api.dispose();
      await redis.dispose();
      await notify.kill();
    }
  });

  it('over TLS (https://): the certificate is verified against --notify-ca-file; another CA is refused', async () => {
    // A Socket.IO server behind https with notify.js's forwarding (notify.js itself speaks plain
    // HTTP): a CA, another CA that signed nothing, and a certificate for 127.0.0.1 signed by the first.
    const { Server: SioServer } = requireNode('socket.io');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-notify-tls-'));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    for (const ca of ['ca', 'other-ca']) {
      execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', path.join(dir, `${ca}.key`), '-out', path.join(dir, `${ca}.crt`),
        '-days', '2', '-subj', `/CN=registrar-test-${ca}`], { stdio: 'pipe' });
    }
    execFileSync('openssl', ['req', ...ec, '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.csr'), '-subj', '/CN=localhost'], { stdio: 'pipe' });
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    execFileSync('openssl', ['x509', '-req', '-in', path.join(dir, 'server.csr'), '-CA', path.join(dir, 'ca.crt'), '-CAkey', path.join(dir, 'ca.key'),
      '-CAcreateserial', '-out', path.join(dir, 'server.crt'), '-days', '2', '-extfile', path.join(dir, 'ext.cnf')], { stdio: 'pipe' });
    const httpsServer = https.createServer({ key: fs.readFileSync(path.join(dir, 'server.key')), cert: fs.readFileSync(path.join(dir, 'server.crt')) });
    const sio = new SioServer(httpsServer);
    const received = [];
    const notified = new (require('node:events').EventEmitter)();
    sio.on('connection', (socket) => socket.on('notify', (n) => { received.push(n); notified.emit('notify', n); }));
    httpsServer.listen(0, '127.0.0.1');
    await once(httpsServer, 'listening');
    const url = `https://127.0.0.1:${httpsServer.address().port}`;
    const servers = [];
    try {
      // Another CA: the handshake fails and says why; nothing is delivered.
      const refused = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--notify-url', url, '--notify-ca-file', path.join(dir, 'other-ca.crt')] });
      servers.push(refused);
      const failure = await refused.waitForLog((l) => l.msg.startsWith('cannot reach the notification server'), { what: 'the refused handshake' });
      assert.match(failure.json.error, /TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate verify failed/, failure.text);
      await refused.stopCleanly();
      assert.equal(sio.engine.clientsCount, 0);

      const good = await Server.start({ env: { REGISTRAR_JWT_SECRET: SECRET }, args: ['--notify-url', url, '--notify-ca-file', path.join(dir, 'ca.crt')] });
      servers.push(good);
      await good.waitForLog((l) => l.msg === 'notification server connected', { what: 'the TLS connection' });
      const phone = newPhone();
      const session = await verificationSession(good, phone);
      const arrived = once(notified, 'notify');
      await submitJob(good, session, phone);
      assert.deepEqual((await within(15000, arrived, 'the notification over TLS'))[0],
        { id: session.id, success: true, message: 'User created successfully' });
      await good.stopCleanly();
      assert.equal(received.length, 1);
    } finally {
      for (const s of servers) await s.dispose();
      sio.close();
      httpsServer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad --notify-url or REGISTRAR_NOTIFY_URL is a one-line usage error (exit 2)', () => {
    for (const [args, env, expected] of [
      [['--notify-url', 'ftp://127.0.0.1:3101'], {}, /invalid --notify-url "ftp:\/\/127\.0\.0\.1:3101" \(REGISTRAR_NOTIFY_URL\): expected http\[s\]:\/\/HOST/],
      [[], { REGISTRAR_NOTIFY_URL: 'http://user:pw@127.0.0.1:3101' }, /invalid --notify-url "http:\/\/user:\*\*\*@127\.0\.0\.1:3101" \(REGISTRAR_NOTIFY_URL, from the environment\): user:password@ is not supported/],
      [['--notify-url', 'http://127.0.0.1:0'], {}, /port must be from 1 to 65535/],
      [['--notify-path', 'socket.io'], {}, /invalid --notify-path "socket\.io" \(REGISTRAR_NOTIFY_PATH\): expected a path starting with \//],
    ]) {
      for (const command of ['serve', 'worker']) {
        const r = spawnSync(BIN, [command, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: scaled(10000) });
        assert.equal(r.status, 2, `${command} ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, expected);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.doesNotMatch(r.stderr, /pw@/);
      }
    }
    // A CA file that cannot be read: found when the client is made, still a usage error.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-notify-ca-'));
    try {
      const r = spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--notify-url', 'https://127.0.0.1:3101',
        '--notify-ca-file', path.join(dir, 'missing.pem')], { encoding: 'utf8', timeout: scaled(20000) });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^registrar: --notify-ca-file: cannot load the CA file .*missing\.pem/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
