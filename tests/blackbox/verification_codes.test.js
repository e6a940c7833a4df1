'use strict';
// POST /auth/verification-codes: a session, a verification token and a 6-digit code sent as a text
// message (by default one line of <data-dir>/messages.jsonl, the number masked, under the session).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Server, assertProblem, jwt, randomId } = require('./harness');

// A distinct valid E.164 number per call (French mobile range), and the spellings that must never
// be found in a file of the data dir.
let next = 0;
function newPhone() {
  const digits = `6${String(Date.now() % 1e4).padStart(4, '0')}${String(next++).padStart(4, '0')}`;
  return `+33${digits}`;
}
function spellings(phone) {
  const digits = phone.slice(1);
  return [digits, digits.slice(2), phone.slice(3)];
}

function messages(server) {
  const file = path.join(server.dataDir, 'messages.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function allFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...allFiles(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

describe('verification codes', () => {
  let server;
  const phonesUsed = [];
  const ask = (phone, headers) => {
    if (typeof phone === 'string') phonesUsed.push(phone);
    return server.request('POST', '/auth/verification-codes', { json: { phone }, headers });
  };

  before(async () => { server = await Server.start(); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('201 with {id, token, expiresIn}; the code is in messages.jsonl under the session, the number masked', async () => {
    const phone = newPhone();
    const res = await ask(phone);
    assert.equal(res.status, 201, res.text);
    assert.match(res.headers['content-type'], /^application\/json/);
    const { id, token, expiresIn } = res.json;
    assert.equal(typeof id, 'string');
    assert.ok(id.length >= 16, id);
    assert.equal(expiresIn, 600);
    assert.equal(res.json.tokenType, 'Bearer');

    const claims = jwt.verify(token, server.jwtSecret(), { algorithms: ['HS256'], issuer: 'registrar', audience: 'registrar' });
    assert.equal(claims.typ, 'verification');
    assert.equal(claims.sub, id);
    assert.equal(claims.exp - claims.iat, 600);

    const mine = messages(server).filter((m) => m.session === id);
    assert.equal(mine.length, 1, JSON.stringify(messages(server)));
    const [m] = mine;
    assert.equal(m.channel, 'sms');
    assert.match(m.code, /^\d{6}$/);
    assert.ok(m.body.includes(m.code), m.body);
    assert.equal(m.to, `${phone.slice(0, 3)}${'\u2022'.repeat(phone.length - 5)}${phone.slice(-2)}`);
  });

  it('codes are six digits and differ between sessions', async () => {
    const codes = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await ask(newPhone());
      assert.equal(res.status, 201, res.text);
      codes.push(messages(server).find((m) => m.session === res.json.id).code);
    }
    for (const c of codes) assert.match(c, /^\d{6}$/);
    assert.ok(new Set(codes).size > 1, `three sessions, codes ${codes}`);
  });

  it('the verification token is refused where an access token is expected', async () => {
    const res = await ask(newPhone());
    assert.equal(res.status, 201, res.text);
    const me = await server.me(res.json.token);
    assertProblem(me, 401, 'unauthenticated');
  });

  it('a bad phone is a 400 with a field error, and nothing is sent', async () => {
    const before = messages(server).length;
    for (const phone of ['0612345678', '+33 6 12 ab', '', '+0123456789']) {
      const res = await ask(phone);
      const p = assertProblem(res, 400, 'validation_failed');
      assert.equal(p.errors.length, 1, res.text);
      assert.equal(p.errors[0].field, 'phone');
    }
    for (const body of [{}, { phone: 33612345678 }]) {
      const res = await server.request('POST', '/auth/verification-codes', { json: body });
      const p = assertProblem(res, 400, 'validation_failed');
      assert.equal(p.errors[0].field, 'phone');
    }
    assert.equal(messages(server).length, before);
  });

  it('a second code to one phone within the cooldown is a 429 with Retry-After, and nothing is sent', async () => {
    const phone = newPhone();
    const first = await ask(phone);
    assert.equal(first.status, 201, first.text);
    const sent = messages(server).length;
    // Another spelling of the same number is the same phone.
    const second = await ask(`${phone.slice(0, 3)} ${phone.slice(3, 4)} ${phone.slice(4)}`);
    const p = assertProblem(second, 429, 'rate_limited');
    const retryAfter = Number(second.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${second.headers['retry-after']}`);
    assert.equal(p.retryAfter, retryAfter);
    assert.equal(messages(server).length, sent);
    // Other phones are not held back.
    assert.equal((await ask(newPhone())).status, 201);
  });

  it('no phone number in clear in any file of the data dir, nor in the log', async () => {
    assert.ok(phonesUsed.length >= 5);
    const files = allFiles(server.dataDir);
    assert.ok(files.some((f) => f.endsWith('messages.jsonl')), files.join(', '));
    for (const file of files) {
      const content = fs.readFileSync(file).toString('latin1');
      for (const phone of phonesUsed) {
        if (phone.length < 9) continue; // the invalid ones
        for (const s of spellings(phone)) assert.ok(!content.includes(s), `${file} holds ${s}`);
      }
    }
    const log = server.logText();
    for (const phone of phonesUsed) if (phone.length >= 9) for (const s of spellings(phone)) assert.ok(!log.includes(s), `the log holds ${s}`);
  });
});

describe('verification codes: settings', () => {
  it('the rules are settings: a short cooldown lets a second code through, a cap of 2 stops the third', async () => {
    const server = await Server.start({ args: ['--code-cooldown', '0', '--code-hourly-cap', '2', '--code-ttl', '120'] });
    try {
      const phone = `+44770090${randomId(2).replace(/[a-f]/g, '1').slice(0, 4)}`;
      const a = await server.request('POST', '/auth/verification-codes', { json: { phone } });
      assert.equal(a.status, 201, a.text);
      assert.equal(a.json.expiresIn, 120);
      const b = await server.request('POST', '/auth/verification-codes', { json: { phone } });
      assert.equal(b.status, 201, b.text);
      const c = await server.request('POST', '/auth/verification-codes', { json: { phone } });
      assertProblem(c, 429, 'rate_limited');
      const retryAfter = Number(c.headers['retry-after']);
      assert.ok(retryAfter > 3000 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
    } finally {
      await server.stopCleanly();
      await server.dispose();
    }
  });
});
