'use strict';
// Access tokens are interoperable HS256 JWTs, checked strictly (alg, signature, exp, iss, aud, typ).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { Server, assertProblem, jwt } = require('./harness');

const VERIFY = { algorithms: ['HS256'], issuer: 'registrar', audience: 'registrar' };

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function hs256(header, claims, key) {
  const signingInput = `${b64url(header)}.${b64url(claims)}`;
  return `${signingInput}.${crypto.createHmac('sha256', key).update(signingInput).digest('base64url')}`;
}

describe('tokens', () => {
  let server;
  let secret;
  let alice;
  before(async () => {
    server = await Server.start();
    alice = await server.registerNew('tok');
    secret = server.jwtSecret();
  });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  const claimsFor = (extra = {}) => ({ sub: alice.id, typ: 'access', ...extra });
  const sign = (claims, opts = {}) => jwt.sign(claims, secret, { algorithm: 'HS256', issuer: 'registrar', audience: 'registrar', expiresIn: 300, ...opts });
  const expect401 = async (token, why) => {
    const res = await server.me(token);
    assert.equal(res.status, 401, `${why}: got ${res.status} ${res.text}`);
    assertProblem(res, 401);
  };

  it('the generated secret file holds a key of at least 256 bits', () => {
    const st = fs.statSync(server.secretPath);
    assert.ok(st.isFile());
    assert.ok(Buffer.byteLength(secret) >= 32, `secret is ${Buffer.byteLength(secret)} bytes`);
  });

  it('the generated secret file is private to its owner', () => {
    const st = fs.statSync(server.secretPath);
    assert.equal(st.mode & 0o077, 0, `jwt-secret is not readable by group/others (mode ${(st.mode & 0o777).toString(8)})`);
  });

  it('a server token verifies with jsonwebtoken and carries the documented claims', () => {
    const decoded = jwt.verify(alice.token, secret, VERIFY);
    const { header } = jwt.decode(alice.token, { complete: true });
    assert.equal(header.alg, 'HS256');
    assert.equal(decoded.sub, alice.id);
    assert.equal(decoded.typ, 'access');
    assert.equal(decoded.iss, 'registrar');
    assert.equal(decoded.aud, 'registrar');
    assert.equal(typeof decoded.jti, 'string');
    assert.ok(decoded.jti.length >= 16);
    assert.equal(typeof decoded.iat, 'number');
    assert.ok(Math.abs(decoded.iat - Date.now() / 1000) < 60);
    assert.equal(decoded.exp - decoded.iat, alice.res.json.expiresIn, 'expiresIn matches exp - iat');
    assert.ok(!JSON.stringify(decoded).includes(alice.user.password));
  });

  it('each issued token has its own jti', async () => {
    const login = await server.login({ email: alice.user.email, password: alice.user.password });
    assert.equal(login.status, 200, login.text);
    const a = jwt.verify(alice.token, secret, VERIFY);
    const b = jwt.verify(login.json.accessToken, secret, VERIFY);
    assert.notEqual(a.jti, b.jti);
  });

  it('a token made by jsonwebtoken with the same key and claims is accepted by /users/me', async () => {
    const token = sign(claimsFor({ jti: crypto.randomUUID() }));
    const res = await server.me(token);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.id, alice.id);
    assert.equal(res.json.username, alice.user.username);
  });

  it('missing, malformed or non-Bearer authorization → 401', async () => {
    await expect401(undefined, 'no header');
    await expect401('', 'empty token');
    await expect401('not-a-jwt', 'garbage');
    await expect401('a.b.c', 'garbage segments');
    const res = await server.request('GET', '/users/me', { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    assertProblem(res, 401);
    const res2 = await server.request('GET', '/users/me', { headers: { authorization: alice.token } });
    assertProblem(res2, 401);
  });

  it('alg "none" → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...claimsFor(), iss: 'registrar', aud: 'registrar', iat: now, exp: now + 300 };
    await expect401(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`, 'alg none, empty signature');
    await expect401(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}`, 'alg none, two segments');
    await expect401(`${b64url({ alg: 'None', typ: 'JWT' })}.${b64url(claims)}.`, 'alg None');
  });

  it('other algorithms with the same key → 401 (explicit allowlist)', async () => {
    await expect401(sign(claimsFor(), { algorithm: 'HS512' }), 'HS512');
    await expect401(sign(claimsFor(), { algorithm: 'HS384' }), 'HS384');
  });

  it('a tampered signature or payload → 401', async () => {
    const [h, p, s] = alice.token.split('.');
    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    await expect401(`${h}.${p}.${flipped}`, 'first signature char changed');
    await expect401(`${h}.${p}.${s.slice(0, -2)}`, 'truncated signature');
    await expect401(`${h}.${p}.`, 'signature stripped');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const other = await server.registerNew('victim');
    await expect401(`${h}.${b64url({ ...claims, sub: other.id })}.${s}`, 'sub changed, old signature');
  });

  it('a token signed with another key → 401', async () => {
    const token = jwt.sign(claimsFor(), crypto.randomBytes(32), { algorithm: 'HS256', issuer: 'registrar', audience: 'registrar', expiresIn: 300 });
    await expect401(token, 'wrong key');
  });

  it('an expired token → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(jwt.sign({ ...claimsFor(), iat: now - 7200, exp: now - 3600 }, secret, { algorithm: 'HS256', issuer: 'registrar', audience: 'registrar' }), 'expired an hour ago');
    await expect401(hs256({ alg: 'HS256', typ: 'JWT' }, { ...claimsFor(), iss: 'registrar', aud: 'registrar', iat: now }, secret), 'no exp at all');
  });

  it('wrong aud, wrong iss, wrong typ → 401', async () => {
    await expect401(sign(claimsFor(), { audience: 'someone-else' }), 'wrong aud');
    await expect401(sign(claimsFor(), { issuer: 'someone-else' }), 'wrong iss');
    await expect401(sign(claimsFor({ typ: 'refresh' })), 'typ refresh');
    const noTyp = claimsFor();
    delete noTyp.typ;
    await expect401(sign(noTyp), 'no typ');
  });

  it('tokens survive a restart (the generated secret is persisted)', async () => {
    await server.restart();
    assert.equal(server.jwtSecret(), secret);
    const res = await server.me(alice.token);
    assert.equal(res.status, 200, res.text);
  });

  it('REGISTRAR_JWT_SECRET overrides the file', async () => {
    const envSecret = crypto.randomBytes(32).toString('hex');
    const s2 = await Server.start({ env: { REGISTRAR_JWT_SECRET: envSecret } });
    try {
      const u = await s2.registerNew('env');
      const decoded = jwt.verify(u.token, envSecret, VERIFY);
      assert.equal(decoded.sub, u.id);
      assert.ok(!s2.logText().includes(envSecret), 'the secret is never logged');
    } finally {
      await s2.dispose();
    }
  });
});
