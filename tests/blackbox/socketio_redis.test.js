'use strict';
// Socket.IO across processes through Redis (issue 13): registrar `serve --redis-url` shares the
// rooms of its main namespace in the format of @socket.io/redis-adapter 8 (classic pub/sub,
// notepack msgpack), so that
//   (i)   a Node @socket.io/redis-emitter reaches registrar's clients in the room, not the others;
//   (ii)  a Node socket.io server with @socket.io/redis-adapter and registrar share a room: emits
//         go both ways, and Node's fetchSockets / socketsJoin / emit with acks see registrar's
//         sockets (serverSideEmit with an ack, which registrar does not listen to, times out
//         cleanly as the adapter's requestsTimeout says);
//   (iii) a Create_User outcome of a separate `registrar worker` reaches the client of its session
//         connected to another `serve`, and no other client;
//   (iv)  Redis stopped and started again: the adapter subscribes again and delivery resumes.
// Every wait is on an event (a socket event, a log line), never a fixed sleep.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { once } = require('node:events');
const { Server, newUser, requireNode, within, eventually } = require('./harness');
const { startRedis } = require('./support/redis');
const { newPhone, verificationSession } = require('./support/verification');

const { io } = requireNode('socket.io-client');
const SocketIo = requireNode('socket.io');
const { createAdapter } = requireNode('@socket.io/redis-adapter');
const { Emitter } = requireNode('@socket.io/redis-emitter');
const Redis = requireNode('ioredis');

function connect(port, auth) {
  return io(`http://127.0.0.1:${port}`, { auth, transports: ['websocket'], reconnection: false });
}

// The room registrar puts a socket in: the subject of its token.
function subjectOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
}

// Resolves with the first `event` of `socket`; `seen` collects every one (to show nothing else came).
function collect(socket, event) {
  const seen = [];
  socket.on(event, (...args) => seen.push(args.length === 1 ? args[0] : args));
  return seen;
}

const ADAPTER_SUBSCRIBED = 'socket.io redis adapter subscribed';

