'use strict';
// Password hashing in worker processes (adapters/sodium/hash_workers.hpp), seen from outside: one
// worker per hash slot, none of the service's secrets in them, hashes that the Node argon2 package
// verifies and the other way round, sign-ups and logins going on when a worker is killed, no
// worker left behind when the service dies, and --hash-processes false.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { Server, newUser, eventually, childPids, requireNode } = require('./harness');

const argon2 = requireNode('argon2');

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch { return false; }
}

function listening(server) { return server.logs.find((l) => l.msg === 'listening'); }

describe('hash workers', () => {
  it('one worker per hash slot, holding none of the service secrets', async () => {
    const secret = 'jwt-secret-for-the-worker-test-0123456789abcdef';
    const server = await Server.start({ env: { REGISTRAR_JWT_SECRET: secret }, args: ['--hash-concurrency', '3'] });
    try {
      assert.equal(listening(server).hashIn, 'processes');
      const workers = childPids(server.pid);
      assert.equal(workers.length, 3, `children of ${server.pid}: ${workers}`);
      const user = newUser('hw');
      assert.equal((await server.register(user)).status, 201);
      for (const pid of workers) {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        assert.equal(cmdline[1], '__hash-worker');
        if (process.getuid() === 0) { // a worker's /proc files are root's (it is not dumpable)
          const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
          assert.ok(!environ.includes(secret) && !environ.includes('REGISTRAR_'), environ);
          assert.deepEqual(fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort(), [0, 1, 2, 3]);
        }
      }
    } finally {
      await server.stop();
    }
  });

  it('a worker killed with SIGKILL: sign-ups and logins go on, the worker is replaced', async () => {
    const server = await Server.start({ args: ['--hash-concurrency', '2'] });
    try {
      const [victim] = childPids(server.pid);
      process.kill(victim, 'SIGKILL');
      await eventually(() => !alive(victim) || childPids(server.pid).includes(victim) === false, { what: 'the worker to die' });
      const users = Array.from({ length: 6 }, (_, i) => newUser(`hk${i}`));
      const answers = await Promise.all(users.map((u) => server.register(u)));
      assert.deepEqual(answers.map((r) => r.status), users.map(() => 201), answers.map((r) => r.text).join('\n'));
      for (const u of users) {
        const res = await server.login({ email: u.email, password: u.password });
        assert.equal(res.status, 200, res.text);
      }
      const now = childPids(server.pid).filter(alive);
      assert.equal(now.length, 2, `workers now: ${now}`);
      assert.ok(!now.includes(victim));
      await server.waitForLog((l) => l.level === 'warn' && /^hash worker stopped answering/.test(l.msg) && l.pid === victim,
        { what: 'the replacement warning, naming the worker' });
    } finally {
      await server.stop();
    }
  });

  it('at the production cost, stored hashes verify with the Node argon2 package, and its hashes verify in the workers', async () => {
    const server = await Server.start({ weakArgon2: false });
    try {
      assert.equal(listening(server).hashIn, 'processes');
      const user = newUser('na');
      const res = await server.register(user);
      assert.equal(res.status, 201, res.text);
      const [{ password_hash: stored }] = server.query(`SELECT password_hash FROM users WHERE id = '${res.json.user.id}'`);
      assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      assert.equal(await argon2.verify(stored, user.password), true);
      assert.equal(await argon2.verify(stored, `${user.password}!`), false);

      // A hash the Node package made (as the Node service did: its own m, p, t order), stored for
      // that user: the login verifies it in a worker.
      const nodePassword = `node-${user.password}`;
      const fromNode = await argon2.hash(nodePassword, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
      assert.match(fromNode, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
      server.query(`UPDATE users SET password_hash = '${fromNode}' WHERE id = '${res.json.user.id}'`);
      assert.equal((await server.login({ email: user.email, password: nodePassword })).status, 200);
      assert.equal((await server.login({ email: user.email, password: user.password })).status, 401);
    } finally {
      await server.stop();
    }
  });

  it('no worker outlives a service killed with SIGKILL', async () => {
    const server = await Server.start();
    const workers = childPids(server.pid);
    assert.ok(workers.length >= 1);
    server.child.kill('SIGKILL');
    await server.exited;
    await eventually(() => workers.every((pid) => !alive(pid)), { what: `workers ${workers} to exit` });
  });

  it('a graceful stop ends the workers too', async () => {
    const server = await Server.start();
    const workers = childPids(server.pid);
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    await eventually(() => workers.every((pid) => !alive(pid)), { what: `workers ${workers} to exit` });
  });

  it('--hash-processes false hashes in the service threads', async () => {
    const server = await Server.start({ args: ['--hash-processes', 'false'] });
    try {
      assert.equal(listening(server).hashIn, 'threads');
      assert.deepEqual(childPids(server.pid), []);
      const user = newUser('ht');
      assert.equal((await server.register(user)).status, 201);
      assert.equal((await server.login({ email: user.email, password: user.password })).status, 200);
    } finally {
      await server.stop();
    }
  });
});
