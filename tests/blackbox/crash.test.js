'use strict';
// Process lifecycle: graceful shutdown with a request in flight, and kill -9 under load followed
// by a restart (transactional outbox: no user without its event, every event delivered once).
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { Server, newUser, eventually, workersCpuMs } = require('./harness');

describe('lifecycle', () => {
  it('SIGTERM during an in-flight register: the request still gets its 201, then exit 0', async (t) => {
    // An expensive hash (256 MiB, 6 passes: a few hundred ms of CPU) makes the request last long
    // enough to be caught in flight; the hash workers using CPU (idle, they use none) tells us
    // that it is hashing now.
    const server = await Server.start({ weakArgon2: false, args: ['--argon2-memory-kib', String(256 * 1024), '--argon2-iterations', '6'] });
    try {
      const baseline = workersCpuMs(server.pid);
      const user = newUser('term');
      const pending = server.register(user);
      await eventually(() => workersCpuMs(server.pid) - baseline >= 50, { intervalMs: 2, timeoutMs: 10_000, what: 'the server to start hashing (its workers using 50 ms of CPU)' });
      server.child.kill('SIGTERM');
      const res = await pending;
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.user.email, user.email);
      const exit = await server.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, `exit status; log tail:\n${server.logText().slice(-2000)}`);
      // The user and its event are durable.
      const rows = server.query(`SELECT u.id, (SELECT count(*) FROM outbox o WHERE o.aggregate_id = u.id) AS events FROM users u WHERE u.id = '${res.json.user.id}'`);
      assert.deepEqual(rows, [{ id: res.json.user.id, events: 1 }]);
    } finally {
      await server.dispose();
    }
  });

  it('SIGINT → graceful exit 0', async () => {
    const server = await Server.start();
    try {
      await server.registerNew('int');
      const exit = await server.stop({ signal: 'SIGINT' });
      assert.deepEqual(exit, { code: 0, signal: null });
    } finally {
      await server.dispose();
    }
  });

  it('kill -9 under load, then restart: users and events consistent, every event audited once', async (t) => {
    const server = await Server.start();
    try {
      const created = []; // ids answered 201
      let failures = 0;
      let stop = false;
      const client = async (n) => {
        while (!stop) {
          const u = newUser(`k${n}`);
          try {
            const res = await server.register(u);
            if (res.status === 201) created.push(res.json.user.id);
            else if (!stop) throw new Error(`unexpected ${res.status}: ${res.text}`);
          } catch (e) {
            if (!server.running || stop) break; // the crash cut it off
            failures += 1;
            if (failures > 5) throw e;
          }
        }
      };
      const clients = Array.from({ length: 8 }, (_, i) => client(i));
      // Let real load build up, then crash it with requests in flight.
      await eventually(() => created.length >= 150, { intervalMs: 5, timeoutMs: 30_000, what: '150 sign-ups under load' });
      stop = true; // in the same tick as the SIGKILL: requests in flight stay in flight
      const exit = await server.kill9();
      await Promise.all(clients);
      assert.equal(exit.signal, 'SIGKILL');
      t.diagnostic(`201s before the crash: ${created.length}`);

      // Database: every user has exactly one user.registered row, every row has its user.
      const usersWithoutOneEvent = server.query(`SELECT u.id, count(o.seq) AS n FROM users u LEFT JOIN outbox o ON o.aggregate_id = u.id AND o.event_type = 'user.registered' GROUP BY u.id HAVING count(o.seq) <> 1`);
      assert.deepEqual(usersWithoutOneEvent, [], 'users without exactly one outbox row');
      const orphanEvents = server.query('SELECT o.seq, o.aggregate_id FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.aggregate_id)');
      assert.deepEqual(orphanEvents, [], 'outbox rows without their user');
      const ids = new Set(server.query('SELECT id FROM users').map((r) => r.id));
      const lost = created.filter((id) => !ids.has(id));
      assert.deepEqual(lost, [], 'users answered 201 but missing after the crash');
      const events = server.query('SELECT event_id, aggregate_id FROM outbox');
      assert.equal(events.length, ids.size);
      const dupIds = server.query('SELECT event_id, count(*) AS n FROM outbox GROUP BY event_id HAVING n > 1');
      assert.deepEqual(dupIds, [], 'event ids are unique');

      const auditedBefore = new Set(server.auditLines().filter((l) => l.eventId).map((l) => l.eventId));
      const undelivered = events.filter((e) => !auditedBefore.has(e.event_id));
      t.diagnostic(`users ${ids.size}, events audited before the crash ${auditedBefore.size}, not yet: ${undelivered.length}`);

      // Restart on the same data dir: the events not yet dispatched get delivered now. Rows that
      // the crashed process had leased come back when their lease runs out (30 s by default), so
      // "eventually" here is bounded by the lease plus a margin.
      const restartedAt = Date.now();
      await server.start();
      await eventually(() => {
        const seen = new Set(server.auditLines().filter((l) => l.eventId).map((l) => l.eventId));
        return events.every((e) => seen.has(e.event_id));
      }, { timeoutMs: 45_000, intervalMs: 100, what: 'every outbox event in audit.jsonl' });
      t.diagnostic(`all events audited ${Date.now() - restartedAt} ms after the restart`);
      await eventually(() => server.query('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')[0].n === 0,
        { timeoutMs: 45_000, intervalMs: 100, what: 'every outbox row marked sent' });
      t.diagnostic(`all outbox rows marked sent ${Date.now() - restartedAt} ms after the restart`);
      // Graceful stop, so that anything still on its way has been written before we count.
      const exit2 = await server.stop();
      assert.deepEqual(exit2, { code: 0, signal: null });

      const lines = server.auditLines();
      const torn = lines.filter((l) => l.torn !== undefined);
      assert.deepEqual(torn.map((l) => l.torn), [], 'every audit line is complete JSON (no line torn by the crash)');
      const counts = new Map();
      for (const l of lines) if (l.eventId) counts.set(l.eventId, (counts.get(l.eventId) || 0) + 1);
      const duplicated = [...counts].filter(([, n]) => n > 1);
      assert.deepEqual(duplicated, [], 'events audited more than once');
      for (const e of events) {
        assert.equal(counts.get(e.event_id), 1, `event ${e.event_id} audited once`);
      }
      const byEvent = new Map(lines.filter((l) => l.eventId).map((l) => [l.eventId, l]));
      for (const e of events) {
        const line = byEvent.get(e.event_id);
        assert.equal(line.payload.data.id, e.aggregate_id, 'the audited event names its user');
      }
    } finally {
      await server.dispose();
    }
  });
});
