'use strict';
// Safe retries of sign-ups with the Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header;
// README "Safe retries (Idempotency-Key)"):
//  - the point of it: MariaDB stopped (then killed) and started again under many clients that each
//    sign up with their own key and retry (with back-off) until they get a 201. Every client ends
//    with a 201 and exactly one account, and none ever gets a 409 for its own account — also those
//    whose first sign-up was committed but answered 503 (the answer lost with the connection);
//  - a retry with the same key and body: 201, the same account, a fresh token; a wrong password:
//    422 and no token; other fields: 422; a key still in flight: 409; a malformed key: 400;
//  - keys expire after --idempotency-key-ttl.
//
//   node --test tests/blackbox/idempotency.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const net = require('node:net');
const { Server, MariaDb, newUser, assertProblem, eventually } = require('./harness');

const keyHeader = (key) => ({ 'idempotency-key': key });
const newKey = () => `"${crypto.randomUUID()}"`; // the draft's form: a Structured Field String

describe('Idempotency-Key: retries of one sign-up', () => {
  let server;
  before(async () => { server = await Server.start({ args: ['--idempotency-key-ttl', '2'] }); });
  after(async () => { if (server) await server.dispose(); });

  it('a retry with the same key and body → 201, the same account, a fresh token, marked as a replay', async () => {
    const user = newUser('idem');
    const key = newKey();
    const first = await server.register(user, keyHeader(key));
    assert.equal(first.status, 201, first.text);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    const again = await server.register(user, keyHeader(key));
    assert.equal(again.status, 201, again.text);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json.user, first.json.user);
    assert.equal(again.headers.location, '/users/me');
    const me = await server.me(again.json.accessToken);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.id, first.json.user.id);
    // One account, one event.
    assert.equal(server.query(`SELECT count(*) AS n FROM users WHERE username = '${user.username}'`)[0].n, 1);
    assert.equal(server.query(`SELECT count(*) AS n FROM outbox WHERE aggregate_id = '${first.json.user.id}'`)[0].n, 1);
    // Without the key, the same body is the conflict it always was.
    assertProblem(await server.register(user), 409, 'conflict');
  });

  it('the key alone never yields a token: a replay with a wrong password → 422, no token', async () => {
    const user = newUser('idem');
    const key = newKey();
    assert.equal((await server.register(user, keyHeader(key))).status, 201);
    const wrong = await server.register({ ...user, password: `${user.password}-not` }, keyHeader(key));
    const problem = assertProblem(wrong, 422, 'idempotency_key_mismatch');
    assert.equal(problem.type, 'urn:registrar:problem:idempotency_key_mismatch');
    assert.match(problem.detail, /different request/);
    assert.equal(wrong.json.accessToken, undefined);
    assert.ok(!wrong.text.includes(user.password), 'the password is never echoed');
  });

  it('the same key with other fields → 422, nothing created', async () => {
    const user = newUser('idem');
    const key = newKey();
    assert.equal((await server.register(user, keyHeader(key))).status, 201);
    const other = newUser('idem');
    for (const body of [{ ...user, email: other.email }, { ...user, username: other.username }, other,
      { ...user, image: 'https://example.com/me.png' }]) {
      assertProblem(await server.register(body, keyHeader(key)), 422, 'idempotency_key_mismatch');
    }
    assert.equal(server.query(`SELECT count(*) AS n FROM users WHERE username = '${other.username}'`)[0].n, 0);
  });

  it('the quoted (draft) and the bare form of a key are one key', async () => {
    const user = newUser('idem');
    const id = crypto.randomUUID();
    assert.equal((await server.register(user, keyHeader(`"${id}"`))).status, 201);
    const again = await server.register(user, keyHeader(id));
    assert.equal(again.status, 201, again.text);
    assert.equal(again.headers['idempotent-replayed'], 'true');
  });

  it('a malformed key → 400 problem, nothing created', async () => {
    const user = newUser('idem');
    for (const bad of ['', '""', 'a'.repeat(256), 'two words', '"open', '"bad \\x escape"', 'caf\u00e9']) {
      const res = await server.request('POST', '/auth/register', { json: user, headers: { 'idempotency-key': bad } });
      assertProblem(res, 400, 'invalid_idempotency_key');
    }
    // Two of them.
    const { responses: raw } = await server.raw(`POST /auth/register HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n`
      + `idempotency-key: one\r\nidempotency-key: two\r\ncontent-length: ${Buffer.byteLength(JSON.stringify(user))}\r\n\r\n${JSON.stringify(user)}`);
    assert.equal(raw[0].status, 400, JSON.stringify(raw[0]));
    assert.match(raw[0].text, /invalid_idempotency_key/);
    assert.equal(server.query(`SELECT count(*) AS n FROM users WHERE username = '${user.username}'`)[0].n, 0);
    // The longest allowed key works.
    assert.equal((await server.register(user, keyHeader('k'.repeat(255)))).status, 201);
  });

  it('keys are stored as keyed hashes: not the key, no field, no password in clear', async () => {
    const user = newUser('idem');
    const key = `secret-key-${crypto.randomUUID()}`;
    const res = await server.register(user, keyHeader(key));
    assert.equal(res.status, 201);
    const rows = server.query(`SELECT key_hash, fingerprint, user_id FROM idempotency_keys WHERE user_id = '${res.json.user.id}'`);
    assert.equal(rows.length, 1);
    assert.match(rows[0].key_hash, /^[0-9a-f]{64}$/);
    assert.match(rows[0].fingerprint, /^[0-9a-f]{64}$/);
    if (server.db === 'sqlite') {
      for (const name of fs.readdirSync(server.dataDir).filter((f) => f.startsWith('registrar.db'))) {
        const bytes = fs.readFileSync(path.join(server.dataDir, name));
        assert.ok(!bytes.includes(key), `the key in clear in ${name}`);
        assert.ok(!bytes.includes(user.password), `the password in clear in ${name}`);
      }
    }
  });

  it('a key expires after --idempotency-key-ttl: then it is free for a new request', async () => {
    const user = newUser('idem');
    const key = newKey();
    const first = await server.register(user, keyHeader(key));
    assert.equal(first.status, 201);
    const other = newUser('idem');
    assertProblem(await server.register(other, keyHeader(key)), 422, 'idempotency_key_mismatch');
    // Within the TTL (2 s) the other body is refused; once it has passed, it is a new sign-up.
    let res;
    await eventually(async () => {
      res = await server.register(other, keyHeader(key));
      return res.status === 201;
    }, { intervalMs: 250, timeoutMs: 10_000, what: 'the key free again after its TTL' });
    assert.notEqual(res.json.user.id, first.json.user.id);
    assert.equal(res.headers['idempotent-replayed'], undefined);
  });
});

