'use strict';
// TLS on the API (--tls-cert/--tls-key, issue 14): everything `serve` answers works over TLS
// verified against the harness's CA (the REST API, keep-alive and pipelining, Socket.IO over wss
// and over https polling with its held replies), TLS below 1.2 and plain HTTP are refused without
// an HTTP answer, SIGHUP switches the certificate of new connections (existing ones continue), a
// pair that cannot be used on reload keeps the previous one, and bad settings stop the start with
// a clear message. Also: the head timeout's 408 and the silent idle close over TLS.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { once } = require('node:events');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { BIN, Server, newUser, parseResponses, requireNode, within } = require('./harness');
const { makeCa } = require('./support/server_certs');

const { io } = requireNode('socket.io-client');
const ADMIN_TOKEN = crypto.randomBytes(32).toString('base64url');

// One request over https (verified with `ca`): { status, headers, text, json, serial, reused }.
function httpsRequest(port, ca, method, urlPath, { json, headers = {}, agent = false } = {}) {
  const h = { ...headers };
  let payload;
  if (json !== undefined) {
    payload = Buffer.from(JSON.stringify(json));
    h['content-type'] = 'application/json';
    h['content-length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, ca, agent }, (res) => {
      const serial = res.socket.getPeerCertificate().serialNumber;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try { parsed = JSON.parse(text); } catch { parsed = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json: parsed, serial, reused: req.reusedSocket });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// The serial of the certificate a fresh TLS connection is served with.
async function servedSerial(port, ca) {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  try {
    await within(5000, once(socket, 'secureConnect'), 'TLS handshake');
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}

// Opens a connection (`connect()` returns the socket), writes `first`, and resolves with what
// came back and when the server closed it.
function exchange(connect, first, { timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect();
    const chunks = [];
    let error = null;
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => { if (first) socket.write(first); });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (e) => { error = error || e; });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - started, error });
    });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('the server never closed the connection')); }, timeoutMs);
  });
}

