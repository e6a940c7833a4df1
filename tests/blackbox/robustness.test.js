'use strict';
// The HTTP layer under hostile or unusual clients: keep-alive, pipelining, huge and malformed
// requests; and what the logs may and may not contain.
const { describe, it, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Server, newUser, assertProblem } = require('./harness');

const MB = 1024 * 1024;

function postHead(path, { length, chunked = false, host = '127.0.0.1' } = {}) {
  return [
    `POST ${path} HTTP/1.1`, `Host: ${host}`, 'Content-Type: application/json',
    chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`, '', '',
  ].join('\r\n');
}

function* bodyChunks(total, size = 64 * 1024, { chunked = false } = {}) {
  // A JSON-looking body: {"email":"xxxx…"} of `total` bytes.
  const open = Buffer.from('{"email":"');
  const close = Buffer.from('"}');
  const fill = Buffer.alloc(size, 'x');
  const frame = (b) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b);
  yield frame(open);
  let left = total - open.length - close.length;
  while (left > 0) {
    const n = Math.min(left, size);
    yield frame(n === size ? fill : fill.subarray(0, n));
    left -= n;
  }
  yield frame(close);
  if (chunked) yield Buffer.from('0\r\n\r\n');
}

function registerRequest(user, { connection } = {}) {
  const body = JSON.stringify(user);
  return [
    'POST /auth/register HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`, ...(connection ? [`Connection: ${connection}`] : []), '', body,
  ].join('\r\n');
}

const get = (path, extra = []) => [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...extra, '', ''].join('\r\n');