// The private MariaDB's server process, to freeze it (SIGSTOP) and thaw it (SIGCONT).
function mariadbPid(db) { return Number(fs.readFileSync(path.join(db.dir, 'mysqld.pid'), 'utf8').trim()); }

describe('Idempotency-Key on MariaDB: outages and requests in flight', () => {
  let db;
  let server;
  before(async () => {
    db = await MariaDb.create();
    server = await Server.start({ db: 'mysql', mariadb: db });
  });
  after(async () => {
    try {
      if (server) await server.dispose();
    } finally {
      if (db) await db.dispose();
    }
  });

  it('a retry while the first request with the key is still running → 409; the first then succeeds and the retry replays it', async () => {
    const user = newUser('inflight');
    const key = newKey();
    assert.equal((await server.register(newUser('warm'))).status, 201); // a pooled connection to freeze on
    const pid = mariadbPid(db);
    process.kill(pid, 'SIGSTOP'); // the database hangs: a request that reaches it waits
    let thawed = false;
    try {
      const answers = [];
      const send = (name) => server.register(user, keyHeader(key)).then((res) => { answers.push({ name, res }); return res; });
      const a = send('a');
      const b = send('b');
      // Whichever of the two took the key first waits on the frozen database; the other is told
      // at once that the key is in flight.
      await eventually(() => answers.length >= 1, { intervalMs: 10, timeoutMs: 5_000, what: 'the first answer' });
      assert.equal(answers.length, 1, 'one request still waits on the frozen database');
      assertProblem(answers[0].res, 409, 'idempotency_key_in_flight');
      process.kill(pid, 'SIGCONT');
      thawed = true;
      const held = await (answers[0].name === 'a' ? b : a);
      assert.equal(held.status, 201, held.text);
      const retry = await server.register(user, keyHeader(key));
      assert.equal(retry.status, 201, retry.text);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.json.user.id, held.json.user.id);
    } finally {
      if (!thawed) process.kill(pid, 'SIGCONT');
    }
  });

  it('MariaDB stopped and killed under sign-ups with keys: every client that retries with its key ends with one account and a 201, never a 409', async (t) => {
    const outages = [];
    for (const how of ['stop', 'kill']) {
      outages.push({
        what: how === 'kill' ? 'MariaDB killed' : 'MariaDB stopped',
        down: () => (how === 'kill' ? db.kill() : db.stop()),
        up: () => db.start(),
      });
    }
    const { clients } = await signUpsWithKeysThrough(t, server, outages);
    assert.equal(server.query('SELECT count(*) AS n FROM users')[0].n, clients.length + 2,
      'no account but the clients\' (and the two of the in-flight test)');
  });

  it('the answer lost with the connection after the commit (the retry meets the outage): the client retries with its key and gets its account, not a 409', async (t) => {
    // Between registrar and MariaDB, a proxy that lets a keyed sign-up's CALL through (MariaDB
    // commits it), then drops every answer with its connection and refuses new ones for a while:
    // the request's retry on a fresh connection meets the outage and it answers 503 — committed.
    // Without a key, that client's retry is a 409 for its own account (IdempotencyLostAnswer in
    // tests/unit/idempotency_test.cpp); with its key it must get its account.
    const proxy = await cuttingProxy(db.port);
    const viaProxy = {
      url: (name) => `mysql://${db.user}:${db.password}@127.0.0.1:${proxy.port}/${name}`,
      createDatabase: () => db.createDatabase(),
      dropDatabase: (name) => db.dropDatabase(name),
      query: (sql, opts) => db.query(sql, opts),
    };
    const proxied = await Server.start({ db: 'mysql', mariadb: viaProxy });
    try {
      const CUTS = 4;
      const cuts = Array.from({ length: CUTS }, (_, i) => ({
        what: `the answer of a committed sign-up lost (${i + 1})`,
        down: async () => {
          const before = proxy.cuts;
          proxy.armCallCut();
          await eventually(() => proxy.cuts > before, { intervalMs: 5, timeoutMs: 30_000, what: 'a keyed sign-up\'s CALL let through, then cut' });
        },
        up: async () => proxy.restore(),
      }));
      const { clients, replayed } = await signUpsWithKeysThrough(t, proxied, cuts, { outageMs: 1_000 });
      assert.equal(proxy.cuts, CUTS);
      assert.equal(proxied.query('SELECT count(*) AS n FROM users')[0].n, clients.length, 'no account but the clients\'');
      // Each cut lost the answer of one committed sign-up at least: its client got a 503, then
      // (retrying with its key) a replayed 201 — the account its first request made.
      assert.ok(replayed.length >= CUTS, `${replayed.length} replays after ${CUTS} lost answers`);
    } finally {
      await proxied.dispose();
      proxy.close();
    }
  });
});

