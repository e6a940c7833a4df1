'use strict';
// Happy paths of every endpoint, conflicts, login, and the audit trail of a sign-up.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, newUser, assertProblem, stripPerRequest, eventually } = require('./harness');

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function assertAuthBody(res, user, status) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers['content-type'] || '', /^application\/json\b/);
  const b = res.json;
  assert.equal(typeof b.accessToken, 'string');
  assert.equal(b.accessToken.split('.').length, 3, 'a JWS compact token');
  assert.equal(b.tokenType, 'Bearer');
  assert.equal(typeof b.expiresIn, 'number');
  assert.ok(b.expiresIn > 0);
  assert.equal(typeof b.user.id, 'string');
  assert.ok(b.user.id.length > 0);
  assert.equal(b.user.email, user.email);
  assert.equal(b.user.username, user.username);
  assert.match(b.user.createdAt, ISO);
  assert.equal(b.user.password, undefined);
  assert.equal(b.user.passwordHash, undefined);
  assert.equal(b.user.password_hash, undefined);
}

describe('api', () => {
  let server;
  before(async () => { server = await Server.start(); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('GET /healthz → 200', async () => {
    const res = await server.request('GET', '/healthz');
    assert.equal(res.status, 200, res.text);
  });

  it('GET /readyz → 200 (database reachable)', async () => {
    const res = await server.request('GET', '/readyz');
    assert.equal(res.status, 200, res.text);
  });

  it('register → 201 with token and user; /users/me returns the user', async () => {
    const user = newUser('reg');
    const res = await server.register(user);
    assertAuthBody(res, user, 201);
    const me = await server.me(res.json.accessToken);
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json, res.json.user);
  });

  it('register accepts "application/json; charset=utf-8"', async () => {
    const user = newUser('cs');
    const res = await server.register(user, { 'content-type': 'application/json; charset=utf-8' });
    assertAuthBody(res, user, 201);
  });

  it('register normalises the e-mail: trimmed, domain lower-cased', async () => {
    const user = newUser('Norm');
    const [local] = user.email.split('@');
    const res = await server.register({ ...user, email: `  ${local}@Example.COM \t` });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.user.email, `${local}@example.com`);
  });

  it('stores an argon2id hash, never the password', async () => {
    const user = newUser('hash');
    const res = await server.register(user);
    assert.equal(res.status, 201, res.text);
    const rows = server.query(`SELECT password_hash FROM users WHERE id = '${res.json.user.id}'`);
    assert.equal(rows.length, 1);
    assert.match(rows[0].password_hash, /^\$argon2id\$/);
    assert.ok(!rows[0].password_hash.includes(user.password));
  });

  it('duplicate e-mail (other case) and duplicate username (other case) → 409 with identical bodies', async () => {
    const { user } = await server.registerNew('dup');
    const [local, domain] = user.email.split('@');
    const byEmail = await server.register({ ...newUser('dupx'), email: `${local}@${domain.toUpperCase()}` });
    const byEmailLocalCase = await server.register({ ...newUser('dupy'), email: `${local.toUpperCase()}@${domain}` });
    const byUsername = await server.register({ ...newUser('dupz'), username: user.username.toUpperCase() });
    const p1 = assertProblem(byEmail, 409);
    const p2 = assertProblem(byEmailLocalCase, 409);
    const p3 = assertProblem(byUsername, 409);
    assert.deepEqual(stripPerRequest(p1), stripPerRequest(p3), 'same body whichever field is taken');
    assert.deepEqual(stripPerRequest(p2), stripPerRequest(p3), 'same body whichever field is taken');
    assert.notEqual(p1.requestId, p3.requestId, 'requestId is per request');
  });

  it('50 concurrent registrations of one e-mail → exactly one 201, the rest 409', async () => {
    const base = newUser('race');
    const attempts = Array.from({ length: 50 }, (_, i) => ({ ...newUser(`race${i}`), email: base.email }));
    const results = await Promise.all(attempts.map((u) => server.register(u)));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 409).length, 49, `statuses: ${statuses.join(',')}`);
    const rows = server.query(`SELECT count(*) AS n FROM users WHERE lower(email) = lower('${base.email}')`);
    assert.equal(rows[0].n, 1);
  });

  it('50 concurrent registrations of one username → exactly one 201, the rest 409', async () => {
    const base = newUser('raceu');
    const attempts = Array.from({ length: 50 }, (_, i) => ({ ...newUser(`ru${i}`), username: i % 2 ? base.username : base.username.toUpperCase() }));
    const results = await Promise.all(attempts.map((u) => server.register(u)));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 409).length, 49, `statuses: ${statuses.join(',')}`);
  });

  it('login by e-mail and by username → 200 with the register shape', async () => {
    const { user, res: reg } = await server.registerNew('login');
    const byEmail = await server.login({ email: user.email, password: user.password });
    assertAuthBody(byEmail, user, 200);
    assert.equal(byEmail.json.user.id, reg.json.user.id);
    const byUsername = await server.login({ username: user.username, password: user.password });
    assertAuthBody(byUsername, user, 200);
    assert.equal(byUsername.json.user.id, reg.json.user.id);
    const me = await server.me(byUsername.json.accessToken);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.id, reg.json.user.id);
  });

  it('login: wrong password, unknown user, unknown username → identical 401 bodies', async () => {
    const { user } = await server.registerNew('bad');
    const wrong = await server.login({ email: user.email, password: `${user.password}x` });
    const wrongByName = await server.login({ username: user.username, password: 'Another-Strong-Pass-123' });
    const unknown = await server.login({ email: `nobody.${Date.now()}@example.com`, password: user.password });
    const unknownName = await server.login({ username: `nobody_${Date.now()}`, password: user.password });
    const bodies = [wrong, wrongByName, unknown, unknownName].map((r) => stripPerRequest(assertProblem(r, 401)));
    for (const b of bodies.slice(1)) assert.deepEqual(b, bodies[0]);
  });

  it('a sign-up writes one outbox row and one audit line with the event format', async () => {
    const { user, id } = await server.registerNew('audit');
    const rows = server.query(`SELECT event_id, event_type, aggregate_id, payload FROM outbox WHERE aggregate_id = '${id}'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].event_type, 'user.registered');
    const line = await eventually(
      () => server.auditLines().find((l) => l.payload && l.payload.data && l.payload.data.id === id),
      { what: `audit line for ${id}` },
    );
    assert.equal(line.eventId, rows[0].event_id);
    assert.equal(line.type, 'user.registered');
    assert.match(line.occurredAt, ISO);
    assert.match(line.receivedAt, ISO);
    assert.equal(line.payload.event, 'user.registered');
    assert.equal(line.payload.pattern, 'user.registered');
    assert.match(line.payload.timestamp, ISO);
    assert.equal(line.payload.id, undefined, 'no top-level id in the payload (NestJS would treat it as a request)');
    assert.deepEqual(Object.keys(line.payload.data).sort(), ['createdAt', 'email', 'id', 'username']);
    assert.equal(line.payload.data.email, user.email);
    assert.equal(line.payload.data.username, user.username);
    assert.match(line.payload.data.createdAt, ISO);
    assert.ok(!JSON.stringify(line).includes(user.password), 'no password in the event');
  });
});