describe('robustness', () => {
  let server;
  let alice;
  // A fresh server per test, stopped after it with an exit-code check: a crash is pinned on the
  // test that caused it, and every test also exercises a graceful shutdown.
  beforeEach(async () => {
    server = await Server.start();
    alice = await server.registerNew('rob');
  });
  afterEach(async () => {
    try { await server.stopCleanly(); } finally { await server.dispose(); }
  });

  const stillServing = async () => {
    const res = await server.request('GET', '/healthz', { agent: false });
    assert.equal(res.status, 200, 'server keeps serving');
  };

  it('keep-alive: several requests, one after another, on one socket', async () => {
    const conn = await server.connect();
    try {
      conn.write(get('/healthz'));
      assert.equal((await conn.read(1))[0].status, 200);
      conn.write(get('/users/me', [`Authorization: Bearer ${alice.token}`]));
      const [me] = await conn.read(1);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.id, alice.id);
      const bob = newUser('ka');
      conn.write(registerRequest(bob));
      const [reg] = await conn.read(1);
      assert.equal(reg.status, 201, reg.text);
      conn.write(get('/no/such/route'));
      assert.equal((await conn.read(1))[0].status, 404, 'an error response keeps the connection too');
      conn.write(get('/healthz'));
      assert.equal((await conn.read(1))[0].status, 200);
      assert.equal(conn.closed, false);
    } finally {
      conn.close();
    }
  });

  it('pipelining: requests written at once are answered in order', async () => {
    const carol = newUser('pipe');
    const { responses } = await server.raw(
      registerRequest(carol) + get('/healthz') + get('/users/me', [`Authorization: Bearer ${alice.token}`])
        + get('/users/me') + registerRequest(carol),
      { expect: 5 },
    );
    assert.deepEqual(responses.map((r) => r.status), [201, 200, 200, 401, 409]);
    assert.equal(responses[0].json.user.email, carol.email, 'the slow register (argon2) is answered first');
    assert.equal(responses[2].json.id, alice.id);
  });

  it('pipelining in one write of many requests', async () => {
    const n = 50;
    const { responses } = await server.raw(Array.from({ length: n }, (_, i) => get(i % 2 ? '/healthz' : '/nope')).join(''), { expect: n });
    assert.deepEqual(responses.map((r) => r.status), Array.from({ length: n }, (_, i) => (i % 2 ? 200 : 404)));
  });

  it('Connection: close is honoured', async () => {
    const conn = await server.connect();
    conn.write(get('/healthz', ['Connection: close']));
    const [res] = await conn.read(1);
    assert.equal(res.status, 200);
    assert.match(res.headers.connection || '', /close/i);
    await conn.whenClosed();
  });

  it('HTTP/1.0 without keep-alive gets an answer and a close', async () => {
    const conn = await server.connect();
    conn.write('GET /healthz HTTP/1.0\r\n\r\n');
    const [res] = await conn.read(1);
    assert.equal(res.status, 200);
    await conn.whenClosed();
  });

  it('a 10 MB body with Content-Length → 413, and the server keeps serving', async () => {
    const total = 10 * MB;
    const { response } = await server.rawStream(postHead('/auth/register', { length: total }), bodyChunks(total));
    assert.ok(response, 'a response arrives before the connection closes');
    assertProblem(response, 413);
    await stillServing();
  });

  it('a 10 MB chunked body → 413, and the server keeps serving', async () => {
    const total = 10 * MB;
    const { response } = await server.rawStream(postHead('/auth/register', { chunked: true }), bodyChunks(total, 64 * 1024, { chunked: true }));
    assert.ok(response, 'a response arrives before the connection closes');
    assertProblem(response, 413);
    await stillServing();
  });

  it('a 10 MB body via the HTTP client → 413', async () => {
    const body = Buffer.alloc(10 * MB, 'a');
    let res;
    try {
      res = await server.request('POST', '/auth/login', { body, headers: { 'content-type': 'application/json' }, agent: false });
    } catch (e) {
      assert.fail(`the client got no response, only ${e.code || e.message}`);
    }
    assertProblem(res, 413);
    await stillServing();
  });

  it('garbage instead of a request line → 400, and the server keeps serving', async () => {
    for (const junk of ['HELLO\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 'GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n']) {
      const { responses, closed } = await server.raw(junk, { expect: 1 });
      assert.ok(responses.length === 1 || closed, 'a response or a close');
      if (responses.length) assert.ok(responses[0].status >= 400 && responses[0].status < 500, `status ${responses[0].status} for ${JSON.stringify(junk)}`);
    }
    await stillServing();
  });

  it('a bad Content-Length → 400, and the server keeps serving', async () => {
    const { responses } = await server.raw('POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}', { expect: 1 });
    assert.equal(responses.length, 1);
    assert.equal(responses[0].status, 400);
    await stillServing();
  });

  it('an oversized header block → 431 (or 400), and the server keeps serving', async () => {
    const { responses, closed } = await server.raw(get('/healthz', [`X-Big: ${'h'.repeat(64 * 1024)}`]), { expect: 1 });
    assert.ok(responses.length === 1 || closed);
    if (responses.length) assert.ok([400, 431].includes(responses[0].status), `status ${responses[0].status}`);
    await stillServing();
  });

  it('a client that disconnects mid-body does not disturb the server', async () => {
    for (let i = 0; i < 20; i++) {
      const conn = await server.connect();
      conn.write(`${postHead('/auth/register', { length: 1000 })}{"email":`);
      conn.close();
    }
    await stillServing();
  });

  it('300 concurrent connections are all served', async () => {
    const results = await Promise.all(Array.from({ length: 300 }, () => server.me(alice.token).then((r) => r.status, (e) => e.code)));
    const bad = results.filter((s) => s !== 200);
    assert.deepEqual(bad, [], `non-200 outcomes: ${[...new Set(bad)].join(',')}`);
  });

  it('logs: every stdout line is a JSON object with ts, level and msg; request lines carry requestId', async () => {
    await server.request('GET', '/healthz');
    await server.request('GET', '/nope');
    await server.request('POST', '/auth/register', { body: '{"x":', headers: { 'content-type': 'application/json' } });
    const marker = await server.request('GET', '/no-such-route-marker');
    await server.waitForLog((l) => l.requestId === marker.json.requestId, { what: 'the marker request log line' });
    const stdout = server.lines.filter((l) => l.stream === 'stdout');
    assert.ok(stdout.length > 0);
    const notJson = stdout.filter((l) => !l.json || typeof l.json !== 'object');
    assert.deepEqual(notJson.map((l) => l.text), [], 'non-JSON stdout lines');
    for (const { json } of stdout) {
      assert.equal(typeof json.ts, 'string', JSON.stringify(json));
      assert.equal(typeof json.level, 'string', JSON.stringify(json));
      assert.equal(typeof json.msg, 'string', JSON.stringify(json));
    }
    const requestLines = stdout.filter((l) => ['method', 'path', 'target', 'status'].some((k) => k in l.json));
    assert.ok(requestLines.length > 0, 'requests are logged');
    const without = requestLines.filter((l) => typeof l.json.requestId !== 'string' || !l.json.requestId);
    assert.deepEqual(without.map((l) => l.text), [], 'request log lines without requestId');
  });

  it('logs never contain passwords, tokens or the JWT secret', async () => {
    const dave = newUser('secret');
    const reg = await server.register(dave);
    assert.equal(reg.status, 201, reg.text);
    const login = await server.login({ username: dave.username, password: dave.password });
    assert.equal(login.status, 200);
    await server.login({ email: dave.email, password: `${dave.password}-wrong` });
    const weak = 'qwerty123456';
    await server.register({ ...newUser('weak'), password: weak });
    await server.me(login.json.accessToken);
    await server.me(`${login.json.accessToken}x`);
    // Make sure the lines of these requests have been written before reading the log.
    const marker = await server.request('GET', '/no-such-route-marker');
    await server.waitForLog((l) => l.requestId === marker.json.requestId, { what: 'the marker request log line' });
    const text = server.logText();
    const secret = server.jwtSecret();
    const hash = server.query(`SELECT password_hash FROM users WHERE id = '${reg.json.user.id}'`)[0].password_hash;
    const leaks = {
      password: dave.password, weakPassword: weak, registerToken: reg.json.accessToken,
      loginToken: login.json.accessToken, tokenSignature: login.json.accessToken.split('.')[2],
      jwtSecret: secret, passwordHash: hash, aliceToken: alice.token, alicePassword: alice.user.password,
    };
    for (const [what, value] of Object.entries(leaks)) {
      assert.ok(!text.includes(value), `${what} appears in the log`);
    }
  });
});