// A TCP proxy to 127.0.0.1:targetPort that can lose a sign-up's answer after its commit. It
// follows the MySQL packets of each connection (3-byte length, sequence number, payload): a
// COM_STMT_PREPARE (0x16) of the keyed sign-up's CALL, the statement id in the server's
// PREPARE_OK, and a COM_STMT_EXECUTE (0x17) of that id. Once armCallCut() is called, the next
// such EXECUTE goes through to MariaDB (which commits it), and from then on every server answer
// on every connection is dropped with its connection, and new connections are refused, until
// restore(): the failure of a database that goes away just after a commit.
async function cuttingProxy(targetPort) {
  const conns = new Set();
  let armed = false;
  let cutting = false;
  let cuts = 0;
  // Splits a stream into MySQL packets: feed(chunk) calls onPacket(seq, payload) for each whole one.
  const packets = (onPacket) => {
    let buf = Buffer.alloc(0);
    return (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readUIntLE(0, 3);
        if (buf.length < 4 + len) break;
        onPacket(buf[3], buf.subarray(4, 4 + len));
        buf = buf.subarray(4 + len);
      }
    };
  };
  const server = net.createServer((client) => {
    if (cutting) { client.destroy(); return; }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const conn = { client, upstream, callIds: new Set(), awaitingId: false };
    conns.add(conn);
    const close = () => { client.destroy(); upstream.destroy(); conns.delete(conn); };
    const fromClient = packets((seq, payload) => {
      if (seq !== 0 || payload.length === 0) return; // commands start a sequence
      if (payload[0] === 0x16) conn.awaitingId = payload.includes('registrar_create_user_with_key');
      if (payload[0] === 0x17 && armed && payload.length >= 5 && conn.callIds.has(payload.readUInt32LE(1))) {
        armed = false;
        cutting = true;
        cuts += 1;
      }
    });
    const fromServer = packets((seq, payload) => {
      if (conn.awaitingId && seq === 1 && payload[0] === 0x00 && payload.length >= 5) {
        conn.callIds.add(payload.readUInt32LE(1));
        conn.awaitingId = false;
      }
    });
    client.on('data', (d) => { fromClient(d); upstream.write(d); });
    upstream.on('data', (d) => { if (cutting) { close(); return; } fromServer(d); client.write(d); });
    for (const sock of [client, upstream]) { sock.on('error', close); sock.on('close', close); }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    get cuts() { return cuts; },
    armCallCut() { armed = true; },
    restore() { armed = false; cutting = false; },
    close() { server.close(); for (const c of conns) { c.client.destroy(); c.upstream.destroy(); } },
  };
}

