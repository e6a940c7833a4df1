'use strict';
// The security claims of SECURITY.md, proven against the real binary. Each test name states its
// claim. Claims already proven elsewhere are not repeated here; SECURITY.md lists them with the
// test that proves them (tokens.test.js: alg none/None, HS384/HS512, tampering, wrong key, expiry,
// wrong aud/iss/typ, the 0600 key file; robustness.test.js: 10 MB bodies, one 64 KiB header,
// logs at the default level; timeouts.test.js: slowloris on the head, idle keep-alive;
// validation.test.js: strict UTF-8 and the body limit; tests/unit/security_test.cpp: constant-time
// comparison, one argon2 verification per login, the dummy hash's cost).
//
// The enumeration, injection and log checks run on SQLite and on MySQL (a private MariaDB the
// harness starts) unless REGISTRAR_TEST_DB picks one backend.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { BIN, Server, SANITIZER, TEST_DB, newUser, randomId, assertProblem, eventually, jwt } = require('./harness');

const BACKENDS = process.env.REGISTRAR_TEST_DB ? [TEST_DB] : ['sqlite', 'mysql'];

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const mac = (key, input) => crypto.createHmac('sha256', key).update(input).digest('base64url');

// A compact JWS from a header and claims given as objects or as raw JSON text, MAC'd with `key`.
function hs256(header, claims, key) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${mac(key, input)}`;
}

const now = () => Math.floor(Date.now() / 1000);

// Claims that pass every check for an access token of `sub`, with `extra` merged in.
function accessClaims(sub, extra = {}) {
  const t = now();
  return { sub, typ: 'access', iss: 'registrar', aud: 'registrar', iat: t, exp: t + 300, ...extra };
}

function without(obj, ...keys) {
  const copy = { ...obj };
  for (const k of keys) delete copy[k];
  return copy;
}

const get = (target, extra = []) => [`GET ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...extra, '', ''].join('\r\n');

// A response reduced to what may legitimately differ per request: X-Request-Id (and Date, were
// one sent) dropped from the headers, the requestId in the body replaced by a placeholder.
function comparable(res) {
  const headers = without(res.headers, 'date', 'x-request-id');
  const id = res.json && res.json.requestId;
  return { status: res.status, headers, body: id ? res.text.split(id).join('<requestId>') : res.text };
}

