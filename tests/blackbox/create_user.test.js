'use strict';
// Create_User through registrar's Bull worker, driven the way existing Node services drive it: a
// producer with the real `bull` (tests/node) adds jobs and awaits job.finished(). Codes come from
// POST /auth/verification-codes and the development sender's messages.jsonl. After every test
// nothing secret is left: no password, phone, code or token in Redis, the log or the data dir.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Server, eventually, randomId, requireNode, scaled, jwt, newUser } = require('./harness');
const { startRedis } = require('./support/redis');
const { newPhone, verificationSession } = require('./support/verification');

const Queue = requireNode('bull');

const MSG = {
  expired: 'Session expired. Please log in again',
  code: 'The verification code is incorrect',
  encryption: 'Error encrypting your credentials. Please try again',
  created: 'User created successfully',
  error: 'Error processing job',
};

// Every key of the Redis server, with its values (strings, hashes, lists, sets, sorted sets).
async function redisDump(redis) {
  const keys = (await redis.cli(['--scan'])).split('\n').filter(Boolean);
  let text = '';
  for (const key of keys) {
    const type = await redis.cli(['TYPE', key]);
    const cmd = { string: ['GET', key], hash: ['HGETALL', key], list: ['LRANGE', key, '0', '-1'],
      set: ['SMEMBERS', key], zset: ['ZRANGE', key, '0', '-1'] }[type];
    text += `${key}\n${cmd ? await redis.cli(cmd) : ''}\n`;
  }
  return text;
}

function dataDirText(dir) {
  let text = '';
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.path || entry.parentPath || dir, entry.name);
    text += fs.readFileSync(full).toString('latin1');
  }
  return text;
}

