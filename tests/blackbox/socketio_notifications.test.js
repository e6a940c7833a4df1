'use strict';
// Socket.IO in `registrar serve` (issue 13): a client connects to /socket.io/ with the stock
// socket.io-client and `auth: {token}`; the Create_User outcome of its verification session
// arrives as `notification` {id, success, message} on its own socket and on no other; a refused
// token ends in connect_error with the server's message, never a silent close.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { Server, newUser, requireNode, within } = require('./harness');
const { newPhone, verificationSession } = require('./support/verification');

const { io } = requireNode('socket.io-client');

function connect(server, auth, transports = ['websocket']) {
  return io(`http://127.0.0.1:${server.port}`, { auth, transports, reconnection: false });
}

describe('Socket.IO notifications in serve', () => {
  let server;
  before(async () => { server = await Server.start(); });
  after(async () => { try { await server.stopCleanly(); } finally { await server.dispose(); } });

  it('a Create_User outcome reaches the socket of its session and no other, on both transports', async () => {
    for (const transports of [['websocket'], ['polling']]) {
      const [myPhone, otherPhone] = [newPhone(), newPhone()];
      const mine = await verificationSession(server, myPhone);
      const other = await verificationSession(server, otherPhone);
      const a = connect(server, { token: mine.token }, transports);
      const b = connect(server, { token: other.token }, transports);
      try {
        await within(5000, Promise.all([once(a, 'connect'), once(b, 'connect')]), 'both connections');
        const seenByB = [];
        b.on('notification', (n) => seenByB.push(n));
        const user = newUser('sio');
        const forA = once(a, 'notification');  // listening before the job can end
        const forB = once(b, 'notification');
        const res = await server.request('POST', '/users', { json: { id: mine.id, token: mine.token, code: mine.code,
          phone: myPhone, password: user.password, username: user.username, image: '' } });
        assert.equal(res.status, 202, res.text);
        const [n] = await within(10000, forA, 'the notification');
        assert.deepEqual(n, { id: mine.id, success: true, message: 'User created successfully' });
        // b is told nothing: its own session's outcome would come, not this one. A notification
        // for b's room proves b's socket still works and that nothing else came before it.
        const wrong = await server.request('POST', '/users', { json: { id: other.id, token: other.token, code: '000000',
          phone: otherPhone, password: user.password, username: `${user.username}x`, image: '' } });
        assert.equal(wrong.status, 202, wrong.text);
        const [m] = await within(10000, forB, 'b\'s own notification');
        assert.deepEqual(m, { id: other.id, success: false, message: 'The verification code is incorrect' });
        assert.deepEqual(seenByB, [m]);
      } finally {
        a.close();
        b.close();
      }
    }
  });

  it('an access token is accepted too; no token and a bad one end in connect_error with the message', async () => {
    const { token } = await server.registerNew('sioa');
    const ok = connect(server, { token });
    try {
      await within(5000, once(ok, 'connect'), 'the connection with an access token');
    } finally { ok.close(); }
    for (const [auth, message] of [[{}, 'Authentication required'], [{ token: 'not.a.token' }, 'Invalid or expired token']]) {
      const s = connect(server, auth);
      try {
        const [err] = await within(5000, once(s, 'connect_error'), 'connect_error');
        assert.equal(err.message, message);
      } finally { s.close(); }
    }
  });
});

describe('Socket.IO settings and restarts in serve', () => {
  it('--socketio-path moves it; --socketio-cors-origins answers those origins only', async () => {
    const server = await Server.start({ args: ['--socketio-path', '/rt', '--socketio-cors-origins', 'http://app.example:3000'] });
    try {
      const { token } = await server.registerNew('siop');
      const s = io(`http://127.0.0.1:${server.port}`, { path: '/rt/', auth: { token }, transports: ['websocket'], reconnection: false });
      try {
        await within(5000, once(s, 'connect'), 'a connection at /rt/');
      } finally { s.close(); }
      const base = `http://127.0.0.1:${server.port}`;
      assert.equal((await fetch(`${base}/socket.io/?EIO=4&transport=polling`)).status, 404);
      const allowed = await fetch(`${base}/rt/?EIO=4&transport=polling`, { headers: { Origin: 'http://app.example:3000' } });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://app.example:3000');
      await allowed.text();
      const other = await fetch(`${base}/rt/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } });
      assert.equal(other.headers.get('access-control-allow-origin'), null);
      await other.text();
    } finally {
      try { await server.stopCleanly(); } finally { await server.dispose(); }
    }
  });

  it('a client reconnects by itself after the server restarts, and its outcome still reaches it', async () => {
    const server = await Server.start();
    try {
      const phone = newPhone();
      const session = await verificationSession(server, phone);
      const s = io(`http://127.0.0.1:${server.port}`, { auth: { token: session.token }, transports: ['websocket'],
        reconnectionDelay: 100, reconnectionDelayMax: 500 });
      try {
        await within(5000, once(s, 'connect'), 'the first connection');
        const port = server.port;
        const gone = once(s, 'disconnect');
        await server.stopCleanly();
        const [reason] = await within(5000, gone, 'the disconnect');
        assert.equal(reason, 'transport close');
        // Same port and data dir (so the same JWT key): the client's own reconnection finds it.
        server.extraArgs = [...server.extraArgs, '--listen', `127.0.0.1:${port}`];
        const back = once(s, 'connect');
        await server.start();
        await within(10000, back, 'the reconnection');
        const user = newUser('sior');
        const outcome = once(s, 'notification');
        const res = await server.request('POST', '/users', { json: { id: session.id, token: session.token, code: session.code,
          phone, password: user.password, username: user.username, image: '' } });
        assert.equal(res.status, 202, res.text);
        const [n] = await within(10000, outcome, 'the notification after the reconnection');
        // Without --redis-url the codes live in the process, so the restart forgot this one: the
        // job is refused, and that outcome is what reaches the reconnected socket.
        assert.deepEqual(n, { id: session.id, success: false, message: 'The verification code is incorrect' });
      } finally { s.close(); }
    } finally {
      try { await server.stopCleanly(); } finally { await server.dispose(); }
    }
  });
});
