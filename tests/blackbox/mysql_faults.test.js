'use strict';
// The MySQL backend when the database goes away under load, and comes back (issue 4):
//  - while MariaDB is down, sign-ups and /users/me answer 503 problem+json with Retry-After: never
//    a 500, never a reset connection, never a crash; /healthz stays 200 and /readyz answers 503;
//  - once MariaDB is back, the same process serves again (201/200, /readyz 200), no restart;
//  - no request is half applied: every user has exactly one outbox row and every outbox row its
//    user, and every user answered 201 exists.
// Two outages in a row: a graceful stop (connections closed by the server) and a SIGKILL (sockets
// reset, crash recovery on start). Runs on its own private MariaDB whatever REGISTRAR_TEST_DB says.
//
//   node --test tests/blackbox/mysql_faults.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, MariaDb, newUser, assertProblem, eventually } = require('./harness');

const REGISTER_LOOPS = 6;
const ME_LOOPS = 3;
const RECOVERY_DEADLINE_MS = 30_000;
// How long each outage lasts at least (a deliberate duration: longer than the pool's connect
// timeout, so that connection attempts, idle connections and the relay all meet the dead server).
const OUTAGE_MS = 4_000;

describe('MySQL backend: database outage under load', () => {
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

  // Every answer (or transport error) of the load loops, with its start/end time.
  const records = [];
  const created = []; // user ids answered 201
  let tokens = [];

  // Sign-up and /users/me loops until stop() is called; each records every outcome.
  function startLoad() {
    let stopping = false;
    const timed = async (kind, fn) => {
      const t0 = Date.now();
      try {
        const res = await fn();
        records.push({ kind, t0, t1: Date.now(), res });
        return res;
      } catch (error) {
        records.push({ kind, t0, t1: Date.now(), error });
        return null;
      }
    };
    const registerLoop = async (n) => {
      while (!stopping) {
        const res = await timed('register', () => server.register(newUser(`f${n}`)));
        if (res && res.status === 201) {
          created.push(res.json.user.id);
          if (tokens.length < 20) tokens.push(res.json.accessToken);
        }
      }
    };
    const meLoop = async (n) => {
      while (!stopping) {
        if (!tokens.length) { await new Promise((r) => setTimeout(r, 5)); continue; } // the first sign-up
        await timed('me', () => server.me(tokens[n % tokens.length]));
      }
    };
    const loops = [
      ...Array.from({ length: REGISTER_LOOPS }, (_, i) => registerLoop(i)),
      ...Array.from({ length: ME_LOOPS }, (_, i) => meLoop(i)),
    ];
    return { stop: async () => { stopping = true; await Promise.all(loops); } };
  }

  const successes = (since, kind) => records.filter((r) => r.t0 >= since && r.kind === kind && r.res
    && r.res.status === (kind === 'register' ? 201 : 200)).length;
  const unavailable = (since, kind) => records.filter((r) => r.t0 >= since && r.kind === kind && r.res && r.res.status === 503).length;

  // Whatever the phase: only the expected statuses, and no transport error (reset, hang-up).
  function assertNoFailures(t, label) {
    const errors = records.filter((r) => r.error);
    assert.deepEqual(errors.map((r) => `${r.kind}: ${r.error.code || ''} ${r.error.message}`), [], `${label}: transport errors`);
    const allowed = { register: [201, 503], me: [200, 503] };
    const odd = records.filter((r) => !allowed[r.kind].includes(r.res.status));
    assert.deepEqual(odd.map((r) => `${r.kind} → ${r.res.status} ${r.res.text}`), [], `${label}: unexpected statuses`);
    for (const r of records.filter((x) => x.res.status === 503)) {
      assertProblem(r.res, 503);
      assert.match(String(r.res.headers['retry-after'] || ''), /^[1-9]\d*$/, `Retry-After on a 503: ${JSON.stringify(r.res.headers)}`);
    }
  }

  async function outage(t, how) {
    const load = startLoad();
    try {
      const phaseStart = Date.now();
      await eventually(() => successes(phaseStart, 'register') >= 20 && successes(phaseStart, 'me') >= 20,
        { intervalMs: 10, timeoutMs: 30_000, what: 'sign-ups and /users/me succeeding before the outage' });

      // ---- down
      await (how === 'kill' ? db.kill() : db.stop());
      const downAt = Date.now();
      await eventually(() => unavailable(downAt, 'register') >= 10 && unavailable(downAt, 'me') >= 10,
        { intervalMs: 10, timeoutMs: 30_000, what: '503s for sign-ups and /users/me while MariaDB is down' });
      await eventually(() => Date.now() - downAt >= OUTAGE_MS, { intervalMs: 100, timeoutMs: OUTAGE_MS + 1_000, what: 'the outage' });
      const health = await server.request('GET', '/healthz');
      assert.equal(health.status, 200, `/healthz during the outage: ${health.text}`);
      const ready = await server.request('GET', '/readyz');
      assertProblem(ready, 503);
      assert.ok(ready.headers['retry-after'], '/readyz 503 has Retry-After');
      assert.ok(server.running, 'the process is alive during the outage');

      // ---- up again
      const upAt = Date.now();
      // Requests that started after MariaDB was gone and ended before it came back: all 503.
      const during = records.filter((r) => r.t0 >= downAt && r.t1 <= upAt);
      const notUnavailable = during.filter((r) => !r.res || r.res.status !== 503);
      assert.deepEqual(notUnavailable.map((r) => `${r.kind} → ${r.res ? r.res.status : r.error.message}`), [],
        'answers other than 503 while MariaDB was down');
      await db.start();
      const restartedAt = Date.now();
      await eventually(async () => successes(restartedAt, 'register') >= 10 && successes(restartedAt, 'me') >= 10
        && (await server.request('GET', '/readyz')).status === 200,
      { intervalMs: 20, timeoutMs: RECOVERY_DEADLINE_MS, what: 'sign-ups 201, /users/me 200 and /readyz 200 after MariaDB restarted' });
      const recoveredAt = Date.now();
      // Once recovered, it stays recovered: a further stretch of load with no 503 at all.
      const settledAt = Date.now();
      await eventually(() => successes(settledAt, 'register') >= 30 && successes(settledAt, 'me') >= 30,
        { intervalMs: 10, timeoutMs: 30_000, what: 'steady service after the recovery' });
      const stillFailing = records.filter((r) => r.t0 >= settledAt && (!r.res || r.res.status >= 500));
      assert.deepEqual(stillFailing.map((r) => `${r.kind} → ${r.res ? r.res.status : r.error.message}`), [],
        'failures after the service had recovered');
      const count = (kind) => during.filter((r) => r.kind === kind).length;
      t.diagnostic(`${how}: ${upAt - downAt} ms outage, ${count('register')} sign-ups and ${count('me')} /users/me answered 503 in it; `
        + `recovered ${recoveredAt - restartedAt} ms after MariaDB accepted connections`);
    } finally {
      await load.stop();
    }
    assertNoFailures(t, how);
    assert.ok(server.running, 'the process is alive');
  }

  it('graceful stop of MariaDB under load → 503s; start → served again without a restart', async (t) => {
    await outage(t, 'stop');
  });

  it('MariaDB killed (SIGKILL) under load → 503s; start (crash recovery) → served again without a restart', async (t) => {
    await outage(t, 'kill');
  });

  it('no half-applied request: users and outbox rows match one to one; every 201 user exists', async (t) => {
    const statuses = {};
    for (const r of records) statuses[`${r.kind} ${r.res ? r.res.status : 'error'}`] = (statuses[`${r.kind} ${r.res ? r.res.status : 'error'}`] || 0) + 1;
    t.diagnostic(`answers: ${JSON.stringify(statuses)}`);
    assert.ok(created.length > 0);
    const usersWithoutOneEvent = server.query(`SELECT u.id, count(o.seq) AS n FROM users u LEFT JOIN outbox o ON o.aggregate_id = u.id AND o.event_type = 'user.registered' GROUP BY u.id HAVING count(o.seq) <> 1`);
    assert.deepEqual(usersWithoutOneEvent, [], 'users without exactly one user.registered outbox row');
    const orphanEvents = server.query('SELECT o.seq, o.aggregate_id FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.aggregate_id)');
    assert.deepEqual(orphanEvents, [], 'outbox rows without their user');
    const ids = new Set(server.query('SELECT id FROM users').map((r) => r.id));
    assert.deepEqual(created.filter((id) => !ids.has(id)), [], 'users answered 201 but missing');
    // More users than 201s is allowed (a commit whose answer was lost to the outage: 503).
    t.diagnostic(`users ${ids.size}, answered 201: ${created.length}`);
    // The in-process relay got going again too: every event is dispatched, without a restart.
    const t0 = Date.now();
    await eventually(() => server.query('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')[0].n === 0,
      { timeoutMs: 45_000, intervalMs: 100, what: 'every outbox row marked sent after the outages' });
    t.diagnostic(`every outbox row marked sent ${Date.now() - t0} ms after the load stopped`);
    await server.stopCleanly();
  });
});