// A local HTTP server that counts what it receives (key URLs that must never be fetched; webhooks).
async function recorder() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { requests, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

// Every regular file under `dir`, recursively: [{ rel, full, bytes, mode }].
function filesUnder(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full).map((f) => ({ ...f, rel: path.join(entry.name, f.rel) })));
    else if (entry.isFile()) out.push({ rel: entry.name, full, bytes: fs.readFileSync(full), mode: fs.statSync(full).mode });
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
describe('security: JWT', () => {
  let server;
  let secret;
  let alice;
  before(async () => {
    server = await Server.start();
    alice = await server.registerNew('sec');
    secret = server.jwtSecret();
  });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  const expectStatus = async (token, status, why) => {
    const res = await server.me(token);
    assert.equal(res.status, status, `${why}: got ${res.status} ${res.text}`);
    if (status === 401) assertProblem(res, 401, 'unauthenticated');
    return res;
  };

  it('control: a hand-made HS256 token with the server key and the documented claims is accepted', async () => {
    // Every refusal below is built the same way, so it is refused for its one defect only.
    await expectStatus(hs256({ alg: 'HS256', typ: 'JWT' }, accessClaims(alice.id), secret), 200, 'well-formed token');
  });

  it('alg none in any spelling (NONE, nOnE), even carrying a valid HMAC of the server key → 401', async () => {
    const claims = accessClaims(alice.id);
    for (const alg of ['NONE', 'nOnE', 'none', 'None']) {
      await expectStatus(`${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}.`, 401, `alg ${alg}, empty signature`);
      await expectStatus(hs256({ alg, typ: 'JWT' }, claims, secret), 401, `alg ${alg} with a valid HMAC`);
    }
  });

  it('tokens signed with real asymmetric keys (RS256, PS256, ES256) → 401', async () => {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const opts = { issuer: 'registrar', audience: 'registrar', expiresIn: 300 };
    const claims = { sub: alice.id, typ: 'access' };
    for (const [alg, key] of [['RS256', rsa.privateKey], ['PS256', rsa.privateKey], ['ES256', ec.privateKey]]) {
      const token = jwt.sign(claims, key, { ...opts, algorithm: alg });
      assert.equal(jwt.decode(token, { complete: true }).header.alg, alg);
      await expectStatus(token, 401, alg);
    }
  });

  it('HS/RS key confusion: HS256 MAC\'d with a public key (PEM, PKCS#1, JWK) as the secret → 401', async () => {
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const candidates = {
      spkiPem: publicKey.export({ type: 'spki', format: 'pem' }),
      pkcs1Pem: publicKey.export({ type: 'pkcs1', format: 'pem' }),
      jwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
      der: publicKey.export({ type: 'spki', format: 'der' }),
    };
    for (const [what, key] of Object.entries(candidates)) {
      for (const alg of ['HS256', 'RS256']) {
        await expectStatus(hs256({ alg, typ: 'JWT' }, accessClaims(alice.id), key), 401, `${alg} MAC'd with the public key as ${what}`);
      }
    }
  });

  it('key hints in the header (jwk, jku, x5u, x5c, kid) never choose the key, and no URL in them is fetched', async () => {
    const keyHost = await recorder();
    try {
      const attackerKey = crypto.randomBytes(32);
      const headers = [
        { alg: 'HS256', typ: 'JWT', jwk: { kty: 'oct', k: attackerKey.toString('base64url') } },
        { alg: 'HS256', typ: 'JWT', jku: `${keyHost.url}/jwks.json` },
        { alg: 'HS256', typ: 'JWT', x5u: `${keyHost.url}/cert.pem` },
        { alg: 'HS256', typ: 'JWT', x5c: ['MIIBszCCAVmgAwIBAgIUQ0FGRQ=='] },
        { alg: 'HS256', typ: 'JWT', kid: '../../../../../../dev/null' },
        { alg: 'HS256', typ: 'JWT', kid: 'jwt-secret' },
        { alg: 'HS256', typ: 'JWT', kid: `x' UNION SELECT '${attackerKey.toString('hex')}' --` },
      ];
      for (const header of headers) {
        const what = JSON.stringify(header).slice(0, 80);
        await expectStatus(hs256(header, accessClaims(alice.id), attackerKey), 401, `attacker key, ${what}`);
        await expectStatus(hs256(header, accessClaims(alice.id), attackerKey.toString('hex')), 401, `attacker key as text, ${what}`);
        await expectStatus(hs256(header, accessClaims(alice.id), ''), 401, `empty key, ${what}`);
        // With the server key the hint changes nothing: the token is accepted like any other.
        await expectStatus(hs256(header, accessClaims(alice.id), secret), 200, `server key, ${what}`);
      }
      assert.deepEqual(keyHost.requests, [], 'the server fetched a key URL named in a token');
    } finally {
      await keyHost.close();
    }
  });

  it('a token without aud, or without iss, → 401', async () => {
    const header = { alg: 'HS256', typ: 'JWT' };
    await expectStatus(hs256(header, without(accessClaims(alice.id), 'aud'), secret), 401, 'no aud');
    await expectStatus(hs256(header, without(accessClaims(alice.id), 'iss'), secret), 401, 'no iss');
    await expectStatus(hs256(header, accessClaims(alice.id, { aud: ['other', 'another'] }), secret), 401, 'aud list without us');
    await expectStatus(hs256(header, accessClaims(alice.id, { aud: 'Registrar' }), secret), 401, 'aud in another case');
    await expectStatus(hs256(header, accessClaims(alice.id, { iss: 'registrar ' }), secret), 401, 'iss with a trailing space');
  });

  it('a header typ other than JWT (at+jwt, secevent+jwt, a number) → 401', async () => {
    for (const typ of ['at+jwt', 'secevent+jwt', 'JOSE', 1]) {
      await expectStatus(hs256({ alg: 'HS256', typ }, accessClaims(alice.id), secret), 401, `header typ ${typ}`);
    }
  });

  it('token kinds: a session token (typ "session", right key, valid claims) is refused where an access token is expected → 401', async () => {
    await expectStatus(hs256({ alg: 'HS256', typ: 'JWT' }, accessClaims(alice.id, { typ: 'session' }), secret), 401, 'session token on /users/me');
    await expectStatus(hs256({ alg: 'HS256', typ: 'JWT' }, accessClaims(alice.id, { typ: 'ACCESS' }), secret), 401, 'typ in another case');
    await expectStatus(hs256({ alg: 'HS256', typ: 'JWT' }, accessClaims(alice.id, { typ: ['access'] }), secret), 401, 'typ as a list');
  });

  it('time claims: nbf or iat beyond the 30 s leeway ahead, exp beyond it behind, or non-integer dates → 401', async () => {
    const header = { alg: 'HS256', typ: 'JWT' };
    const t = now();
    const cases = {
      'nbf 120 s ahead': { nbf: t + 120 },
      'iat 120 s ahead': { iat: t + 120, exp: t + 600 },
      'exp 90 s ago': { iat: t - 600, exp: t - 90 },
      'exp as a string': { exp: String(t + 300) },
      'exp with a fraction': { exp: t + 300.5 },
      'iat as a string': { iat: String(t) },
      'nbf as a string': { nbf: String(t - 10) },
      'no iat': { iat: undefined },
    };
    for (const [what, extra] of Object.entries(cases)) {
      await expectStatus(hs256(header, JSON.stringify(accessClaims(alice.id, extra)), secret), 401, what);
    }
    // Controls: the same builder with dates in range is accepted.
    await expectStatus(hs256(header, accessClaims(alice.id, { nbf: t - 60 }), secret), 200, 'nbf in the past');
    await expectStatus(hs256(header, accessClaims(alice.id, { iat: t + 5 }), secret), 200, 'iat a few seconds ahead (within the leeway)');
  });

  it('duplicate header names: the last one counts (RFC 7515 §4, as JSON.parse), so alg none cannot hide behind HS256', async () => {
    const claims = b64url(accessClaims(alice.id));
    const sign = (headerJson) => { const input = `${b64url(headerJson)}.${claims}`; return `${input}.${mac(secret, input)}`; };
    await expectStatus(sign('{"alg":"HS256","alg":"none","typ":"JWT"}'), 401, 'HS256 then none');
    await expectStatus(sign('{"alg":"HS256","alg":"RS256","typ":"JWT"}'), 401, 'HS256 then RS256');
    await expectStatus(sign('{"alg":"HS256","typ":"JWT","typ":"at+jwt"}'), 401, 'typ JWT then at+jwt');
    // The claims follow the same rule: a second typ overrides the first.
    const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(JSON.stringify(accessClaims(alice.id)).replace(/}$/, ',"typ":"session"}'))}`;
    await expectStatus(`${input}.${mac(secret, input)}`, 401, 'claims typ access then session');
  });

  it('an oversized JWT header (7 KiB of kid) with another key → 401; a bearer token past the head limit → 431; the server keeps serving', async () => {
    const big = hs256({ alg: 'HS256', typ: 'JWT', kid: 'k'.repeat(5000) }, accessClaims(alice.id), crypto.randomBytes(32));
    assert.ok(big.length > 6000 && big.length < 7600, `token of ${big.length} bytes fits in the head`);
    await expectStatus(big, 401, 'big header, wrong key');
    const huge = hs256({ alg: 'HS256', typ: 'JWT', kid: 'k'.repeat(12_000) }, accessClaims(alice.id), secret);
    const { responses, closed } = await server.raw(get('/users/me', [`Authorization: Bearer ${huge}`]), { expect: 1 });
    assert.ok(responses.length === 1 || closed, 'an answer or a close');
    if (responses.length) assert.equal(responses[0].status, 431, responses[0].text);
    await expectStatus(alice.token, 200, 'the server still serves');
  });

  it('an access token whose subject is an SQL injection string, signed with the server key, finds nobody → 401', async () => {
    for (const sub of ["' OR '1'='1", `${alice.id}' OR '1'='1`, "x' UNION SELECT id, email, username, password_hash, created_at FROM users --", '%', '*']) {
      await expectStatus(hs256({ alg: 'HS256', typ: 'JWT' }, accessClaims(sub), secret), 401, `sub ${sub}`);
    }
  });
});

// ------------------------------------------------------------------------------------------------
for (const db of BACKENDS) {
  describe(`security: no user enumeration (${db})`, () => {
    let server;
    let taken;
    before(async () => {
      server = await Server.start({ db });
      taken = await server.registerNew('enum');
    });
    after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

    it('register: 409 is byte-identical whether the e-mail, the username or both are taken (status, headers, body)', async () => {
      const { user } = taken;
      const [local, domain] = user.email.split('@');
      const attempts = {
        email: { ...newUser('e1'), email: user.email },
        emailOtherCase: { ...newUser('e2'), email: `${local.toUpperCase()}@${domain.toUpperCase()}` },
        username: { ...newUser('u1'), username: user.username },
        usernameOtherCase: { ...newUser('u2'), username: user.username.toUpperCase() },
        both: { ...newUser('b'), email: user.email, username: user.username },
        bothSamePassword: { ...user },
      };
      const seen = {};
      for (const [what, body] of Object.entries(attempts)) {
        const res = await server.register(body);
        assertProblem(res, 409, 'conflict');
        seen[what] = comparable(res);
      }
      for (const [what, c] of Object.entries(seen)) assert.deepEqual(c, seen.email, `409 for ${what} differs from 409 for a taken e-mail`);
    });

    it('login: 401 is byte-identical for unknown e-mail, unknown username, wrong password and malformed identifiers', async () => {
      const { user } = taken;
      const attempts = {
        wrongPasswordByEmail: { email: user.email, password: `${user.password}x` },
        wrongPasswordByUsername: { username: user.username, password: 'Another-Strong-Pass-123' },
        wrongPasswordEmptyString: { email: user.email, password: '' },
        unknownEmail: { email: `nobody.${randomId()}@example.com`, password: user.password },
        unknownUsername: { username: `nobody_${randomId()}`, password: user.password },
        emailWithoutDomain: { email: 'not-an-email@', password: user.password },
        emailUndottedDomain: { email: 'a@b', password: user.password },
        emailEmpty: { email: '', password: user.password },
        usernameWithSpace: { username: 'has space', password: user.password },
        usernameTooShort: { username: 'x', password: user.password },
        usernameTooLong: { username: 'y'.repeat(300), password: user.password },
        usernameInjection: { username: "' OR 1=1 --", password: "' OR 1=1 --" },
        emailAsUsernameField: { username: user.email.replace('@', ' at '), password: user.password },
      };
      const seen = {};
      for (const [what, body] of Object.entries(attempts)) {
        const res = await server.login(body);
        assertProblem(res, 401, 'invalid_credentials');
        seen[what] = comparable(res);
      }
      for (const [what, c] of Object.entries(seen)) assert.deepEqual(c, seen.wrongPasswordByEmail, `401 for ${what} differs from 401 for a wrong password`);
    });
  });
}

describe(`security: login timing (${TEST_DB}, production argon2id parameters)`, () => {
  let server;
  let user;
  before(async () => {
    server = await Server.start({ weakArgon2: false }); // m = 19 MiB, t = 2: a hash costs milliseconds, not microseconds
    ({ user } = await server.registerNew('timing'));
  });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('unknown e-mail, unknown username and malformed identifier cost what a wrong password costs: one argon2 verification (medians of 15 within 0.5–2×, all over twice a request that hashes nothing)', async () => {
    const kinds = {
      wrongPassword: [401, () => server.login({ email: user.email, password: `${user.password}-wrong` })],
      unknownEmail: [401, () => server.login({ email: `nobody.${randomId()}@example.com`, password: user.password })],
      unknownUsername: [401, () => server.login({ username: `nobody_${randomId()}`, password: user.password })],
      malformedIdentifier: [401, () => server.login({ username: 'not a username!', password: user.password })],
      noHashAtAll: [400, () => server.login({ password: user.password })], // refused before any hashing
    };
    const names = Object.keys(kinds);
    const samples = Object.fromEntries(names.map((n) => [n, []]));
    const ROUNDS = 15;
    for (let round = -2; round < ROUNDS; round++) { // two warm-up rounds, not recorded
      // Interleaved, in a rotating order, so that drift and neighbours hit every kind alike.
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round + 2) % names.length];
        const [status, send] = kinds[name];
        const started = process.hrtime.bigint();
        const res = await send();
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        assert.equal(res.status, status, `${name}: ${res.text}`);
        if (round >= 0) samples[name].push(ms);
      }
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const m = Object.fromEntries(names.map((n) => [n, median(samples[n])]));
    const summary = Object.entries(m).map(([n, v]) => `${n} ${v.toFixed(2)} ms`).join(', ');
    for (const name of ['unknownEmail', 'unknownUsername', 'malformedIdentifier']) {
      const ratio = m[name] / m.wrongPassword;
      assert.ok(ratio > 0.5 && ratio < 2.0, `${name} / wrongPassword = ${ratio.toFixed(2)} (medians: ${summary})`);
    }
    for (const name of ['wrongPassword', 'unknownEmail', 'unknownUsername', 'malformedIdentifier']) {
      assert.ok(m[name] > 2 * m.noHashAtAll, `${name} is not clearly slower than a request without a hash (medians: ${summary})`);
    }
  });
});

// ------------------------------------------------------------------------------------------------
for (const db of BACKENDS) {
  describe(`security: secrets and passwords stay out of logs and stored data (${db}, log level trace)`, () => {
    let server;
    let hooks;
    const webhookSecret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
    const activity = {};
    before(async () => {
      hooks = await recorder();
      server = await Server.start({
        db,
        args: ['--log-level', 'trace', '--consumers', 'audit,welcome,webhook', '--webhook-urls', `${hooks.url}/hook`],
        env: { REGISTRAR_WEBHOOK_SECRET: webhookSecret },
      });
      // Every way a password or a token enters the service, each with its own unique values.
      const dave = newUser('leak');
      dave.password = `Leak-${crypto.randomBytes(18).toString('base64url')}-'"\\`;
      const reg = await server.register(dave);
      assert.equal(reg.status, 201, reg.text);
      const login = await server.login({ username: dave.username, password: dave.password });
      assert.equal(login.status, 200, login.text);
      const wrong = `Wrong-${crypto.randomBytes(18).toString('base64url')}`;
      assert.equal((await server.login({ email: dave.email, password: wrong })).status, 401);
      const unknownPw = `Unknown-${crypto.randomBytes(18).toString('base64url')}`;
      assert.equal((await server.login({ username: `ghost_${randomId()}`, password: unknownPw })).status, 401);
      const weak = 'qwerty123456';
      assert.equal((await server.register({ ...newUser('weak'), password: weak })).status, 400);
      const conflictPw = `Conflict-${crypto.randomBytes(18).toString('base64url')}`;
      assert.equal((await server.register({ ...newUser('dup'), email: dave.email, password: conflictPw })).status, 409);
      const token = login.json.accessToken;
      assert.equal((await server.me(token)).status, 200);
      assert.equal((await server.me(`${token}x`)).status, 401);
      // Secrets in a query string: the access log keeps the path only.
      assert.equal((await server.request('GET', `/users/me?access_token=${token}`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const queryPw = `Query-${crypto.randomBytes(18).toString('base64url')}`;
      await server.request('POST', `/auth/login?password=${queryPw}`, { json: { username: dave.username, password: dave.password } });
      // The events of the sign-up have reached every consumer.
      const id = reg.json.user.id;
      await eventually(() => server.auditLines().some((l) => l.payload && l.payload.data && l.payload.data.id === id), { what: 'the audit line' });
      await eventually(() => hooks.requests.some((r) => r.body.includes(id)), { what: 'the webhook delivery' });
      const messages = path.join(server.dataDir, 'messages.jsonl');
      await eventually(() => fs.existsSync(messages) && fs.readFileSync(messages, 'utf8').includes(dave.email), { what: 'the welcome message' });
      // The log lines of all the above have been written.
      const marker = await server.request('GET', '/no-such-route-marker');
      await server.waitForLog((l) => l.requestId === marker.json.requestId, { what: 'the marker request log line' });

      const hash = server.query(`SELECT password_hash FROM users WHERE id = '${id}'`)[0].password_hash;
      assert.match(hash, /^\$argon2id\$/);
      Object.assign(activity, {
        id, email: dave.email, hash, token, passwords: { password: dave.password, wrong, unknownPw, weak, conflictPw, queryPw },
        secrets: {
          registerToken: reg.json.accessToken, loginToken: token, tokenSignature: token.split('.')[2],
          jwtSecret: server.jwtSecret(), webhookSecret, webhookKey: webhookSecret.slice('whsec_'.length),
          ...(db === 'mysql' ? { databasePassword: server.mariadb.password } : {}),
        },
      });
    });
    after(async () => {
      try { await server.stopCleanly(); } finally { await server.dispose(); await hooks.close(); }
    });

    it('no password, token, signing key, webhook secret, database password or password hash appears in any log line (stdout and stderr)', () => {
      const text = server.logText();
      assert.ok(server.logs.some((l) => l.msg === 'listening'), 'the log was captured');
      const leaks = { ...activity.passwords, ...activity.secrets, passwordHash: activity.hash, hashDigest: activity.hash.split('$').pop() };
      for (const [what, value] of Object.entries(leaks)) {
        assert.ok(!text.includes(value), `${what} appears in the log`);
      }
    });

    it('the plaintext passwords are in no file of the data dir, and no token or key outside its own file', () => {
      const files = filesUnder(server.dataDir);
      assert.ok(files.some((f) => f.rel === 'audit.jsonl'), `files: ${files.map((f) => f.rel).join(', ')}`);
      for (const f of files) {
        for (const [what, value] of Object.entries(activity.passwords)) {
          assert.ok(!f.bytes.includes(Buffer.from(value)), `password ${what} found in ${f.rel}`);
        }
        for (const [what, value] of Object.entries(activity.secrets)) {
          if (what === 'jwtSecret' && f.rel === 'jwt-secret') continue;
          assert.ok(!f.bytes.includes(Buffer.from(value)), `${what} found in ${f.rel}`);
        }
      }
    });

    it('the password hash is in no event: not in the outbox, the audit log, the welcome message or the webhook', () => {
      const outbox = server.query(`SELECT payload FROM outbox WHERE aggregate_id = '${activity.id}'`);
      assert.equal(outbox.length, 1);
      const places = {
        outbox: outbox[0].payload,
        audit: JSON.stringify(server.auditLines()),
        messages: fs.readFileSync(path.join(server.dataDir, 'messages.jsonl'), 'utf8'),
        webhooks: JSON.stringify(hooks.requests),
      };
      for (const f of filesUnder(server.dataDir)) if (f.rel.startsWith('spool')) places[f.rel] = f.bytes.toString('utf8');
      for (const [where, text] of Object.entries(places)) {
        assert.ok(text.includes(activity.email), `${where} is about the new user`);
        for (const [what, value] of Object.entries({ hash: activity.hash, digest: activity.hash.split('$').pop(), password: activity.passwords.password })) {
          assert.ok(!text.includes(value), `${what} found in ${where}`);
        }
        assert.doesNotMatch(text, /argon2/i, `${where} mentions argon2`);
      }
    });

    it('every file the service writes to its data dir (database, WAL, key, audit log, mail) is private to its owner', () => {
      const files = filesUnder(server.dataDir);
      for (const f of files) assert.equal(f.mode & 0o077, 0, `${f.rel} has mode ${(f.mode & 0o777).toString(8)}`);
    });
  });
}

