'use strict';
// Live `user.registered` over Socket.IO in `registrar serve` (issue 13): a client that connects
// with the admin token (REGISTRAR_ADMIN_TOKEN) joins `admins` and is told of every new account;
// a client with another account's token is not; a wrong admin token is refused with the message.
// (The account's own room is shown by tests/unit/socketio_live_test.cpp: in a real sign-up the
// event is out before the client can hold the account's first token.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { once } = require('node:events');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BIN, Server, requireNode, within } = require('./harness');

const { io } = requireNode('socket.io-client');
const ADMIN_TOKEN = crypto.randomBytes(32).toString('base64url');

function connect(server, auth) {
  return io(`http://127.0.0.1:${server.port}`, { auth, transports: ['websocket'], reconnection: false });
}

describe('Socket.IO user.registered in serve', () => {
  let server;
  before(async () => { server = await Server.start({ env: { REGISTRAR_ADMIN_TOKEN: ADMIN_TOKEN } }); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('each new account reaches the admins and not another account\'s socket', async () => {
    const bystander = await server.registerNew('bystander');
    const admin = connect(server, { token: ADMIN_TOKEN });
    const other = connect(server, { token: bystander.token });
    try {
      await within(5000, Promise.all([once(admin, 'connect'), once(other, 'connect')]), 'both connections');
      const seenByOther = [];
      other.on('user.registered', (u) => seenByOther.push(u));
      const seenByAdmin = [];
      admin.on('user.registered', (u) => seenByAdmin.push(u));
      const first = await server.registerNew('live');
      const second = await server.registerNew('live');
      await within(10000, new Promise((resolve) => {
        const check = () => (seenByAdmin.length >= 2 ? resolve() : admin.once('user.registered', () => setImmediate(check)));
        check();
      }), 'two user.registered on the admin socket');
      const byId = new Map(seenByAdmin.map((u) => [u.id, u]));
      for (const reg of [first, second]) {
        const u = byId.get(reg.id);
        assert.ok(u, `user.registered for ${reg.id}`);
        assert.deepEqual(Object.keys(u).sort(), ['createdAt', 'email', 'id', 'username']);
        assert.equal(u.username, reg.user.username);
        assert.equal(u.email, reg.user.email);
        assert.ok(!Number.isNaN(Date.parse(u.createdAt)));
      }
      // Its own account's event may still be on its way (the outbox relays it after the socket
      // joined its room): that one is its own, the two new accounts' are not.
      assert.deepEqual(seenByOther.filter((u) => u.id !== bystander.id), []);
    } finally {
      admin.close();
      other.close();
    }
  });

  it('a wrong admin token is refused with connect_error', async () => {
    const s = connect(server, { token: `${ADMIN_TOKEN}x` });
    try {
      const [err] = await within(5000, once(s, 'connect_error'), 'connect_error');
      assert.equal(err.message, 'Invalid or expired token');
    } finally { s.close(); }
  });
});

describe('the socketio consumer outside serve', () => {
  it('`consume socketio` is refused with a clear message (it needs serve\'s sockets)', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-sio-'));
    try {
      const r = spawnSync(BIN, ['consume', 'socketio', '--data-dir', dataDir, '--amqp-url', 'amqp://guest:guest@127.0.0.1:1/'],
        { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /consumer socketio: runs inside `serve` only/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
