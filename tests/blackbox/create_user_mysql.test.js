'use strict';
// Create_User retries with back-off against a database that is really down (issue 12): a Node
// producer (the real `bull`) adds a job with {attempts: 3, backoff: exponential 200 ms}; its first
// two runs meet a stopped MariaDB (the mariadbd the test started, killed), and the third, once the
// database is back on the same port, creates the account. Only registrar works the queue (the
// worker of `serve`), so it is registrar that retries, delays and promotes the job, and honours a
// global pause of the queue.
//
// No sleeps: the test waits on the job's state. Between the second failed run and the third, the
// queue is paused (Queue#pause, global): the delayed job, once due, is promoted to the paused list
// and nobody takes it until the database is back and the queue resumed.
//
//   REGISTRAR_BIN=$PWD/build/registrar node --test --test-concurrency=1 tests/blackbox/create_user_mysql.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, MariaDb, eventually, newUser, requireNode, scaled } = require('./harness');
const { startRedis } = require('./support/redis');
const { newPhone, verificationSession } = require('./support/verification');

const Queue = requireNode('bull');

describe('Create_User on MySQL: retries with back-off while the database is stopped', () => {
  let db;
  let redis;
  let server;
  let queue;

  before(async () => {
    db = await MariaDb.create();
    redis = await startRedis();
    server = await Server.start({ db: 'mysql', mariadb: db, args: ['--redis-url', redis.url] });
    queue = new Queue('Create_User', redis.url);
    await queue.isReady();
  });
  after(async () => {
    if (queue) await queue.close();
    try {
      if (server) await server.dispose();
    } finally {
      try { if (redis) await redis.dispose(); } finally { if (db) await db.dispose(); }
    }
  });

  function databaseAnswers() {
    try {
      return db.query('SELECT 1 AS up')[0].up === 1;
    } catch {
      return false;
    }
  }

  it('two runs meet the stopped database, the third (after it is back) creates the one account', async () => {
    const phone = newPhone();
    const session = await verificationSession(server, phone);
    const user = newUser('mq');
    const data = { id: session.id, token: session.token, code: session.code, phone, password: user.password,
      username: user.username, image: '' };

    // The database goes away for real: its server process is killed (SIGKILL).
    await db.kill();
    assert.equal(databaseAnswers(), false, 'MariaDB is down');

    const job = await queue.add(data, { attempts: 3, backoff: { type: 'exponential', delay: 200 } });
    // Two runs failed against the dead database (each retried, not completed): the job now waits
    // its back-off of (2^2 - 1) * 200 ms in the delayed set.
    const afterTwo = await eventually(async () => {
      const j = await queue.getJob(job.id);
      return j && j.attemptsMade >= 2 ? j : null;
    }, { what: 'two failed runs', timeoutMs: scaled(30_000), intervalMs: 20 });
    assert.equal(afterTwo.attemptsMade, 2);
    assert.equal(afterTwo.failedReason, 'Error processing job');
    assert.ok(!afterTwo.finishedOn, 'not finished: it is retried');

    // A global pause: the due job is promoted to the paused list, and no worker takes it.
    await queue.pause();
    await eventually(async () => (await (await queue.getJob(job.id)).getState()) === 'paused',
      { what: 'the job to be promoted into the paused list', timeoutMs: scaled(15_000), intervalMs: 20 });
    assert.equal((await queue.getJob(job.id)).attemptsMade, 2, 'the paused queue is honoured: no third run yet');

    // The same server (data dir, port) back, accepting connections.
    await db.start();
    await eventually(() => databaseAnswers(), { what: 'MariaDB to accept connections', timeoutMs: scaled(30_000) });

    await queue.resume();
    const result = await job.finished();
    assert.equal(result.id, data.id);
    assert.equal(result.success, true);
    assert.equal(result.message, 'User created successfully');

    // Three runs: two failed (Bull counts failed runs in attemptsMade), then the one that completed.
    const done = await queue.getJob(job.id);
    assert.equal(done.attemptsMade, 2);
    assert.equal(await done.getState(), 'completed');
    assert.equal(done.returnvalue.message, 'User created successfully');
    for (const field of ['password', 'phone', 'token', 'code']) assert.equal(done.data[field], undefined, field);

    // Exactly one account, and it logs in with the phone.
    const login = await server.login({ phone, password: user.password });
    assert.equal(login.status, 200, login.text);
    const rows = db.query(`SELECT COUNT(*) AS n FROM users WHERE username = '${user.username}'`, { db: server.database });
    assert.equal(rows[0].n, 1);
    const counts = await queue.getJobCounts();
    assert.equal(counts.failed, 0);
  });
});
