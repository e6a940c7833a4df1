'use strict';
// The account model of issue 12 at the HTTP surface and the CLI: the optional image, the profile's
// shape (email, phone, image), login by phone, the PII keys generated into the data dir, and
// `registrar keys status` / `keys rotate` beside a running server. (Phone accounts are made by the
// Create_User worker; their rotation and logins are proven in tests/contract/key_rotation_test.cpp.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Server, BIN, newUser, assertProblem, stripPerRequest } = require('./harness');

function registrar(server, ...args) {
  try {
    const out = execFileSync(BIN, [...args, '--data-dir', server.dataDir, '--database-url', server.databaseUrl, '--log-level', 'warn'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, out };
  } catch (e) {
    return { status: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

describe('accounts', () => {
  let server;
  before(async () => { server = await Server.start(); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('register keeps an image URL; the profile shows email, phone (null) and image', async () => {
    const user = { ...newUser('img'), image: 'https://cdn.example.com/avatars/1.png' };
    const res = await server.register(user);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.user.image, user.image);
    assert.equal(res.json.user.phone, null);
    assert.equal(res.json.user.email, user.email);
    const me = await server.me(res.json.accessToken);
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json, res.json.user);
    assert.deepEqual(Object.keys(me.json).sort(), ['createdAt', 'email', 'emailVerified', 'id', 'image', 'phone', 'username']);

    const plain = await server.register(newUser('noimg'));
    assert.equal(plain.status, 201, plain.text);
    assert.equal(plain.json.user.image, null);
  });

  it('an image that is not an absolute http(s) URL is a field error', async () => {
    for (const image of ['javascript:alert(1)', 'ftp://example.com/a.png', '/relative.png', 'https://user:pw@example.com/a.png',
      `https://example.com/${'a'.repeat(2048)}`, 'https://exa mple.com/']) {
      const res = await server.register({ ...newUser('bad'), image });
      const p = assertProblem(res, 400, 'validation_failed');
      assert.deepEqual(p.errors.map((e) => e.field), ['image'], image);
    }
    const res = await server.register({ ...newUser('bad'), image: 42 });
    assertProblem(res, 400, 'validation_failed');
  });

  it('login by phone: an unknown or malformed number gets the one 401', async () => {
    const user = newUser('ph');
    assert.equal((await server.register(user)).status, 201);
    const wrong = await server.login({ username: user.username, password: 'wrong password here' });
    assertProblem(wrong, 401);
    for (const phone of ['+33612345678', '+33 6 12 34 56 78', '0612345678', 'not a phone', '']) {
      const res = await server.login({ phone, password: user.password });
      assertProblem(res, 401);
      assert.deepEqual(stripPerRequest(res.json), stripPerRequest(wrong.json), phone);
    }
    const none = await server.login({ password: user.password });
    const p = assertProblem(none, 400, 'validation_failed');
    assert.deepEqual(p.errors.map((e) => e.field), ['email']);
  });

  it('the PII keys are generated into the data dir, private', () => {
    const dir = path.join(server.dataDir, 'keys');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    const files = fs.readdirSync(dir).sort();
    assert.ok(files.includes('blind-index.key'), files.join(','));
    const dataKeys = files.filter((f) => /^pii-.+\.key$/.test(f));
    assert.equal(dataKeys.length, 1, files.join(','));
    for (const f of files) {
      const st = fs.statSync(path.join(dir, f));
      assert.equal(st.mode & 0o777, 0o600, f);
      assert.equal(st.size, 32, f);
    }
    // Where the key came from is logged, never its bytes.
    const keyHex = fs.readFileSync(path.join(dir, dataKeys[0])).toString('hex');
    const keyB64 = fs.readFileSync(path.join(dir, dataKeys[0])).toString('base64');
    assert.ok(!server.logText().includes(keyHex) && !server.logText().includes(keyB64));
    assert.ok(server.logs.some((l) => l.msg === 'PII keys loaded' || l.message === 'PII keys loaded'), 'the keys are announced');
  });

  it('keys status and keys rotate run beside the server; sign-ups go on', async () => {
    const before = registrar(server, 'keys', 'status');
    assert.equal(before.status, 0, before.out);
    const oldKey = fs.readdirSync(path.join(server.dataDir, 'keys')).find((f) => /^pii-.+\.key$/.test(f)).slice(4, -4);
    assert.match(before.out, new RegExp(`${oldKey.replace(/\./g, '\\.')}\\t0 phones\\tcurrent`));
    assert.match(before.out, /blind-index key: present/);

    const rotated = registrar(server, 'keys', 'rotate');
    assert.equal(rotated.status, 0, rotated.out);
    assert.match(rotated.out, /created key /);
    assert.match(rotated.out, /done: 0 re-encrypted/);
    const after = registrar(server, 'keys', 'status');
    const current = after.out.split('\n').find((l) => l.endsWith('\tcurrent'));
    assert.ok(current && !current.includes(oldKey), after.out);

    const res = await server.register(newUser('after'));
    assert.equal(res.status, 201, res.text);
    const bad = registrar(server, 'keys');
    assert.equal(bad.status, 2, bad.out);
  });
});