// Many clients, each signing up with its own key and retrying (with back-off) until it gets a
// 201, SLOTS at a time, while each of `outages` happens: {what, down(), up()}. Asserts that every
// client ended with a 201 and exactly its one account, that none got a 409 (or anything but 201
// and 503), and that every account has one user.registered event. Returns the clients and those
// whose last answer was a replay after a 503 (a commit whose answer was lost).
async function signUpsWithKeysThrough(t, server, outages, { outageMs = 3_000 } = {}) {
  const SLOTS = 16;
  const clients = []; // { user, key, attempts: [{status, code, replayed}], result }
  const transportErrors = [];
  let stopping = false;
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));

  // One client: sign up with its key until a 201; back off on 503 or a transport error. Any other
  // answer ends the client, as a failure.
  async function client(n) {
    const c = { user: newUser(`c${n}`), key: newKey(), attempts: [], result: null };
    clients.push(c);
    let delay = 25;
    for (;;) {
      let res;
      try {
        res = await server.register(c.user, keyHeader(c.key));
      } catch (error) {
        transportErrors.push(`${error.code || ''} ${error.message}`);
        c.attempts.push({ status: 'error' });
        await pause(delay);
        delay = Math.min(delay * 2, 500);
        continue;
      }
      c.attempts.push({ status: res.status, code: res.json && res.json.code, replayed: res.headers['idempotent-replayed'] === 'true' });
      if (res.status !== 503) { c.result = res; return; }
      await pause(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 500);
    }
  }
  const done = () => clients.filter((c) => c.result && c.result.status === 201).length;
  const unavailable = () => clients.reduce((n, c) => n + c.attempts.filter((a) => a.status === 503).length, 0);

  let next = 0;
  const slots = Array.from({ length: SLOTS }, async () => { while (!stopping) await client(next++); });
  try {
    for (const outage of outages) {
      const before201 = done();
      await eventually(() => done() >= before201 + 40, { intervalMs: 10, timeoutMs: 60_000, what: `sign-ups before: ${outage.what}` });
      const before503 = unavailable();
      await outage.down();
      const downAt = Date.now();
      await eventually(() => unavailable() >= before503 + 20, { intervalMs: 10, timeoutMs: 30_000, what: `503s while ${outage.what}` });
      await eventually(() => Date.now() - downAt >= outageMs, { intervalMs: 50, timeoutMs: outageMs + 1_000, what: 'the outage' });
      await outage.up();
      const after201 = done();
      await eventually(() => done() >= after201 + 40, { intervalMs: 10, timeoutMs: 60_000, what: `sign-ups after: ${outage.what}` });
    }
  } finally {
    stopping = true;
    await Promise.all(slots); // each running client goes on until its 201 (or a failure)
  }

  const failures = clients.filter((c) => !c.result || c.result.status !== 201)
    .map((c) => `${c.user.username}: ${c.attempts.map((a) => `${a.status}${a.code ? ` ${a.code}` : ''}`).join(', ')} → ${c.result ? c.result.text : 'no answer'}`);
  assert.deepEqual(failures, [], 'clients that did not end with a 201');
  const conflicts = clients.filter((c) => c.attempts.some((a) => a.status === 409));
  assert.deepEqual(conflicts.map((c) => c.user.username), [], 'clients that got a 409 for their own account');
  assert.deepEqual(transportErrors, [], 'transport errors (resets, hang-ups)');

  // Exactly one account per client, the one its 201 named.
  const byName = new Map();
  for (const r of server.query('SELECT id, username FROM users')) byName.set(r.username, [...(byName.get(r.username) || []), r.id]);
  const wrong = clients.filter((c) => { const ids = byName.get(c.user.username) || []; return ids.length !== 1 || ids[0] !== c.result.json.user.id; })
    .map((c) => `${c.user.username}: ${JSON.stringify(byName.get(c.user.username))} vs ${c.result.json.user.id}`);
  assert.deepEqual(wrong, [], 'clients without exactly their one account');
  const eventsPerUser = server.query("SELECT u.id FROM users u LEFT JOIN outbox o ON o.aggregate_id = u.id AND o.event_type = 'user.registered' GROUP BY u.id HAVING count(o.seq) <> 1");
  assert.deepEqual(eventsPerUser, [], 'users without exactly one user.registered event');

  const retried = clients.filter((c) => c.attempts.length > 1);
  const replayed = clients.filter((c) => c.attempts.length > 1 && c.attempts.at(-1).replayed);
  t.diagnostic(`${clients.length} clients, ${unavailable()} answers 503, ${retried.length} clients retried, `
    + `${replayed.length} got their account back from a committed sign-up whose answer was lost (503, then a replayed 201)`);
  for (const c of replayed.slice(0, 3)) t.diagnostic(`  e.g. ${c.user.username}: ${c.attempts.map((a) => a.status).join(' → ')}`);
  return { clients, replayed };
}