describe('TLS on the API', () => {
  let ca;
  let one;
  let two;
  let live; // the files the server is configured with; the tests replace their contents
  let server;

  before(async () => {
    ca = makeCa();
    one = ca.serverPair('one', '0A01');
    two = ca.serverPair('two', '0B02');
    live = { cert: path.join(ca.dir, 'live.pem'), key: path.join(ca.dir, 'live.key') };
    fs.copyFileSync(one.cert, live.cert);
    fs.copyFileSync(one.key, live.key);
    // Through the environment (REGISTRAR_TLS_CERT/KEY); the settings tests below use the flags.
    server = await Server.start({
      // An idle timeout long enough for the reload test's keep-alive connection to outlive the reload.
      args: ['--header-timeout', '2', '--idle-timeout', '6'],
      env: { REGISTRAR_TLS_CERT: live.cert, REGISTRAR_TLS_KEY: live.key, REGISTRAR_ADMIN_TOKEN: ADMIN_TOKEN },
    });
  });
  after(async () => {
    try { if (server) await server.stopCleanly(); } finally {
      if (server) await server.dispose();
      if (ca) ca.dispose();
    }
  });

  it('says https in its listening line and logs the certificate it loaded', () => {
    const listening = server.logs.find((l) => l.msg === 'listening');
    assert.equal(listening.scheme, 'https');
    const loaded = server.logs.find((l) => l.msg === 'TLS certificate loaded');
    assert.ok(loaded, 'a "TLS certificate loaded" line');
    assert.equal(loaded.sha256, one.fingerprint256);
    assert.doesNotMatch(server.logText(), /PRIVATE KEY/);
  });

  it('serves the REST API over TLS, verified with the CA', async () => {
    const health = await httpsRequest(server.port, ca.ca, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.serial, one.serial);
    const user = newUser('tls');
    const created = await httpsRequest(server.port, ca.ca, 'POST', '/auth/register', { json: user });
    assert.equal(created.status, 201, created.text);
    const me = await httpsRequest(server.port, ca.ca, 'GET', '/users/me',
      { headers: { authorization: `Bearer ${created.json.accessToken}` } });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.username, user.username);
  });

  it('keeps connections alive and answers pipelined requests in order over TLS', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: ca.ca, servername: 'localhost' });
    try {
      await within(5000, once(socket, 'secureConnect'), 'TLS handshake');
      let buf = Buffer.alloc(0);
      const responses = [];
      const done = new Promise((resolve, reject) => {
        socket.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          const r = parseResponses(buf);
          responses.push(...r.responses);
          buf = r.rest;
          if (responses.length >= 3) resolve();
        });
        socket.on('close', () => reject(new Error(`closed after ${responses.length} responses`)));
      });
      // Two requests in one write, then a third on the same connection.
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
      await within(5000, done, 'three answers');
      assert.deepEqual(responses.map((r) => r.status), [200, 404, 200]);
    } finally {
      socket.destroy();
    }
  });

  it('refuses plain HTTP on the TLS port without an HTTP answer', async () => {
    const { text } = await exchange(() => net.connect(server.port, '127.0.0.1'), 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.doesNotMatch(text, /HTTP\/1/);
    // At most a TLS alert record (content type 21), never plaintext.
    if (text.length > 0) assert.equal(text.charCodeAt(0), 0x15);
  });

  it('refuses TLS 1.1 (a client that would speak 1.1 or 1.2 gets 1.2)', async () => {
    // The client's security level 0 lets it offer TLS 1.1 at all: the refusal is the server's.
    const client = { host: '127.0.0.1', port: server.port, ca: ca.ca, servername: 'localhost', ciphers: 'DEFAULT@SECLEVEL=0' };
    const old = tls.connect({ ...client, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' });
    const [err] = await within(5000, once(old, 'error'), 'the TLS 1.1 handshake to fail');
    old.destroy();
    assert.match(`${err.code} ${err.message}`, /ALERT_PROTOCOL_VERSION|protocol version/i);
    const fallback = tls.connect({ ...client, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.2' });
    try {
      await within(5000, once(fallback, 'secureConnect'), 'the TLS 1.2 handshake');
      assert.equal(fallback.getProtocol(), 'TLSv1.2');
    } finally { fallback.destroy(); }
  });

  it('carries Socket.IO over wss and over https long-polling', async () => {
    const options = { auth: { token: ADMIN_TOKEN }, ca: ca.ca, reconnection: false };
    const ws = io(`https://127.0.0.1:${server.port}`, { ...options, transports: ['websocket'] });
    const polling = io(`https://127.0.0.1:${server.port}`, { ...options, transports: ['polling'] });
    try {
      await within(5000, Promise.all([once(ws, 'connect'), once(polling, 'connect')]), 'both connections');
      assert.equal(ws.io.engine.transport.name, 'websocket');
      assert.equal(polling.io.engine.transport.name, 'polling');
      const seen = { ws: [], polling: [] };
      const both = Promise.all([once(ws, 'user.registered'), once(polling, 'user.registered')]);
      ws.on('user.registered', (u) => seen.ws.push(u.username));
      polling.on('user.registered', (u) => seen.polling.push(u.username));
      const user = newUser('sio-tls');
      const created = await httpsRequest(server.port, ca.ca, 'POST', '/auth/register', { json: user });
      assert.equal(created.status, 201, created.text);
      await within(10_000, both, 'user.registered on both sockets');
      assert.ok(seen.ws.includes(user.username));
      assert.ok(seen.polling.includes(user.username));
    } finally {
      ws.close();
      polling.close();
    }
  });

  it('answers 408 to a head that does not arrive within the head timeout, over TLS', async () => {
    const { text, closedAfterMs } = await exchange(
      () => tls.connect({ host: '127.0.0.1', port: server.port, ca: ca.ca, servername: 'localhost' }),
      'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const [res] = parseResponses(Buffer.from(text, 'latin1'), { atEof: true }).responses;
    assert.ok(res, `an answer: ${JSON.stringify(text)}`);
    assert.equal(res.status, 408);
    assert.equal(res.headers.connection, 'close');
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(res.json.code, 'request_timeout');
    assert.ok(closedAfterMs >= 1500 && closedAfterMs < 10_000, `closed after ${closedAfterMs} ms`);
  });

  it('closes an idle keep-alive connection silently, over TLS', async () => {
    const { text, closedAfterMs } = await exchange(
      () => tls.connect({ host: '127.0.0.1', port: server.port, ca: ca.ca, servername: 'localhost' }),
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { responses } = parseResponses(Buffer.from(text, 'latin1'), { atEof: true });
    assert.deepEqual(responses.map((r) => r.status), [200]);
    assert.ok(closedAfterMs >= 5000 && closedAfterMs < 15_000, `closed after ${closedAfterMs} ms`);
  });

  it('SIGHUP switches new connections to the new certificate; a connection already open continues', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await httpsRequest(server.port, ca.ca, 'GET', '/healthz', { agent });
      assert.equal(before.serial, one.serial);

      fs.copyFileSync(two.cert, live.cert);
      fs.copyFileSync(two.key, live.key);
      const from = server.lines.length;
      process.kill(server.pid, 'SIGHUP');
      const reloaded = await server.waitForLog((l) => l.msg === 'TLS certificate reloaded', { fromIndex: from, what: 'the reload' });
      assert.equal(reloaded.json.sha256, two.fingerprint256);

      assert.equal(await servedSerial(server.port, ca.ca), two.serial);
      const fresh = await httpsRequest(server.port, ca.ca, 'GET', '/healthz');
      assert.equal(fresh.status, 200);
      assert.equal(fresh.serial, two.serial);
      // The keep-alive connection from before the reload still serves, with its certificate.
      const after = await httpsRequest(server.port, ca.ca, 'GET', '/healthz', { agent });
      assert.equal(after.status, 200);
      assert.equal(after.reused, true);
      assert.equal(after.serial, one.serial);
    } finally {
      agent.destroy();
    }
  });

  it('a pair that cannot be used on reload is logged and the previous certificate keeps serving', async () => {
    const reloadFails = async (why) => {
      const from = server.lines.length;
      process.kill(server.pid, 'SIGHUP');
      const failed = await server.waitForLog((l) => l.msg.startsWith('TLS certificate reload failed'),
        { fromIndex: from, what: 'the failed reload' });
      assert.equal(failed.json.level, 'error');
      assert.match(failed.json.error, why);
      // Still the certificate from before the failed reload (two, from the test above).
      assert.equal(await servedSerial(server.port, ca.ca), two.serial);
      const res = await httpsRequest(server.port, ca.ca, 'GET', '/healthz');
      assert.equal(res.status, 200);
    };
    fs.copyFileSync(two.cert, live.cert);
    fs.copyFileSync(two.key, live.key);
    fs.writeFileSync(live.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await reloadFails(/--tls-cert .*live\.pem holds no usable PEM certificate/);
    fs.copyFileSync(two.cert, live.cert);
    fs.copyFileSync(one.key, live.key); // one's key under two's certificate
    await reloadFails(/--tls-key .*live\.key is not the private key of the certificate in --tls-cert/);
    fs.rmSync(live.key);
    await reloadFails(/cannot read --tls-key .*live\.key: No such file or directory/);
    assert.doesNotMatch(server.logText(), /PRIVATE KEY/);
  });
});

describe('TLS settings that cannot be used', () => {
  let ca;
  let one;
  let two;
  let dataDir;
  before(() => {
    ca = makeCa();
    one = ca.serverPair('one', '0C01');
    two = ca.serverPair('two', '0C02');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-tls-settings-'));
  });
  after(() => {
    ca.dispose();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // Runs serve; it must stop before listening, with exit code 2 and one line on stderr.
  const refused = (args, env = {}) => {
    const r = spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
    assert.equal(r.status, 2, `exit ${r.status}; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /"listening"/);
    return r.stderr.trim();
  };

  it('only one of the two files', () => {
    assert.match(refused(['--tls-cert', one.cert]), /^registrar: --tls-cert needs --tls-key \(REGISTRAR_TLS_KEY\)/);
    assert.match(refused([], { REGISTRAR_TLS_KEY: one.key }), /^registrar: --tls-key needs --tls-cert \(REGISTRAR_TLS_CERT\)/);
  });

  it('a file that is missing or holds no PEM', () => {
    const missing = path.join(ca.dir, 'missing.pem');
    assert.match(refused(['--tls-cert', missing, '--tls-key', one.key]),
      /^registrar: cannot read --tls-cert .*missing\.pem: No such file or directory$/);
    assert.match(refused(['--tls-cert', one.key, '--tls-key', one.key]),
      /^registrar: --tls-cert .*one\.key holds no usable PEM certificate/);
    assert.match(refused(['--tls-cert', one.cert, '--tls-key', one.cert]),
      /^registrar: --tls-key .*one\.pem holds no usable unencrypted PEM private key/);
  });

  it('a key that is not the certificate\'s', () => {
    assert.match(refused(['--tls-cert', one.cert, '--tls-key', two.key]),
      /^registrar: --tls-key .*two\.key is not the private key of the certificate in --tls-cert .*one\.pem$/);
  });
});
