'use strict';
// Logs that stay readable in an outage (issue 10): with MariaDB stopped under load, the service
// used to write one error line per 503 (about 14,700 in four seconds). Now repeated failures of
// one kind are one episode:
//  - at error level, only "failure episode started" (with the first request's id and error), at
//    most one "failure episode continues" per --log-failure-interval with the count since the line
//    before, and "failure episode ended" once the database is back, whose total is at least the
//    503s the client saw (and the "failures" of the episode's lines add up to it);
//  - every failed request is still logged at debug level with its request id, so one request can
//    be traced.
// Sign-ups, logins and GET /users/me run throughout. Runs on its own private MariaDB.
// The same for a built-in consumer whose backend is down (the welcome mail's SMTP server): one
// warning episode, closed at shutdown, instead of a warning per event and retry.
//
//   node --test tests/blackbox/outage_logs.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, MariaDb, newUser, eventually, scaled } = require('./harness');

const INTERVAL_S = 1; // --log-failure-interval: summaries at most this often, end after this long without a failure
const OUTAGE_MS = 4_000;
const EPISODE_MSGS = ['failure episode started', 'failure episode continues', 'failure episode ended'];

describe('logs during a database outage under load', () => {
  let db;
  let server;
  before(async () => {
    db = await MariaDb.create();
    server = await Server.start({
      db: 'mysql', mariadb: db, args: ['--log-level', 'debug', '--log-failure-interval', String(INTERVAL_S)],
    });
  });
  after(async () => {
    try {
      if (server) await server.dispose();
    } finally {
      if (db) await db.dispose();
    }
  });

  it('a few error lines (start, summaries, end) instead of one per 503; each failed request at debug level', async (t) => {
    // Accounts to log in and to ask /users/me for, made while the database is up.
    const accounts = [];
    for (let i = 0; i < 4; i++) {
      const user = newUser(`o${i}`);
      const res = await server.register(user);
      assert.equal(res.status, 201, res.text);
      accounts.push({ user, token: res.json.accessToken });
    }

    const answers = []; // { kind, t0, t1, res | error }
    let stopping = false;
    const loop = async (kind, send) => {
      while (!stopping) {
        const t0 = Date.now();
        try {
          const res = await send();
          answers.push({ kind, t0, t1: Date.now(), res });
        } catch (error) {
          answers.push({ kind, t0, t1: Date.now(), error });
        }
      }
    };
    const loops = [
      ...Array.from({ length: 4 }, () => loop('register', () => server.register(newUser('o')))),
      ...Array.from({ length: 2 }, (_, i) => loop('login', () => server.login({ username: accounts[i].user.username, password: accounts[i].user.password }))),
      ...Array.from({ length: 3 }, (_, i) => loop('me', () => server.me(accounts[i].token))),
    ];
    const linesBefore = server.lines.length;
    let downAt;
    let upAt;
    try {
      await new Promise((r) => setTimeout(r, 500)); // load on a healthy service first
      await db.stop();
      downAt = Date.now();
      await eventually(() => Date.now() - downAt >= OUTAGE_MS, { intervalMs: 100, timeoutMs: OUTAGE_MS + 1_000, what: 'the outage' });
      await db.start();
      upAt = Date.now();
      // Served again: a sign-up, a login and a /users/me succeed after the restart.
      await eventually(() => ['register', 'login', 'me'].every((kind) => answers.some((a) => a.kind === kind && a.t0 >= upAt
        && a.res && a.res.status === (kind === 'register' ? 201 : 200))),
      { intervalMs: 20, timeoutMs: 30_000, what: 'sign-ups, logins and /users/me served again after MariaDB restarted' });
      // The episode ends once no request has failed for the interval, with nothing more asked of it.
      await server.waitForLog((l) => l.msg === 'failure episode ended' && l.episode === 'backend_unavailable',
        { timeoutMs: scaled(15_000), fromIndex: linesBefore, what: 'the end of the backend_unavailable episode' });
    } finally {
      stopping = true;
      await Promise.all(loops);
    }

    const lines = server.lines.slice(linesBefore).filter((l) => l.json);
    const unavailable = answers.filter((a) => a.res && a.res.status === 503);
    for (const kind of ['register', 'login', 'me'])
      assert.ok(unavailable.some((a) => a.kind === kind), `no 503 for ${kind} while MariaDB was down`);
    for (const a of unavailable) assert.equal(a.res.json.code, 'backend_unavailable', a.res.text);
    assert.deepEqual(answers.filter((a) => a.error).map((a) => a.error.message), [], 'transport errors');

    // Error level: episode lines only, and few of them.
    const errors = lines.filter((l) => l.json.level === 'error');
    assert.deepEqual(errors.filter((l) => !EPISODE_MSGS.includes(l.json.msg)).map((l) => l.text), [],
      'error lines other than failure episodes');
    const episode = errors.filter((l) => l.json.episode === 'backend_unavailable').map((l) => l.json);
    const started = episode.filter((l) => l.msg === 'failure episode started');
    const summaries = episode.filter((l) => l.msg === 'failure episode continues');
    const ended = episode.filter((l) => l.msg === 'failure episode ended');
    assert.equal(started.length, 1, JSON.stringify(episode));
    assert.equal(ended.length, 1, JSON.stringify(episode));
    const lastAnswerAt = Math.max(...answers.map((a) => a.t1));
    const episodeSeconds = (lastAnswerAt - downAt) / 1000;
    assert.ok(summaries.length <= Math.ceil(episodeSeconds / INTERVAL_S) + 1,
      `${summaries.length} summaries in ${episodeSeconds} s, at most one per ${INTERVAL_S} s`);
    assert.ok(errors.length <= summaries.length + 2, `${errors.length} error lines`);
    // Summaries at least an interval apart (the log's timestamps have millisecond precision).
    const times = episode.map((l) => Date.parse(l.ts));
    for (let i = 1; i < times.length - 1; i++) assert.ok(times[i] - times[i - 1] >= INTERVAL_S * 1000 - 1, `lines ${i - 1} and ${i}: ${JSON.stringify(episode)}`);

    // The start names a failed request; the end comes after the restart, with every failure counted.
    assert.match(started[0].requestId, /^[0-9a-f]{24}$/);
    assert.match(started[0].error, /mysql/);
    assert.equal(started[0].failure, 'request failed');
    assert.ok(Date.parse(ended[0].ts) >= upAt, `ended at ${ended[0].ts}, MariaDB back at ${new Date(upAt).toISOString()}`);
    assert.equal(ended[0].endedBy, 'quiet');
    assert.ok(ended[0].total >= unavailable.length, `episode total ${ended[0].total} < ${unavailable.length} 503s seen by the client`);
    assert.equal(episode.reduce((sum, l) => sum + l.failures, 0), ended[0].total, 'the lines\' "failures" add up to the total');

    // Debug level: one line per failed request, with its id.
    const failedIds = new Set(lines.filter((l) => l.json.level === 'debug' && l.json.msg === 'request failed'
      && l.json.episode === 'backend_unavailable').map((l) => l.json.requestId));
    const untraced = unavailable.map((a) => a.res.json.requestId).filter((id) => !failedIds.has(id));
    assert.deepEqual(untraced, [], '503s without their debug line');
    assert.equal(failedIds.size, ended[0].total, 'one debug line per failure');

    const warns = lines.filter((l) => l.json.level === 'warn');
    t.diagnostic(`${unavailable.length} answers 503 in a ${upAt - downAt} ms outage; error lines: ${errors.length} `
      + `(${summaries.length} summaries), episode total ${ended[0].total}, ${Math.round(ended[0].durationMs)} ms; `
      + `debug "request failed" lines: ${failedIds.size}; warn lines: ${warns.length} (${[...new Set(warns.map((l) => l.json.msg))].join('; ')})`);
    await server.stopCleanly();
  });
});

