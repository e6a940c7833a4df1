// The Node side of tests/contract/bull_wire_test.cpp: a producer written with the real `bull`
// (4.16.5, tests/node/package-lock.json), as existing Node services use it, against registrar's
// worker on the same Redis. Prints one JSON line with what it saw; the C++ test asserts on it.
//
//   node bull_wire.js <redis-url> <scenario> [args…]
//
// The job data tells the C++ test's handler double what to do: {"behaviour":"ok"} completes
// with {"success":true,"message":"User created successfully"}, {"behaviour":"fail","message":m}
// fails for good with m, {"behaviour":"flaky","failures":n} is retried n times then completes;
// "workMs" makes the run take that long.
'use strict';
const Queue = require('bull');

const [url, scenario, ...args] = process.argv.slice(2);

async function settle(promise) {
  try {
    return { resolved: await promise };
  } catch (err) {
    return { rejected: err.message };
  }
}

const scenarios = {
  // queue.add + job.finished(): the success and each failure message.
  async finished(queue) {
    const messages = ['Session expired. Please log in again', 'The verification code is incorrect',
      'Error encrypting your credentials. Please try again', 'Error processing job'];
    const ok = await queue.add({ behaviour: 'ok' });
    const failing = await Promise.all(messages.map((message) => queue.add({ behaviour: 'fail', message }, { attempts: 3 })));
    const results = await Promise.all([ok, ...failing].map((job) => settle(job.finished())));
    return { ids: [ok.id, ...failing.map((j) => j.id)], results, counts: await queue.getJobCounts() };
  },
  // removeOnComplete: finished() still resolves (from the pub/sub message) and the job is gone.
  async removeOnComplete(queue) {
    const job = await queue.add({ behaviour: 'ok', workMs: 300 }, { removeOnComplete: true });
    const result = await settle(job.finished());
    return { result, after: await queue.getJob(job.id), counts: await queue.getJobCounts() };
  },
  // removeOnComplete as a count (keep the last n) and removeOnFail as {count}: packed as bull does.
  async keepLast(queue) {
    const done = [];
    for (let i = 0; i < 3; i++) done.push(await queue.add({ behaviour: 'ok', workMs: 50 }, { removeOnComplete: 2 }));
    const failed = [];
    for (let i = 0; i < 3; i++) {
      failed.push(await queue.add({ behaviour: 'fail', message: 'no', workMs: 50 }, { removeOnFail: { count: 1 } }));
    }
    const results = await Promise.all([...done, ...failed].map((job) => settle(job.finished())));
    const kept = await Promise.all([...done, ...failed].map(async (job) => (await queue.getJob(job.id)) !== null));
    return { results, kept, counts: await queue.getJobCounts() };
  },
  // attempts 3 with exponential backoff: fails twice, completes on the third run.
  async exponential(queue) {
    const started = Date.now();
    const job = await queue.add({ behaviour: 'flaky', failures: 2 },
      { attempts: 3, backoff: { type: 'exponential', delay: 200 } });
    const result = await settle(job.finished());
    const elapsed = Date.now() - started;
    const after = await queue.getJob(job.id);
    return { result, elapsed, attemptsMade: after.attemptsMade, state: await after.getState(),
      stacktrace: after.stacktrace, counts: await queue.getJobCounts() };
  },
  // A Node worker (queue.process) and registrar's on one queue: each job runs once, by either.
  async mixed(queue) {
    const byNode = [];
    queue.process(2, async (job) => {
      byNode.push(String(job.id));
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { by: 'node' };
    });
    const jobs = [];
    for (let i = 0; i < 40; i++) jobs.push(await queue.add({ behaviour: 'ok', workMs: 20 }));
    const results = await Promise.all(jobs.map((job) => settle(job.finished())));
    return { ids: jobs.map((j) => String(j.id)), byNode, results, counts: await queue.getJobCounts() };
  },
  // A delayed job (opts.delay): runs when due, not a guard interval later.
  async delayed(queue) {
    const started = Date.now();
    const job = await queue.add({ behaviour: 'ok' }, { delay: 1500 });
    const stateBefore = await job.getState();
    const result = await settle(job.finished());
    return { result, stateBefore, elapsed: Date.now() - started };
  },
  // A job registrar added (POST /users with Redis) as Node sees it.
  async getJob(queue) {
    const job = await queue.getJob(args[0]);
    if (!job) return { job: null };
    return { data: job.data, opts: job.opts, name: job.name, state: await job.getState(),
      timestamp: job.timestamp, counts: await queue.getJobCounts() };
  },
  // A job Node adds while our worker is stopped, for the C++ side to take.
  async add(queue) {
    const job = await queue.add(JSON.parse(args[0]), JSON.parse(args[1] || '{}'));
    return { id: job.id };
  },
};

(async () => {
  const queue = new Queue('Create_User', url);
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ error: 'timeout' }));
    process.exit(2);
  }, 60000);
  try {
    const out = await scenarios[scenario](queue);
    console.log(JSON.stringify(out));
  } catch (err) {
    console.log(JSON.stringify({ error: err.message }));
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    await queue.close();
  }
})();
