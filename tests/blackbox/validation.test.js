'use strict';
// Invalid input: every failure is a clear 4xx application/problem+json, and the server keeps serving.
const { describe, it, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { Server, newUser, randomId, assertProblem } = require('./harness');

function fieldsOf(problem) {
  assert.ok(Array.isArray(problem.errors), `errors[] in ${JSON.stringify(problem)}`);
  for (const e of problem.errors) {
    assert.equal(typeof e.field, 'string');
    assert.equal(typeof e.code, 'string');
    assert.equal(typeof e.message, 'string');
  }
  return [...new Set(problem.errors.map((e) => e.field))].sort();
}

describe('validation', () => {
  let server;
  // A fresh server per test, stopped after it with an exit-code check: a crash is pinned on the
  // test that caused it.
  beforeEach(async () => { server = await Server.start(); });
  afterEach(async () => {
    // Whatever this case sent, the server still answers, and later exits cleanly.
    try {
      const res = await server.request('GET', '/healthz', { agent: false });
      assert.equal(res.status, 200, 'server keeps serving');
      await server.stopCleanly();
    } finally {
      await server.dispose();
    }
  });

  const post = (body, contentType = 'application/json') =>
    server.request('POST', '/auth/register', { body, headers: { 'content-type': contentType } });

  it('malformed JSON → 400', async () => {
    for (const body of ['{"email": "a@b.co", ', '{email: 1}', 'not json', '', '[1,2', '{"a":1}}', '\u0000']) {
      assertProblem(await post(body), 400);
    }
  });

  it('JSON that is not an object → 400', async () => {
    for (const body of ['[]', '"str"', '42', 'null', 'true']) assertProblem(await post(body), 400);
  });

  it('missing fields → 400 naming each field', async () => {
    const p = assertProblem(await post('{}'), 400);
    assert.deepEqual(fieldsOf(p), ['email', 'password', 'username']);
    const u = newUser('miss');
    const p2 = assertProblem(await post(JSON.stringify({ email: u.email, username: u.username })), 400);
    assert.deepEqual(fieldsOf(p2), ['password']);
  });

  it('wrong types → 400 naming each field', async () => {
    const p = assertProblem(await post(JSON.stringify({ email: 12, username: ['a'], password: { x: 1 } })), 400);
    assert.deepEqual(fieldsOf(p), ['email', 'password', 'username']);
    const u = newUser('type');
    const p2 = assertProblem(await post(JSON.stringify({ ...u, username: null })), 400);
    assert.deepEqual(fieldsOf(p2), ['username']);
    const p3 = assertProblem(await post(JSON.stringify({ ...u, password: 123456789012345 })), 400);
    assert.deepEqual(fieldsOf(p3), ['password']);
  });

  it('invalid e-mails → 400 on field email', async () => {
    const bad = [
      'plainaddress', 'two@@example.com', 'a@b@example.com', 'user@localhost', '@example.com', 'user@',
      `${'a'.repeat(245)}@example.com`, '', '   ',
    ];
    for (const email of bad) {
      const p = assertProblem(await server.register({ ...newUser('em'), email }), 400);
      assert.deepEqual(fieldsOf(p), ['email'], `for ${JSON.stringify(email)}`);
    }
  });

  it('invalid usernames → 400 on field username', async () => {
    for (const username of ['ab', 'x'.repeat(33), 'has space', 'semi;colon', 'émile', 'a/b', '']) {
      const p = assertProblem(await server.register({ ...newUser('un'), username }), 400);
      assert.deepEqual(fieldsOf(p), ['username'], `for ${JSON.stringify(username)}`);
    }
    // The limits themselves are valid: 3 and 32 characters, every allowed symbol.
    const three = `q${randomId(1)}`.slice(0, 3);
    const thirtyTwo = `Z-_.${randomId(14)}`;
    for (const username of [three, thirtyTwo]) {
      assert.equal((await server.register({ ...newUser('ok'), username })).status, 201, `username ${username} is valid`);
    }
  });

  it('invalid passwords → 400 on field password (short, long, common)', async () => {
    for (const password of ['short-11chr', 'x'.repeat(129), 'qwerty123456', '1qaz2wsx3edc']) {
      const p = assertProblem(await server.register({ ...newUser('pw'), password }), 400);
      assert.deepEqual(fieldsOf(p), ['password'], `for ${JSON.stringify(password)}`);
    }
    for (const password of ['Aa3$kd9!Lm2q', `${'Kx9!'.repeat(32)}`]) {
      assert.equal((await server.register({ ...newUser('pwok'), password })).status, 201, `password of ${password.length} chars is valid`);
    }
  });

  it('password validation never echoes the password', async () => {
    const password = 'short-pw-9';
    const res = await server.register({ ...newUser('echo'), password });
    assertProblem(res, 400);
    assert.ok(!res.text.includes(password));
  });

  it('invalid UTF-8 inside a JSON string → 400', async () => {
    const u = newUser('utf');
    const body = Buffer.concat([
      Buffer.from(`{"email":"${u.email}","username":"`),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from(`","password":"${u.password}"}`),
    ]);
    assertProblem(await post(body), 400);
    // An overlong encoding and a lone surrogate in raw bytes.
    const body2 = Buffer.concat([Buffer.from('{"email":"'), Buffer.from([0xc0, 0xaf]), Buffer.from(`@example.com","username":"${u.username}","password":"${u.password}"}`)]);
    assertProblem(await post(body2), 400);
    const body3 = Buffer.concat([Buffer.from(`{"email":"${u.email}","username":"x`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(`y","password":"${u.password}"}`)]);
    assertProblem(await post(body3), 400);
  });

  it('non-JSON content type → 415', async () => {
    const body = JSON.stringify(newUser('ct'));
    assertProblem(await post(body, 'text/plain'), 415);
    assertProblem(await post(body, 'application/x-www-form-urlencoded'), 415);
    assertProblem(await server.request('POST', '/auth/register', { body }), 415); // no content type
    assertProblem(await server.request('POST', '/auth/login', { body, headers: { 'content-type': 'text/plain' } }), 415);
  });

  it('body over 16 KiB → 413', async () => {
    const u = newUser('big');
    const res = await post(JSON.stringify({ ...u, padding: 'x'.repeat(17 * 1024) }));
    assertProblem(res, 413);
    // Exactly at the limit is not a 413 (it is a valid sign-up with an extra field, or a 400).
    const at = JSON.stringify({ ...newUser('lim'), padding: '' });
    const padded = at.replace('"padding":""', `"padding":"${'y'.repeat(16 * 1024 - at.length)}"`);
    assert.equal(Buffer.byteLength(padded), 16 * 1024);
    const r2 = await post(padded);
    assert.notEqual(r2.status, 413, r2.text);
  });

  it('login input errors → 400 / 415, not 401 or 500', async () => {
    assertProblem(await server.request('POST', '/auth/login', { body: '{"email":', headers: { 'content-type': 'application/json' } }), 400);
    const r = await server.request('POST', '/auth/login', { json: { email: 5, password: [] } });
    assert.ok(r.status === 400 || r.status === 401, `status ${r.status}`);
    assertProblem(r, r.status);
  });

  it('unknown route → 404 problem+json; wrong method → 404/405 problem+json', async () => {
    assertProblem(await server.request('GET', '/no/such/route'), 404);
    const r = await server.request('GET', '/auth/register');
    assert.ok(r.status === 404 || r.status === 405, `status ${r.status}`);
    assertProblem(r, r.status);
  });

  it('every 4xx carries a requestId that the request log line also carries', async () => {
    const res = await post('{"broken":');
    const p = assertProblem(res, 400);
    assert.equal(res.headers['x-request-id'], p.requestId, 'X-Request-Id header = problem.requestId');
    await server.waitForLog((l) => l.requestId === p.requestId, { timeoutMs: 5000, what: `a log line with requestId ${p.requestId}` });
  });
});