// Nothing secret anywhere: Redis keys, the logs of `servers`, the files of their data dirs.
async function assertNoSecretsLeft(redis, servers, secrets) {
  const places = { redis: await redisDump(redis) };
  servers.forEach((s, i) => {
    places[`log of process ${i}`] = s.logText();
    places[`data dir of process ${i}`] = dataDirText(s.dataDir);
  });
  for (const secret of secrets) {
    for (const [where, text] of Object.entries(places)) {
      assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 4)}…) is in ${where}`);
    }
  }
}

describe('Create_User jobs with the real bull producer', () => {
  let redis;
  let server;
  let queue;
  const secrets = [];

  before(async () => {
    redis = await startRedis({ persistent: true });
    // Production argon2 cost: a job spends its time hashing, where the Redis outage test stops Redis.
    server = await Server.start({ weakArgon2: false, args: ['--redis-url', redis.url, '--job-stalled-interval', '1'] });
    queue = new Queue('Create_User', redis.url);
    await queue.isReady();
  });
  after(async () => {
    if (queue) await queue.close();
    try { if (server) await server.stopCleanly(); } finally {
      if (server) await server.dispose();
      if (redis) await redis.dispose();
    }
  });
  afterEach(() => assertNoSecretsLeft(redis, [server], secrets));

  async function job(overrides = {}, opts = {}) {
    const phone = overrides.phone || newPhone();
    const session = overrides.session || await verificationSession(server, phone);
    const user = newUser('cu');
    const data = { id: session.id, token: session.token, code: session.code, phone, password: user.password,
      username: user.username, image: '', ...overrides.data };
    secrets.push(data.password, data.token, phone.slice(1));
    const added = await queue.add(data, opts);
    return { added, data, session, phone, user };
  }

  it('a valid job creates the account: finished() resolves with the Node worker\'s outcome, the phone logs in', async () => {
    const { added, data, phone, user } = await job();
    const result = await added.finished();
    assert.equal(result.id, data.id);
    assert.equal(result.success, true);
    assert.equal(result.message, MSG.created);
    const login = await server.login({ phone, password: user.password });
    assert.equal(login.status, 200, login.text);
    const byName = await server.login({ username: user.username, password: user.password });
    assert.equal(byName.status, 200, byName.text);
    // The job's secrets are gone from its hash once it ended; its outcome stays.
    const stored = await queue.getJob(added.id);
    for (const field of ['password', 'phone', 'token', 'code']) assert.equal(stored.data[field], undefined, field);
    assert.equal(stored.returnvalue.message, MSG.created);
    // The same outcome over HTTP, for the session's token only.
    const mine = await server.request('GET', `/jobs/${added.id}`, { headers: { authorization: `Bearer ${data.token}` } });
    assert.equal(mine.status, 200, mine.text);
    assert.equal(mine.json.state, 'completed');
    assert.equal(mine.json.outcome.message, MSG.created);
    const other = await verificationSession(server, newPhone());
    const theirs = await server.request('GET', `/jobs/${added.id}`, { headers: { authorization: `Bearer ${other.token}` } });
    assert.equal(theirs.status, 404, theirs.text);
  });

  it('each refusal gives its message and is not retried: expired, tampered and access tokens, a wrong code', async () => {
    const secret = server.jwtSecret();
    const expired = await job({ data: {} });
    // A verification token of this very session, expired an hour ago.
    const s1 = await verificationSession(server, newPhone());
    const old = jwt.sign({ sub: s1.id, typ: 'verification', iss: 'registrar', aud: 'registrar', exp: Math.floor(Date.now() / 1000) - 3600 },
      secret, { algorithm: 'HS256' });
    const expiredJob = await job({ session: s1, data: { token: old } });
    const s2 = await verificationSession(server, newPhone());
    const tampered = await job({ session: s2, data: { token: `${s2.token.slice(0, -2)}${s2.token.endsWith('A') ? 'BB' : 'AA'}` } });
    const reg = await server.register(newUser('acc'));
    assert.equal(reg.status, 201, reg.text);
    const s3 = await verificationSession(server, newPhone());
    const access = await job({ session: s3, data: { token: reg.json.accessToken } });
    const s4 = await verificationSession(server, newPhone());
    const wrong = await job({ session: s4, data: { code: s4.code === '000000' ? '000001' : '000000' } }, { attempts: 3 });
    await expired.added.finished();
    for (const [j, message] of [[expiredJob, MSG.expired], [tampered, MSG.expired], [access, MSG.expired], [wrong, MSG.code]]) {
      const r = await j.added.finished();
      assert.equal(r.success, false);
      assert.equal(r.message, message);
      assert.equal((await queue.getJob(j.added.id)).attemptsMade, 0, 'not retried');
    }
  });

  it('five wrong codes burn the code: the right one is refused after them', async () => {
    const session = await verificationSession(server, newPhone());
    const wrongCode = session.code === '999999' ? '999998' : '999999';
    for (let i = 0; i < 5; i++) {
      const w = await job({ session, data: { code: wrongCode } });
      assert.equal((await w.added.finished()).message, MSG.code);
    }
    const right = await job({ session });
    assert.equal((await right.added.finished()).message, MSG.code);
  });

  it('the same data twice makes one account; the second run reports the first one\'s success', async () => {
    const first = await job();
    assert.equal((await first.added.finished()).message, MSG.created);
    const again = await queue.add(first.data);
    const r = await again.finished();
    assert.equal(r.success, true);
    assert.equal(r.message, MSG.created);
    const counts = await queue.getJobCounts();
    assert.equal(counts.failed, 0);
  });

  it('removeOnComplete jobs still resolve finished(); getJobCounts agrees', async () => {
    const before = await queue.getJobCounts();
    const j = await job({}, { removeOnComplete: true });
    const r = await j.added.finished();
    assert.equal(r.message, MSG.created);
    assert.equal(await queue.getJob(j.added.id), null);
    const k = await job();
    await k.added.finished();
    const after = await queue.getJobCounts();
    assert.equal(after.completed, before.completed + 1, 'the kept job is counted, the removed one is not');
    assert.equal(after.waiting + after.active + after.delayed, 0);
  });

  it('POST /users queues the same job for clients that are not Node; a Node producer sees it', async () => {
    const phone = newPhone();
    const session = await verificationSession(server, phone);
    const user = newUser('http');
    secrets.push(user.password, session.token, phone.slice(1));
    const res = await server.request('POST', '/users', { json: { id: session.id, token: session.token, code: session.code, phone,
      password: user.password, username: user.username, image: 'https://example.com/a.png' } });
    assert.equal(res.status, 202, res.text);
    const nodeView = await queue.getJob(res.json.jobId);
    assert.ok(nodeView, 'the Node producer sees the job');
    const done = await eventually(async () => {
      const r = await server.request('GET', `/jobs/${res.json.jobId}`, { headers: { authorization: `Bearer ${session.token}` } });
      return r.json && r.json.state === 'completed' ? r.json : null;
    }, { what: 'the job to complete' });
    assert.equal(done.outcome.message, MSG.created);
    const login = await server.login({ phone, password: user.password });
    assert.equal(login.status, 200, login.text);
  });

  it('Redis stopped mid-run: the jobs complete when it returns, none lost, none doubled', async (t) => {
    // Twelve jobs queued at once, Redis stopped as soon as the first completes: the worker is in
    // the middle of the others (a run that meets the outage is run again when Redis is back,
    // without using the job's only attempt).
    const phones = Array.from({ length: 12 }, () => newPhone());
    const sessions = await Promise.all(phones.map((phone) => verificationSession(server, phone)));
    const firstDone = new Promise((resolve) => queue.once('global:completed', resolve));
    const jobs = await Promise.all(phones.map((phone, i) => job({ phone, session: sessions[i] })));
    await firstDone;
    await redis.stop();
    await new Promise((r) => setTimeout(r, scaled(1000)));
    await redis.start();
    for (const j of jobs) {
      const r = await j.added.finished();
      assert.equal(r.message, MSG.created);
    }
    // One account each: each logs in; a second run of any of them would have been refused by the
    // unique verification id and reported as the same success, so count the accounts too.
    for (const j of jobs) {
      const login = await server.login({ phone: j.phone, password: j.user.password });
      assert.equal(login.status, 200, login.text);
    }
    const completed = await queue.getCompleted();
    for (const j of jobs) assert.equal(completed.filter((c) => c.data.id === j.data.id).length, 1, 'one job per submit');
    const reruns = server.logs.filter((l) => /^job run met an outage of the queue/.test(l.msg)).length;
    t.diagnostic(`runs repeated after the outage: ${reruns}`);
  });
});

describe('Create_User workers as separate processes', () => {
  let redis;
  let api;
  let queue;
  const secrets = [];
  let workers = []; // the workers of the current test (their logs are checked for secrets)

  before(async () => {
    redis = await startRedis({ persistent: true });
    // The API issues codes and serves logins; it runs no worker of its own here.
    api = await Server.start({ args: ['--redis-url', redis.url, '--worker-in-serve', 'false'] });
    queue = new Queue('Create_User', redis.url);
    await queue.isReady();
  });
  after(async () => {
    if (queue) await queue.close();
    try { if (api) await api.stopCleanly(); } finally {
      if (api) await api.dispose();
      if (redis) await redis.dispose();
    }
  });
  afterEach(async () => {
    try { await assertNoSecretsLeft(redis, [api, ...workers], secrets); } finally { workers = []; }
  });

  async function worker(extraArgs = [], opts = {}) {
    // Same data dir (SQLite file, keys, JWT secret) as the API: one deployment.
    const w = await Server.start({ command: 'worker', dataDir: api.dataDir,
      args: ['--redis-url', redis.url, '--job-stalled-interval', '1', '--job-lock-duration', '2', ...extraArgs], ...opts });
    workers.push(w);
    return w;
  }

  async function submit() {
    const phone = newPhone();
    const session = await verificationSession(api, phone);
    const user = newUser('wk');
    const data = { id: session.id, token: session.token, code: session.code, phone, password: user.password, username: user.username, image: '' };
    secrets.push(data.password, data.token, phone.slice(1));
    return { added: await queue.add(data), data, phone, user };
  }

  it('the current encryption key missing on the worker\'s host: each job completes with the Node worker\'s message, no account; the key in place, the same data succeeds', async () => {
    // How an operator gets there: --pii-key-id (the key new phones are sealed under, e.g. after
    // `registrar keys rotate` on another host) names a key whose file pii-<ID>.key is not in this
    // host's keys dir (not copied yet, or removed). registrar starts all the same, with a warning,
    // and ends each job as the Node service ends a failed encryption: completed with
    // "Error encrypting your credentials. Please try again", never retried, the code not spent.
    // Refusing to start would be worse for a drop-in: Node producers' job.finished() would wait
    // with no answer and no message would reach the user. The key file is read when it appears.
    const keyId = `20261206-120000-${crypto.randomBytes(2).toString('hex')}`;
    const keyFile = path.join(api.dataDir, 'keys', `pii-${keyId}.key`);
    assert.equal(fs.existsSync(keyFile), false);
    const keyless = await worker(['--pii-key-id', keyId]);
    try {
      assert.ok(keyless.logs.some((l) => l.level === 'warn' && l.msg === 'a PII key is missing: phone accounts cannot be created'),
        'the worker says at start that a key is missing');
      const j = await submit();
      const r = await j.added.finished();
      assert.deepEqual(r, { id: j.data.id, success: false, message: MSG.encryption });
      const stored = await queue.getJob(j.added.id);
      assert.equal(stored.attemptsMade, 0, 'not retried');
      assert.equal(stored.returnvalue.message, MSG.encryption);
      for (const field of ['password', 'phone', 'token', 'code']) assert.equal(stored.data[field], undefined, field);
      // No account: neither the phone nor the username logs in.
      assert.equal((await api.login({ phone: j.phone, password: j.user.password })).status, 401);
      assert.equal((await api.login({ username: j.user.username, password: j.user.password })).status, 401);

      // The key arrives (copied from the host that made it): the same worker, no restart, creates
      // the account from the same data; the code was not spent by the failed run.
      fs.writeFileSync(keyFile, crypto.randomBytes(32), { mode: 0o600 });
      const again = await queue.add(j.data);
      const created = await again.finished();
      assert.equal(created.success, true);
      assert.equal(created.message, MSG.created);
      const login = await api.login({ phone: j.phone, password: j.user.password });
      assert.equal(login.status, 200, login.text);
    } finally {
      await keyless.stopCleanly();
    }
  });

  it('two workers on one queue: every job runs to one outcome, one account each', async () => {
    const a = await worker();
    const b = await worker();
    try {
      const jobs = [];
      for (let i = 0; i < 12; i++) jobs.push(await submit());
      for (const j of jobs) assert.equal((await j.added.finished()).message, MSG.created);
      for (const j of jobs) {
        const login = await api.login({ phone: j.phone, password: j.user.password });
        assert.equal(login.status, 200, login.text);
      }
      const ran = [a, b].map((w) => w.logs.filter((l) => l.msg === 'notification').length);
      assert.equal(ran[0] + ran[1], jobs.length, `each job notified once (${ran})`);
    } finally {
      await a.stopCleanly();
      await b.stopCleanly();
    }
  });

  it('a worker killed -9 mid-job: the job completes once after the stall interval, one account', async () => {
    // A slow hash (256 MiB, 16 passes: seconds) keeps the job running long enough to be killed in it.
    const slow = await worker(['--argon2-memory-kib', '262144', '--argon2-iterations', '16'], { weakArgon2: false });
    const j = await submit();
    await eventually(async () => (await redis.cli(['LRANGE', 'bull:Create_User:active', '0', '-1'])).split('\n').includes(String(j.added.id)),
      { what: 'the job to be active', timeoutMs: scaled(10_000), intervalMs: 10 });
    await slow.stop({ signal: 'SIGKILL' });
    const rescuer = await worker();
    try {
      const r = await j.added.finished();
      assert.equal(r.message, MSG.created);
      const login = await api.login({ phone: j.phone, password: j.user.password });
      assert.equal(login.status, 200, login.text);
      assert.equal((await queue.getJob(j.added.id)).stacktrace.length >= 0, true);
    } finally {
      await rescuer.stopCleanly();
      await slow.dispose();
    }
  });
});
