'use strict';
// Bounded storage (issue 14): sign-ups under load through the in-process outbox path, with a short
// retention and a small audit log size. The sweep keeps the outbox and processed_events tables
// (and the SQLite file's free pages) bounded while events flow, and takes nothing that is still
// needed: every event id is audited exactly once across audit.jsonl and its rotated files.
//
// RETENTION_EVENTS events go through the outbox (default 20000: the default run; the figure in
// BENCHMARKS.md is RETENTION_EVENTS=200000, README, Retention): RETENTION_SIGNUPS of them (default
// 2000) are real sign-ups over HTTP, which must keep being answered while the sweep runs; the rest
// are written into the outbox by another writer on the same file (the sqlite3 CLI, as a second
// process would), in transactions of 2000 rows, so that the run measures the outbox, the relay,
// the audit consumer and the sweep rather than argon2.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { Server, newUser, eventually } = require('./harness');

// server.sql() runs the sqlite3 CLI synchronously, which stops this process's event loop (and the
// sign-up clients with it) for as long as the CLI waits for the database: under load that starves
// the clients' keep-alive connections. The load phase uses this asynchronous form instead.
const execFileAsync = promisify(execFile);
async function sqlAsync(server, query) {
  const { stdout } = await execFileAsync('sqlite3', ['-json', '-cmd', '.timeout 5000', server.dbPath, query]);
  return stdout.trim() ? JSON.parse(stdout) : [];
}

const EVENTS = Number(process.env.RETENTION_EVENTS || 20_000);
const SIGNUPS = Math.min(EVENTS, Number(process.env.RETENTION_SIGNUPS || 2_000));
const CHUNK = 2000;
const CLIENTS = 16;
const RETAIN_S = 2; // sent events and processed records
const INTERVAL_S = 1;

// Sizes in the database: rows of the swept tables, their bytes (tables and indexes, from dbstat),
// the file (page_count × page_size) and its free pages.
async function sizes(server) {
  const [r] = await sqlAsync(server, `SELECT
      (SELECT count(*) FROM outbox) AS outbox,
      (SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL) AS sent,
      (SELECT count(*) FROM processed_events) AS processed,
      (SELECT count(*) FROM users) AS users,
      (SELECT page_count FROM pragma_page_count) AS pages,
      (SELECT page_size FROM pragma_page_size) AS pageSize,
      (SELECT freelist_count FROM pragma_freelist_count) AS freePages,
      (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN
          ('outbox', 'outbox_pending', 'outbox_pending_by_aggregate', 'outbox_sent_at', 'sqlite_autoindex_outbox_1',
           'processed_events', 'processed_events_processed_at')) AS sweptBytes`);
  return { ...r, fileBytes: r.pages * r.pageSize };
}

function auditFiles(server) {
  return fs.readdirSync(server.dataDir).filter((f) => f === 'audit.jsonl' || /^audit\.jsonl\.\d+$/.test(f))
    .map((f) => path.join(server.dataDir, f));
}

