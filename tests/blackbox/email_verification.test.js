'use strict';
// Email verification of /auth/register accounts: the `email-verification` consumer mails a 6-digit
// code (by default one line of <data-dir>/messages.jsonl and a spool file), POST
// /auth/email-verification {code} with the access token marks the address verified and emits
// user.email_verified through the outbox (seen here in the audit consumer's audit.jsonl), and POST
// /auth/email-verification/resend asks for a new code under the cooldown and the hourly cap.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { BIN, Server, assertProblem, eventually } = require('./harness');

function messages(server) {
  const file = path.join(server.dataDir, 'messages.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// The codes mailed to `email`, oldest first (waits for at least `count`).
async function codesFor(server, email, count = 1) {
  return eventually(() => {
    const mine = messages(server).filter((m) => m.channel === 'email' && m.to === email && m.code);
    return mine.length >= count ? mine.map((m) => m.code) : null;
  }, { what: `${count} code(s) mailed to ${email}` });
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

describe('email verification', () => {
  let server;
  const verify = (token, code) => server.request('POST', '/auth/email-verification', {
    json: { code }, headers: token === undefined ? {} : bearer(token),
  });
  const resend = (token) => server.request('POST', '/auth/email-verification/resend', {
    headers: token === undefined ? {} : bearer(token),
  });

  before(async () => { server = await Server.start({ args: ['--consumers', 'audit,email-verification'] }); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('register → the code in the mail spool → 200; /users/me says verified; user.email_verified is delivered', async () => {
    const { user, token, id, res } = await server.registerNew('ev');
    assert.equal(res.json.user.emailVerified, false);
    const [code] = await codesFor(server, user.email);
    assert.match(code, /^\d{6}$/);
    const mail = messages(server).find((m) => m.to === user.email && m.code === code);
    assert.ok(mail.body.includes(code), mail.body);
    // The spool holds the same message (the file the development sender writes per message; it
    // is linked into place after the line is appended).
    const spool = path.join(server.dataDir, 'spool', 'mail');
    await eventually(() => fs.readdirSync(spool).filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(spool, f), 'utf8')))
      .some((m) => m.to === user.email && m.code === code), { what: 'the code\'s message in the mail spool' });

    const ok = await verify(token, code);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.emailVerified, true);
    assert.ok(!Number.isNaN(Date.parse(ok.json.emailVerifiedAt)), ok.text);

    const me = await server.me(token);
    assert.equal(me.status, 200);
    assert.equal(me.json.emailVerified, true);

    const line = await eventually(
      () => server.auditLines().find((l) => l.type === 'user.email_verified' && l.payload.data.id === id),
      { what: 'user.email_verified in audit.jsonl' },
    );
    assert.equal(line.payload.event, 'user.email_verified');
    assert.equal(line.payload.pattern, 'user.email_verified');
    assert.deepEqual(Object.keys(line.payload.data).sort(), ['emailVerifiedAt', 'id']);
    assert.equal(line.payload.data.emailVerifiedAt, ok.json.emailVerifiedAt);
    assert.ok(!JSON.stringify(line).includes(user.email), 'no address in the event');
    assert.ok(!JSON.stringify(line).includes(code), 'no code in the event');

    // Single use, and a clear answer once verified.
    assertProblem(await verify(token, code), 409, 'already_verified');
    assertProblem(await resend(token), 409, 'already_verified');
    // Exactly one user.email_verified event for the user.
    await eventually(() => server.auditLines().filter((l) => l.type === 'user.email_verified' && l.payload.data.id === id).length === 1);
  });

  it('a wrong code is a 400 problem on "code"; five wrong burn the code and the right one is refused', async () => {
    const { user, token } = await server.registerNew('ew');
    const [code] = await codesFor(server, user.email);
    const wrong = code === '000000' ? '000001' : '000000';
    const first = assertProblem(await verify(token, wrong), 400, 'validation_failed');
    assert.deepEqual(first.errors.map((e) => [e.field, e.code]), [['code', 'incorrect']]);
    for (let i = 2; i <= 4; i += 1) {
      const p = assertProblem(await verify(token, wrong), 400, 'validation_failed');
      assert.equal(p.errors[0].code, 'incorrect', `try ${i}`);
    }
    const fifth = assertProblem(await verify(token, wrong), 400, 'validation_failed');
    assert.equal(fifth.errors[0].code, 'exhausted');
    const right = assertProblem(await verify(token, code), 400, 'validation_failed');
    assert.equal(right.errors[0].code, 'exhausted');
    assert.equal((await server.me(token)).json.emailVerified, false);
  });

  it('a code that is not six digits, or no code: 400 without spending a try', async () => {
    const { user, token } = await server.registerNew('ef');
    const [code] = await codesFor(server, user.email);
    for (const bad of ['12345', 'abcdef', '1234567']) {
      const p = assertProblem(await verify(token, bad), 400, 'validation_failed');
      assert.equal(p.errors[0].code, 'invalid_format');
    }
    const missing = assertProblem(await server.request('POST', '/auth/email-verification', { json: {}, headers: bearer(token) }),
      400, 'validation_failed');
    assert.equal(missing.errors[0].field, 'code');
    assert.equal((await verify(token, code)).status, 200);
  });

  it('no token, or not an access token: 401', async () => {
    const { user, token } = await server.registerNew('en');
    const [code] = await codesFor(server, user.email);
    assertProblem(await verify(undefined, code), 401, 'unauthenticated');
    assertProblem(await verify('not-a-token', code), 401, 'unauthenticated');
    assertProblem(await verify(`${token}x`, code), 401, 'unauthenticated');
    assertProblem(await resend(undefined), 401, 'unauthenticated');
    assertProblem(await server.request('POST', '/auth/email-verification', { json: {} }), 401, 'unauthenticated');
    assert.equal((await server.me(token)).json.emailVerified, false);
  });

  it('resend right after the sign-up: 429 rate_limited with Retry-After, nothing sent', async () => {
    const { user, token } = await server.registerNew('er');
    await codesFor(server, user.email);
    const res = await resend(token);
    const p = assertProblem(res, 429, 'rate_limited');
    const retry = Number(res.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 60, res.headers['retry-after']);
    assert.equal(p.retryAfter, retry);
    assert.equal(messages(server).filter((m) => m.to === user.email).length, 1);
  });

  it('no code in clear in the logs', async () => {
    const codes = messages(server).filter((m) => m.channel === 'email' && m.code).map((m) => m.code);
    assert.ok(codes.length >= 5);
    const text = server.logText();
    // As a word of its own (not inside a hex id or a longer number).
    for (const code of codes) assert.ok(!new RegExp(`(^|[^0-9a-f])${code}([^0-9a-f]|$)`).test(text), `code ${code} found in the logs`);
  });
});

describe('email verification: resend', () => {
  let server;
  before(async () => {
    server = await Server.start({ args: ['--consumers', 'email-verification', '--code-cooldown', '0', '--code-hourly-cap', '3'] });
  });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('202 and a new code that replaces the old one; the hourly cap then answers 429', async () => {
    const { user, token } = await server.registerNew('es');
    const [first] = await codesFor(server, user.email);
    const res = await server.request('POST', '/auth/email-verification/resend', { headers: bearer(token) });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.json.expiresIn, 600);
    const codes = await codesFor(server, user.email, 2);
    const second = codes[1];
    assert.equal((await server.request('POST', '/auth/email-verification/resend', { headers: bearer(token) })).status, 202);
    const third = (await codesFor(server, user.email, 3))[2];
    // The cap (3 per hour, the sign-up's code included) is reached.
    assertProblem(await server.request('POST', '/auth/email-verification/resend', { headers: bearer(token) }), 429, 'rate_limited');
    // Only the newest code works (the others were replaced; a wrong try is counted, not fatal).
    for (const old of [first, second].filter((c) => c !== third)) {
      const p = assertProblem(await server.request('POST', '/auth/email-verification', { json: { code: old }, headers: bearer(token) }),
        400, 'validation_failed');
      assert.equal(p.errors[0].code, 'incorrect');
    }
    const ok = await server.request('POST', '/auth/email-verification', { json: { code: third }, headers: bearer(token) });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('email verification: the consumer run apart', () => {
  it('`consume email-verification` without --redis-url is refused (its codes must be in the API\'s store)', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-bb-'));
    try {
      const r = spawnSync(BIN, ['consume', 'email-verification', '--data-dir', dataDir, '--amqp-url', 'amqp://guest:guest@127.0.0.1:1/'],
        { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /consume email-verification: needs --redis-url/);
      const list = spawnSync(BIN, ['consume', '--list'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /^email-verification\t/m);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