describe('Socket.IO across processes through Redis', () => {
  let redis;
  let api;   // issues sessions; its clients are in rooms shared through Redis
  const clients = [];
  const redisClients = [];

  function client(port, auth) {
    const c = connect(port, auth);
    clients.push(c);
    return c;
  }
  function redisClient() {
    const r = new Redis(redis.url, { maxRetriesPerRequest: 3 });
    r.on('error', () => {});  // the outage of (iv): ioredis reconnects by itself
    redisClients.push(r);
    return r;
  }

  before(async () => {
    redis = await startRedis();
    api = await Server.start({ args: ['--redis-url', redis.url, '--worker-in-serve', 'false'] });
    await eventually(() => api.logs.some((l) => l.msg === ADAPTER_SUBSCRIBED), { what: 'the adapter subscribed' });
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const r of redisClients) r.disconnect();
    try { if (api) await api.stopCleanly(); } finally {
      if (api) await api.dispose();
      if (redis) await redis.dispose();
    }
  });

  it('(i) @socket.io/redis-emitter from Node: a client in the room gets the event, one not in it does not', async () => {
    const [mine, other] = [await verificationSession(api, newPhone()), await verificationSession(api, newPhone())];
    const a = client(api.port, { token: mine.token });
    const b = client(api.port, { token: other.token });
    await within(5000, Promise.all([once(a, 'connect'), once(b, 'connect')]), 'both connections');
    const seenByB = collect(b, 'notification');
    const emitter = new Emitter(redisClient());
    const forA = once(a, 'notification');
    emitter.to(subjectOf(mine.token)).emit('notification', { id: mine.id, success: true, message: 'from the emitter' });
    const [n] = await within(5000, forA, 'the emitter\'s notification');
    assert.deepEqual(n, { id: mine.id, success: true, message: 'from the emitter' });
    // Binary arguments travel as binaries; several rooms (the plain channel) and except work too.
    const forA2 = once(a, 'blob');
    emitter.to([subjectOf(mine.token), subjectOf(other.token)]).except(subjectOf(other.token)).emit('blob', Buffer.from([1, 2, 3]), 'x');
    const [blob, x] = await within(5000, forA2, 'the binary event');
    assert.deepEqual([...Buffer.from(blob)], [1, 2, 3]);
    assert.equal(x, 'x');
    // b hears only what is for its own room, and hears it: nothing else came before.
    const forB = once(b, 'notification');
    emitter.to(subjectOf(other.token)).emit('notification', { id: other.id, success: false, message: 'for b' });
    await within(5000, forB, 'b\'s own notification');
    assert.deepEqual(seenByB, [{ id: other.id, success: false, message: 'for b' }]);
  });

  it('(ii) a Node socket.io server with @socket.io/redis-adapter and registrar share a room', async () => {
    const pub = redisClient();
    const sub = pub.duplicate();
    sub.on('error', () => {});
    redisClients.push(sub);
    const httpServer = http.createServer();
    const nodeIo = new SocketIo.Server(httpServer, { adapter: createAdapter(pub, sub, { requestsTimeout: 2000 }) });
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    try {
      const phone = newPhone();
      const session = await verificationSession(api, phone);
      const room = subjectOf(session.token);
      nodeIo.on('connection', (s) => s.join(room));
      const onNode = client(httpServer.address().port, {});
      onNode.on('ask', (v, cb) => cb(`node:${v}`));
      const onRegistrar = client(api.port, { token: session.token });
      onRegistrar.on('ask', (v, cb) => cb(`registrar:${v}`));
      await within(5000, Promise.all([once(onNode, 'connect'), once(onRegistrar, 'connect')]), 'both connections');
      // The Node adapter waits for every subscriber of its request channel: registrar is one.
      await eventually(async () => (await pub.pubsub('NUMSUB', 'socket.io-request#/#'))[1] === 2, { what: 'two servers subscribed' });

      // Node → registrar's client.
      const fromNode = once(onRegistrar, 'hello');
      nodeIo.to(room).emit('hello', 'from node');
      assert.deepEqual(await within(5000, fromNode, 'Node\'s emit on registrar'), ['from node']);

      // registrar → Node's client: a Create_User outcome for the session's room (a wrong code),
      // run by a worker of its own here (the API runs none).
      const worker = await Server.start({ command: 'worker', dataDir: api.dataDir, args: ['--redis-url', redis.url] });
      try {
        const user = newUser('sior');
        const onNodeNotified = once(onNode, 'notification');
        const onRegistrarNotified = once(onRegistrar, 'notification');
        const res = await api.request('POST', '/users', { json: { id: session.id, token: session.token, code: '000000',
          phone, password: user.password, username: user.username, image: '' } });
        assert.equal(res.status, 202, res.text);
        const expected = { id: session.id, success: false, message: 'The verification code is incorrect' };
        assert.deepEqual((await within(10000, onNodeNotified, 'the outcome on Node\'s client'))[0], expected);
        assert.deepEqual((await within(10000, onRegistrarNotified, 'the outcome on registrar\'s client'))[0], expected);
      } finally {
        await worker.stopCleanly();
        await worker.dispose();
      }

      // fetchSockets sees registrar's socket, with its rooms (and no token in its handshake).
      const sockets = await nodeIo.in(room).fetchSockets();
      assert.equal(sockets.length, 2);
      const remote = sockets.find((s) => s.id === onRegistrar.id);
      assert.ok(remote, `registrar's socket ${onRegistrar.id} among ${sockets.map((s) => s.id)}`);
      assert.ok(remote.rooms.has(room));
      assert.deepEqual(remote.handshake.auth, {});
      assert.ok((await nodeIo.of('/').adapter.allRooms()).has(room));

      // socketsJoin reaches registrar's socket: an emit to the new room arrives there.
      nodeIo.in(room).socketsJoin('joined-from-node');
      const joined = once(onRegistrar, 'in-new-room');
      nodeIo.to('joined-from-node').emit('in-new-room', 1);
      assert.deepEqual(await within(5000, joined, 'the emit to the joined room'), [1]);
      await eventually(async () => (await nodeIo.in('joined-from-node').fetchSockets()).length === 2, { what: 'both in the joined room' });

      // An emit with acks counts registrar's client and gets its answer.
      const answers = await nodeIo.to(room).timeout(3000).emitWithAck('ask', 7);
      assert.deepEqual(answers.sort(), ['node:7', 'registrar:7']);

      // serverSideEmit with an ack: registrar has no listener (as a socket.io server without one),
      // so the adapter's timeout answers, with an error, not a hang.
      await assert.rejects(within(5000, nodeIo.serverSideEmitWithAck('nobody-listens'), 'serverSideEmitWithAck'),
        /timeout reached: only 0 responses received out of 1/);

      // disconnectSockets from Node disconnects registrar's socket.
      const gone = once(onRegistrar, 'disconnect');
      nodeIo.in(room).disconnectSockets();
      assert.equal((await within(5000, gone, 'the disconnect'))[0], 'io server disconnect');
    } finally {
      nodeIo.close();
    }
  });

  it('(iii) a Create_User job run by a separate worker reaches its session\'s client on a second serve, no other', async () => {
    // A second serve on the same Redis, with the same JWT secret (so that it accepts the API's
    // tokens) but its own data dir; the API and this serve run no worker: a `registrar worker` does.
    const second = await Server.start({ args: ['--redis-url', redis.url, '--worker-in-serve', 'false'],
      env: { REGISTRAR_JWT_SECRET: api.jwtSecret() } });
    const worker = await Server.start({ command: 'worker', dataDir: api.dataDir, args: ['--redis-url', redis.url] });
    try {
      await eventually(() => second.logs.some((l) => l.msg === ADAPTER_SUBSCRIBED), { what: 'the second serve subscribed' });
      const [myPhone, otherPhone] = [newPhone(), newPhone()];
      const mine = await verificationSession(api, myPhone);
      const other = await verificationSession(api, otherPhone);
      const a = client(second.port, { token: mine.token });
      const b = client(second.port, { token: other.token });
      await within(5000, Promise.all([once(a, 'connect'), once(b, 'connect')]), 'both connections to the second serve');
      const seenByB = collect(b, 'notification');
      const forA = once(a, 'notification');
      const user = newUser('siow');
      const res = await api.request('POST', '/users', { json: { id: mine.id, token: mine.token, code: mine.code,
        phone: myPhone, password: user.password, username: user.username, image: '' } });
      assert.equal(res.status, 202, res.text);
      const [n] = await within(15000, forA, 'the worker\'s notification on the second serve');
      assert.deepEqual(n, { id: mine.id, success: true, message: 'User created successfully' });
      // b's own outcome is the first and only thing b hears.
      const forB = once(b, 'notification');
      const wrong = await api.request('POST', '/users', { json: { id: other.id, token: other.token, code: '000000',
        phone: otherPhone, password: user.password, username: `${user.username}x`, image: '' } });
      assert.equal(wrong.status, 202, wrong.text);
      const [m] = await within(15000, forB, 'b\'s own notification');
      assert.deepEqual(m, { id: other.id, success: false, message: 'The verification code is incorrect' });
      assert.deepEqual(seenByB, [m]);
    } finally {
      await worker.stopCleanly();
      await worker.dispose();
      await second.stopCleanly();
      await second.dispose();
    }
  });

  it('(iv) Redis stopped and started again: the adapter subscribes again and delivery resumes', async () => {
    const session = await verificationSession(api, newPhone());
    const room = subjectOf(session.token);
    const a = client(api.port, { token: session.token });
    await within(5000, once(a, 'connect'), 'the connection');
    const subscribedBefore = api.logs.filter((l) => l.msg === ADAPTER_SUBSCRIBED).length;
    await redis.stop();
    await redis.start();
    await eventually(() => api.logs.filter((l) => l.msg === ADAPTER_SUBSCRIBED).length > subscribedBefore,
      { timeoutMs: 20000, what: 'the adapter subscribed again' });
    const emitter = new Emitter(redisClient());
    const back = once(a, 'after-restart');
    emitter.to(room).emit('after-restart', 'ok');
    assert.deepEqual(await within(5000, back, 'the emit after the restart'), ['ok']);
  });
});