describe('retention under load', () => {
  it(`${EVENTS} events (${SIGNUPS} sign-ups): swept tables stay bounded, every event audited exactly once`, { timeout: 3_600_000 }, async (t) => {
    const server = await Server.start({
      db: 'sqlite', // the file-size checks read SQLite's pages
      args: [
        '--consumers', 'audit',
        '--retain-sent-events', String(RETAIN_S),
        '--retain-processed-events', String(RETAIN_S),
        '--retention-interval', String(INTERVAL_S),
        '--retention-batch', '500',
        // Rotation under load too: ~1 MiB files, all kept so that every line can be counted.
        '--audit-log-max-bytes', String(1 << 20),
        '--audit-log-keep', '1000',
        '--access-log', 'false',
      ],
    });
    try {
      const created = []; // aggregate ids whose event must be audited once: users, then injected
      let next = 0;
      const client = async () => {
        while (next < SIGNUPS) {
          next += 1;
          const res = await server.register(newUser('r'));
          assert.equal(res.status, 201, res.text);
          created.push(res.json.user.id);
        }
      };
      const samples = [];
      let loading = true;
      const started = Date.now();
      const sampler = (async () => {
        while (loading) {
          samples.push({ at: Date.now() - started, done: created.length, ...(await sizes(server)) });
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const inject = async () => {
        for (let from = 1; from <= EVENTS - SIGNUPS; from += CHUNK) {
          // Keep at most two chunks waiting for the relay, so that what is measured is the sweep
          // (sent rows and records), not a relay that a faster writer outruns.
          const waitUntil = Date.now() + 120_000;
          while ((await sqlAsync(server, 'SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL'))[0].n >= 2 * CHUNK) {
            assert.ok(Date.now() < waitUntil, 'the relay caught up within 120 s');
            await new Promise((r) => setTimeout(r, 250));
          }
          const to = Math.min(EVENTS - SIGNUPS, from + CHUNK - 1);
          await sqlAsync(server, `WITH RECURSIVE k(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM k WHERE i < ${to})
            INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at)
            SELECT 'inj-' || i, 'user.registered', 'agg-' || i,
              '{"event":"user.registered","pattern":"user.registered","data":{"id":"agg-' || i || '","email":"inj' || i || '@example.com"},"timestamp":"2026-12-07T00:00:00.000Z"}',
              strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM k`);
          for (let i = from; i <= to; i += 1) created.push(`agg-${i}`);
          await new Promise((r) => setTimeout(r, 100)); // the sign-ups go on meanwhile
        }
      };
      await Promise.all([...Array.from({ length: CLIENTS }, client), inject()]);
      loading = false;
      await sampler;
      const seconds = (Date.now() - started) / 1000;
      const rate = created.length / seconds;
      t.diagnostic(`${created.length} events (${SIGNUPS} sign-ups) written in ${seconds.toFixed(1)} s (${rate.toFixed(0)}/s)`);

      // Everything delivered, then swept: the tables empty out once the retention has passed.
      await eventually(() => server.sql('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')[0].n === 0,
        { timeoutMs: 120_000, intervalMs: 200, what: 'every outbox row sent' });
      const emptyBy = Date.now() + 60_000;
      let end = await sizes(server);
      while (!(end.outbox === 0 && end.processed === 0 && end.freePages < 64)) {
        assert.ok(Date.now() < emptyBy, `the swept tables empty and the free pages given back: ${JSON.stringify(end)}`);
        await new Promise((r) => setTimeout(r, 250));
        end = await sizes(server);
      }
      samples.push({ at: Date.now() - started, done: created.length, ...end });
      for (const s of samples.filter((_, i, a) => i % Math.max(1, Math.floor(a.length / 12)) === 0 || i === a.length - 1))
        t.diagnostic(`t=${(s.at / 1000).toFixed(0)}s events=${s.done} users=${s.users} outbox=${s.outbox} (sent ${s.sent}) processed=${s.processed} ` +
          `swept tables ${(s.sweptBytes / 1024).toFixed(0)} KiB, file ${(s.fileBytes / 1048576).toFixed(1)} MiB, free pages ${s.freePages}`);

      // The bound: the swept tables hold at most the events of about (retention + interval + a
      // sweep's lag) seconds, however many went through. The rate used is the run's peak per
      // second (from the samples), with a generous lag for a loaded test machine.
      let peak = 0;
      for (let i = 1; i < samples.length; i += 1) {
        const dt = (samples[i].at - samples[i - 1].at) / 1000;
        if (dt > 0) peak = Math.max(peak, (samples[i].done - samples[i - 1].done) / dt);
      }
      const bound = Math.ceil(Math.max(peak, rate) * (RETAIN_S + INTERVAL_S + 5)) + 1000;
      const maxOutbox = Math.max(...samples.map((s) => s.outbox));
      const maxSent = Math.max(...samples.map((s) => s.sent));
      const maxProcessed = Math.max(...samples.map((s) => s.processed));
      t.diagnostic(`peak ${peak.toFixed(0)}/s: bound ${bound} rows; max outbox ${maxOutbox} (sent ${maxSent}), max processed_events ${maxProcessed}`);
      assert.ok(maxSent <= bound, `sent outbox rows ${maxSent} > bound ${bound}`);
      assert.ok(maxOutbox <= bound + 3 * CHUNK + CLIENTS, `outbox rows ${maxOutbox} > bound ${bound} + pending`);
      assert.ok(maxProcessed <= bound, `processed_events rows ${maxProcessed} > bound ${bound}`);
      if (EVENTS >= 4 * bound) {
        // Only meaningful when the run is much longer than the retention: the tables never held
        // more than a fraction of all events.
        assert.ok(maxOutbox < EVENTS / 2 && maxProcessed < EVENTS / 2, 'the swept tables stayed well below the total');
      }
      // The file: the users (kept) plus at most the swept tables' bound and their free pages; the
      // free pages are given back (incremental vacuum), so at the end almost none remain.
      const perRowBytes = Math.max(...samples.filter((s) => s.outbox + s.processed > 0).map((s) => s.sweptBytes / (s.outbox + s.processed)), 1);
      assert.ok(end.freePages < 64, `free pages at the end: ${end.freePages}`);
      const maxSweptBytes = Math.max(...samples.map((s) => s.sweptBytes));
      assert.ok(maxSweptBytes <= 2 * bound * perRowBytes + (1 << 20), `swept tables reached ${maxSweptBytes} bytes`);

      // Exactly once: every event id of every user created, once, across the audit files.
      const exit = await server.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      const files = auditFiles(server);
      t.diagnostic(`audit files: ${files.length}`);
      assert.ok(files.length > 1 || EVENTS < 5000, 'the audit log rotated under load');
      const counts = new Map();
      const aggregates = new Set();
      for (const f of files) {
        for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
          if (!l) continue;
          const line = JSON.parse(l);
          counts.set(line.eventId, (counts.get(line.eventId) || 0) + 1);
          aggregates.add(line.payload.data.id);
        }
      }
      const twice = [...counts].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], 'events audited more than once');
      const missing = created.filter((id) => !aggregates.has(id));
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} events without their audit line`);
      assert.equal(counts.size, created.length, 'one event per sign-up or injected row, each audited once');
      const swept = server.logs.filter((l) => l.msg === 'retention sweep');
      assert.ok(swept.length > 0, 'the sweep ran and logged');
    } catch (e) {
      t.diagnostic(`server log tail:\n${server.logText().slice(-4000)}`);
      throw e;
    } finally {
      await server.dispose();
    }
  });
});