// ------------------------------------------------------------------------------------------------
describe('security: header floods, slow bodies and request smuggling', () => {
  let server;
  before(async () => {
    server = await Server.start({ args: ['--header-timeout', '2', '--body-timeout', '2'] });
  });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  const stillServing = async () => {
    const res = await server.request('GET', '/healthz', { agent: false });
    assert.equal(res.status, 200, 'the server keeps serving');
  };
  // A refusal is a 4xx answer followed by a close, or a close without an answer; never a second response.
  const assertRefused = async (data, statuses, what) => {
    const { responses, closed } = await server.raw(data, { expect: 2, timeoutMs: 8000 });
    assert.ok(closed, `${what}: the connection is closed`);
    assert.ok(responses.length <= 1, `${what}: ${responses.length} responses (${responses.map((r) => r.status)})`);
    if (responses.length) assert.ok(statuses.includes(responses[0].status), `${what}: status ${responses[0].status} ${responses[0].text}`);
  };

  it('thousands of small headers past the 8 KiB head limit → 431 or a close; within the limit they are served (the limit is on bytes)', async () => {
    const flood = Array.from({ length: 2000 }, (_, i) => `X-Flood-${i}: v`);
    await assertRefused(get('/healthz', flood), [431, 400], '2000 headers');
    const many = Array.from({ length: 300 }, (_, i) => `X-H${i}: v`);
    const { responses } = await server.raw(get('/healthz', many), { expect: 1 });
    assert.equal(responses[0].status, 200);
    await stillServing();
  });

  it('a request line past the head limit (a 64 KiB target) → 431/414/400 or a close, and the server keeps serving', async () => {
    await assertRefused(get(`/users/me?${'a'.repeat(64 * 1024)}`), [431, 414, 400], '64 KiB target');
    await assertRefused(`GET /${'b'.repeat(1024 * 1024)}`, [431, 414, 400], '1 MiB request line without an end');
    await stillServing();
  });

  it('a body sent one byte at a time is cut off by the body timeout while others are served', async () => {
    const started = Date.now();
    const sock = net.connect(server.port, '127.0.0.1');
    const received = [];
    sock.on('data', (d) => received.push(d));
    sock.on('error', () => {});
    const closed = new Promise((resolve) => sock.on('close', resolve));
    await new Promise((resolve) => sock.on('connect', resolve));
    sock.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    const drip = setInterval(() => { if (!sock.destroyed) sock.write(' '); }, 200);
    try {
      for (let i = 0; i < 5; i++) await stillServing();
      const guard = setTimeout(() => sock.destroy(new Error('never cut off')), 20_000);
      await closed;
      clearTimeout(guard);
    } finally {
      clearInterval(drip);
    }
    const ms = Date.now() - started;
    assert.ok(ms >= 1500 && ms < 15_000, `closed after ${ms} ms (body timeout 2 s)`);
    assert.doesNotMatch(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 2/, 'the slow request was not processed');
  });

  it('200 connections that send nothing do not stop the server from answering others, and are all closed by the head timeout', async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => new Promise((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    })));
    const closedAll = Promise.all(sockets.map((s) => new Promise((resolve) => (s.destroyed ? resolve() : s.on('close', resolve)))));
    let guard;
    try {
      await stillServing();
      await Promise.race([closedAll, new Promise((_, reject) => { guard = setTimeout(() => reject(new Error('idle connections left open')), 20_000); })]);
    } finally {
      clearTimeout(guard);
      for (const s of sockets) s.destroy();
    }
  });

  // Not under the sanitizers: their runtimes need descriptors too (UBSan's vptr check probes memory
  // through a pipe and, when pipe() fails with EMFILE, reports an invalid vptr), so exhausting them
  // tests the runtime, not the server. The normal stage runs it.
  it('a connection flood that exhausts the file descriptors pauses accepting (one warning, retries 100 ms apart) instead of a busy loop flooding the log, and serving resumes',
    { skip: SANITIZER ? `under ${SANITIZER} the sanitizer runtime itself needs descriptors` : false }, async () => {
    const s = await Server.start({ args: ['--log-level', 'debug'] });
    const flood = [];
    try {
      const soft = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${s.pid}/limits`, 'utf8'))[1];
      const inUse = fs.readdirSync(`/proc/${s.pid}/fd`).length;
      execFileSync('prlimit', ['--pid', String(s.pid), `--nofile=${inUse + 4}:`]); // the soft limit only
      for (let i = 0; i < 40; i++) {
        const c = net.connect(s.port, '127.0.0.1');
        c.on('error', () => {});
        flood.push(c);
      }
      let warnings = 0; // (a second warning ends the wait at once: the loop does not pause)
      await s.waitForLog((l) => (l.msg === 'accept still failing' && l.failedAccepts >= 4) || (/^accept failed/.test(l.msg) && ++warnings >= 2),
        { what: 'three retries of a failing accept' });
      const retries = s.logs.filter((l) => l.msg === 'accept still failing').map((l) => Date.parse(l.ts));
      for (let i = 1; i < retries.length; i++) {
        assert.ok(retries[i] - retries[i - 1] >= 80, `retries ${retries[i] - retries[i - 1]} ms apart: a busy loop`);
      }
      assert.equal(s.logs.filter((l) => l.level === 'warn' && /^accept failed/.test(l.msg)).length, 1, 'one warning per episode');
      for (const c of flood) c.destroy(); // the server's descriptors come back as it sees the closes
      await s.waitForLog((l) => l.msg === 'accepting connections again', { what: 'accepting again' });
      const res = await s.request('GET', '/healthz', { agent: false });
      assert.equal(res.status, 200);
      execFileSync('prlimit', ['--pid', String(s.pid), `--nofile=${soft}:`]);
      await s.stopCleanly();
    } finally {
      for (const c of flood) c.destroy();
      await s.dispose();
    }
  });

  it('conflicting message framing is refused with 400 and a close, so no request can be smuggled behind another', async () => {
    const smuggled = get('/no-such-route-smuggled');
    const post = (framing, body) => ['POST /auth/login HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', ...framing, '', body].join('\r\n');
    const cases = {
      'Content-Length and Transfer-Encoding: chunked': post(['Content-Length: 6', 'Transfer-Encoding: chunked'], `0\r\n\r\n${smuggled}`),
      'Transfer-Encoding: chunked and Content-Length': post(['Transfer-Encoding: chunked', 'Content-Length: 6'], `0\r\n\r\n${smuggled}`),
      'two different Content-Lengths': post(['Content-Length: 2', 'Content-Length: 40'], `{}${smuggled}`),
      'a Content-Length list': post(['Content-Length: 2, 40'], `{}${smuggled}`),
      'Transfer-Encoding other than chunked': post(['Transfer-Encoding: gzip'], `{}${smuggled}`),
      'chunked not the final coding': post(['Transfer-Encoding: chunked, gzip'], `0\r\n\r\n${smuggled}`),
      'chunked twice in one field': post(['Transfer-Encoding: chunked, chunked'], `0\r\n\r\n${smuggled}`),
      'Transfer-Encoding: chunked in two fields': post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], `0\r\n\r\n${smuggled}`),
      'an unknown coding with Content-Length': post(['Transfer-Encoding: xchunked', 'Content-Length: 6'], `0\r\n\r\n${smuggled}`),
      'identity with Content-Length': post(['Transfer-Encoding: identity', 'Content-Length: 2'], `{}${smuggled}`),
      'a space before the colon': post(['Transfer-Encoding : chunked', 'Content-Length: 6'], `0\r\n\r\n${smuggled}`),
      'negative Content-Length': post(['Content-Length: -1'], `{}${smuggled}`),
      'Transfer-Encoding in HTTP/1.0': ['POST /auth/login HTTP/1.0', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Transfer-Encoding: chunked', '', `0\r\n\r\n${smuggled}`].join('\r\n'),
      'a coding we do not implement (gzip, chunked) → 501': post(['Transfer-Encoding: gzip, chunked'], `2\r\n{}\r\n0\r\n\r\n${smuggled}`),
    };
    for (const [what, data] of Object.entries(cases)) await assertRefused(data, what.endsWith('501') ? [501] : [400], what);
    assert.ok(!server.logs.some((l) => l.path === '/no-such-route-smuggled'), 'a smuggled request was processed');
    await stillServing();
  });

  it('an HTTP/1.1 request without Host, with two, or with an invalid one is refused with 400 (RFC 9112 §3.2)', async () => {
    const smuggled = get('/no-such-route-smuggled');
    const cases = {
      'no Host': `GET /healthz HTTP/1.1\r\n\r\n${smuggled}`,
      'two Host fields': `GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n${smuggled}`,
      'userinfo in Host': `GET /healthz HTTP/1.1\r\nHost: user@a.example\r\n\r\n${smuggled}`,
      'two Host fields on HTTP/1.0': `GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n`,
    };
    for (const [what, data] of Object.entries(cases)) {
      const { responses, closed } = await server.raw(data, { expect: 2, timeoutMs: 8000 });
      assert.ok(closed, `${what}: the connection is closed`);
      assert.deepEqual(responses.map((r) => r.status), [400], `${what}: ${responses.map((r) => r.text)}`);
      assert.equal(responses[0].json.code, 'bad_request', what);
    }
    assert.ok(!server.logs.some((l) => l.path === '/no-such-route-smuggled'), 'a request behind a refused one was processed');
    const { responses } = await server.raw('GET /healthz HTTP/1.0\r\n\r\n', { expect: 1 });
    assert.equal(responses[0].status, 200, 'HTTP/1.0 may omit Host');
    await stillServing();
  });
});

describe('security: secret files', () => {
  // Every secret file (--jwt-secret-file, --webhook-secret-file) goes through one reader: a regular
  // file of at most 64 KiB, used with a warning when group or others can read it. `consume webhook`
  // reads its secret before it finds that it has no broker, so nothing else is needed here.
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  let dir;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-secret-files-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const consumeWebhook = (file) => spawnSync(BIN, ['consume', 'webhook', '--webhook-secret-file', file], {
    cwd: dir, encoding: 'utf8', timeout: 30_000, env: { ...process.env, REGISTRAR_DATA_DIR: dir },
  });

  it('a webhook secret file that is a directory, missing or over 64 KiB stops the start (exit 2) with one line naming it', () => {
    const big = path.join(dir, 'big');
    fs.writeFileSync(big, `${secret}${'x'.repeat(64 * 1024)}`, { mode: 0o600 });
    for (const [file, why] of [[dir, 'not a regular file'], [path.join(dir, 'absent'), 'No such file or directory'], [big, 'too large to be a key']]) {
      const run = consumeWebhook(file);
      assert.equal(run.status, 2, `${file}: ${run.stderr}`);
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
      assert.ok(run.stderr.includes(`--webhook-secret-file ${file} (REGISTRAR_WEBHOOK_SECRET_FILE)`), run.stderr);
      assert.ok(run.stderr.includes(why), run.stderr);
      assert.ok(!run.stderr.includes(secret) && !run.stdout.includes(secret));
    }
  });

  it('a webhook secret file readable by group/others is used with a warning, as the JWT key file is', () => {
    const file = path.join(dir, 'shared');
    fs.writeFileSync(file, `${secret}\n`);
    fs.chmodSync(file, 0o644);
    const run = consumeWebhook(file);
    const warnings = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.level === 'warn');
    assert.ok(warnings.some((l) => l.msg.includes('--webhook-secret-file') && l.msg.includes('readable by group/others (mode 0644)')),
      run.stdout);
    assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret));
    // Read and accepted; what stops `consume` here is the missing broker.
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /needs --amqp-url/);
  });
});

// ------------------------------------------------------------------------------------------------
for (const db of BACKENDS) {
  describe(`security: SQL injection strings are data (${db})`, () => {
    let server;
    before(async () => { server = await Server.start({ db }); });
    after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

    const tables = () => (db === 'mysql'
      ? server.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1")
      : server.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")).map((r) => r.name);

    it('e-mails and passwords full of SQL metacharacters register, log in and come back verbatim; the tables stay intact', async () => {
      const tablesBefore = tables();
      assert.ok(tablesBefore.includes('users') && tablesBefore.includes('outbox'), `tables: ${tablesBefore}`);
      const id = () => randomId(3);
      const emails = [
        `o'brien'or'1'='1'--${id()}@example.com`,
        `x';drop/**/table/**/users;--${id()}@example.com`,
        `a"b\\c\\'${id()}@example.com`,
        `%_${id()}%@example.com`,
        `1'union/**/select/**/1--${id()}@example.com`,
        `ünï'cødé${id()}@example.com`,
        `😀'${id()}@example.com`,
      ];
      const passwords = [
        `' OR 1=1 -- ${id()}`,
        `'; DROP TABLE users; -- ${id()}`,
        `\\'\\"\\\\ \\x00 ${id()}`,
        `Robert'); DROP TABLE outbox;-- ${id()}`,
        `" OR ""=" ${id()}`,
        `ü' OR 'ä'='ä ${id()} 😀`,
        `%' AND password_hash LIKE '%${id()}`,
      ];
      const registered = [];
      for (let i = 0; i < emails.length; i++) {
        const user = { email: emails[i], username: `inj_${randomId(6)}`, password: passwords[i] };
        assert.ok(user.email.split('@')[0].length <= 64, `local part of ${user.email} is within 64 characters`);
        const res = await server.register(user);
        assert.equal(res.status, 201, `${user.email}: ${res.text}`);
        assert.equal(res.json.user.email, user.email, 'returned verbatim');
        registered.push({ user, id: res.json.user.id });
      }
      for (const { user, id: userId } of registered) {
        const login = await server.login({ email: user.email, password: user.password });
        assert.equal(login.status, 200, `login ${user.email}: ${login.text}`);
        assert.equal(login.json.user.id, userId);
        const me = await server.me(login.json.accessToken);
        assert.equal(me.status, 200, me.text);
        assert.equal(me.json.email, user.email);
        const [row] = server.query(`SELECT HEX(email) AS email_hex, HEX(username) AS username_hex, password_hash FROM users WHERE id = '${userId}'`);
        assert.equal(row.email_hex.toLowerCase(), Buffer.from(user.email).toString('hex'), `stored bytes of ${user.email}`);
        assert.equal(row.username_hex.toLowerCase(), Buffer.from(user.username).toString('hex'));
        assert.match(row.password_hash, /^\$argon2id\$/);
        // A wrong password that is itself an injection string does not log in.
        const bad = await server.login({ email: user.email, password: "' OR '1'='1" });
        assertProblem(bad, 401, 'invalid_credentials');
      }
      assert.deepEqual(tables(), tablesBefore, 'no table was dropped or added');
      assert.equal(server.query('SELECT count(*) AS n FROM users')[0].n, registered.length);
      assert.equal(server.query('SELECT count(*) AS n FROM outbox')[0].n, registered.length);
    });

    it('injection strings and LIKE wildcards as login identifiers authenticate nobody → 401', async () => {
      const { user } = await server.registerNew('victim');
      const identifiers = [
        { email: "' OR '1'='1'--@example.com" }, { email: `%@example.com` }, { email: `${user.email.split('@')[0].slice(0, 3)}%@example.com` },
        { email: '_%@example.com' }, { username: "admin'--" }, { username: '%' }, { username: `${user.username.slice(0, 4)}%` },
        { username: "' OR 1=1 --" }, { username: '*' }, { email: `${user.email}' --` },
      ];
      for (const id of identifiers) {
        for (const password of [user.password, "' OR '1'='1", "x' OR 1=1 --"]) {
          const res = await server.login({ ...id, password });
          assert.equal(res.status, 401, `${JSON.stringify(id)} / ${password}: ${res.status} ${res.text}`);
        }
      }
      // Still only the victim's own credentials work.
      assert.equal((await server.login({ email: user.email, password: user.password })).status, 200);
    });
  });
}