describe('logs while a consumer\'s backend is down', () => {
  it('the welcome consumer failing every event (SMTP server down): one warning episode, each event at debug level', async (t) => {
    const server = await Server.start({
      db: 'sqlite',
      args: ['--consumers', 'audit,welcome', '--smtp-url', 'smtp://127.0.0.1:1', '--mail-from', 'noreply@example.com',
        '--log-level', 'debug', '--log-failure-interval', String(INTERVAL_S)],
    });
    try {
      const startedAt = Date.now();
      let signUps = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (Date.now() - startedAt < 3_000) {
          const res = await server.register(newUser('w'));
          assert.equal(res.status, 201, res.text);
          signUps += 1;
        }
      }));
      await server.stopCleanly(); // the open episode ends at shutdown, before the "stopped" line
      const lines = server.lines.filter((l) => l.json).map((l) => l.json);
      const episode = lines.filter((l) => l.episode === 'consumer:welcome' && EPISODE_MSGS.includes(l.msg));
      assert.ok(episode.every((l) => l.level === 'warn'), JSON.stringify(episode));
      const started = episode.filter((l) => l.msg === 'failure episode started');
      const summaries = episode.filter((l) => l.msg === 'failure episode continues');
      const ended = episode.filter((l) => l.msg === 'failure episode ended');
      assert.equal(started.length, 1, JSON.stringify(episode));
      assert.equal(ended.length, 1, JSON.stringify(episode));
      assert.equal(ended[0].endedBy, 'shutdown');
      const seconds = (Date.now() - startedAt) / 1000;
      assert.ok(summaries.length <= Math.ceil(seconds / INTERVAL_S) + 1, `${summaries.length} summaries in ${seconds} s`);
      assert.ok(lines.findIndex((l) => l.msg === 'failure episode ended') < lines.findIndex((l) => l.msg === 'stopped'));
      // Every failed delivery at debug level, and none on its own at warn level.
      const each = lines.filter((l) => l.msg === 'consumer failed an event; it will be retried');
      assert.ok(each.every((l) => l.level === 'debug' && l.consumer === 'welcome' && l.eventId));
      assert.equal(each.length, ended[0].total);
      // Retries count: the same event fails again on each pass (the in-process relay retries the
      // oldest unsent events first, so how many distinct events were tried by the stop depends on
      // the machine's speed; the rest stay in the outbox for the next start).
      const eventIds = new Set(each.map((l) => l.eventId));
      assert.ok(eventIds.size > 0 && eventIds.size <= signUps, `${eventIds.size} events failed for ${signUps} sign-ups`);
      assert.ok(ended[0].total >= eventIds.size, `${ended[0].total} failures for ${eventIds.size} events`);
      assert.equal(episode.reduce((sum, l) => sum + l.failures, 0), ended[0].total);
      const warns = lines.filter((l) => l.level === 'warn');
      t.diagnostic(`${signUps} sign-ups, ${ended[0].total} failed deliveries of ${eventIds.size} events to the welcome consumer; warn lines: ${warns.length}`);
    } finally {
      await server.dispose();
    }
  });
});
