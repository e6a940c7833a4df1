// A producer that is not the limit: the same Create_User jobs as node-seed's produce.js (same data,
// same `bull` Queue, codes pre-set plain under each id), added with `queue.addBulk` in chunks and
// counted through ONE listener on bull's global events, instead of one `job.finished()` per job.
//
// Why: `job.finished()` adds two listeners per job to the queue's global events and a 5 s watchdog
// timer per job; at a few hundred jobs per second the producer, not the worker, sets the pace
// (session 7: both workers ended at the same ~5 s for 300 and for 2,000 jobs). Here the clock stops
// when the last of our job ids has been reported completed or failed.
//
// Usage: N=2000 REDIS_URL=redis://… JWT_SECRET=… node produce-fast.js
// Prints one JSON line: {jobs, ok, failed, seconds, addSeconds, jobsPerSecond}.
const Queue = require('bull');
const Redis = require('ioredis');
const jwt = require('jsonwebtoken');

const SECRET = process.env.JWT_SECRET || 'peer-secret-peer-secret-peer-secret-32';
const REDIS = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const N = +(process.env.N || 2000);
const CHUNK = +(process.env.CHUNK || 250);
const TIMEOUT_MS = +(process.env.TIMEOUT_MS || 600000);

async function main() {
  const redis = new Redis(REDIS);
  const queue = new Queue('Create_User', REDIS);
  const run = Date.now().toString(36);
  const jobs = [];
  const codes = redis.pipeline();
  for (let i = 0; i < N; i++) {
    const id = `s-${run}-${i}`;
    codes.set(id, '123456', 'EX', 600);
    jobs.push({
      data: {
        id, token: jwt.sign({ sub: id }, SECRET, { algorithm: 'HS256', expiresIn: '10m' }), code: '123456',
        phone: `+1555${String(i).padStart(7, '0')}`, password: 'correct horse battery staple',
        username: `u${run}${i}`, image: 'https://example.com/a.png',
      },
      opts: { removeOnComplete: false },
    });
  }
  await codes.exec();

  const pending = new Set();
  let ok = 0;
  let failed = 0;
  let settle;
  const done = new Promise((resolve) => { settle = resolve; });
  const seen = (jobId) => {
    if (!pending.delete(String(jobId))) return false;
    if (pending.size === 0) settle();
    return true;
  };
  // Events may arrive before addBulk has returned the ids: keep them until the ids are known.
  const early = new Map();
  const onEvent = (jobId, success) => {
    if (seen(jobId)) { success ? ok++ : failed++; } else early.set(String(jobId), success);
  };
  queue.on('global:completed', (jobId, value) => {
    let success = false;
    try { success = (typeof value === 'string' ? JSON.parse(value) : value).success === true; } catch { /* not a Create_User result */ }
    onEvent(jobId, success);
  });
  queue.on('global:failed', (jobId) => onEvent(jobId, false));
  // bull subscribes lazily; wait for both subscriptions before the first job exists.
  await Promise.all([queue._registerEvent('global:completed'), queue._registerEvent('global:failed')]);
  await queue.isReady();

  const t0 = process.hrtime.bigint();
  for (let i = 0; i < jobs.length; i += CHUNK) {
    const added = await queue.addBulk(jobs.slice(i, i + CHUNK));
    for (const job of added) pending.add(String(job.id));
  }
  const addSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const [jobId, success] of early) if (seen(jobId)) { success ? ok++ : failed++; }
  early.clear();
  const timer = setTimeout(() => {
    console.error(`produce-fast: ${pending.size} of ${N} jobs not reported after ${TIMEOUT_MS} ms`);
    process.exit(1);
  }, TIMEOUT_MS);
  if (pending.size > 0) await done;
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ jobs: N, ok, failed, seconds, addSeconds, jobsPerSecond: +(N / seconds).toFixed(1) }));
  await queue.close();
  redis.disconnect();
}
main().catch((e) => { console.error(e); process.exit(1); });
