'use strict';
// Engine.IO protocol 4 against `registrar socketio-echo` (every message echoed back as it came),
// at the packet level with `ws` and fetch, and with the stock `engine.io-client` above it.
//
// The official suite (socketio/engine.io-protocol, test-suite/test-suite.js) and the tests of
// ours that cover each of its tests (we do not run it: CI cannot download it):
//   handshake / HTTP long-polling
//     successfully opens a session ............... "polling handshake: open packet fields"
//     fails with an invalid 'EIO' query parameter  "handshake errors: EIO missing, abc, 3 → 400 code 5"
//     fails with an invalid 'transport' ... ...... "handshake errors: transport missing or unknown → 400 code 0"
//     fails with an invalid request method ....... "handshake errors: POST/PUT without sid → 400 code 2"
//   handshake / WebSocket
//     successfully opens a session ............... "WebSocket handshake: open packet with no upgrades"
//     fails with an invalid 'EIO' query parameter  "WebSocket handshake refused: bad EIO or transport"
//     fails with an invalid 'transport' ... ...... "WebSocket handshake refused: bad EIO or transport"
//   message / HTTP long-polling
//     one plain text packet ...................... "polling: text packets echoed (one, several)"
//     several plain text packets ................. "polling: text packets echoed (one, several)"
//     plain text and binary packets .............. "polling: text and binary packets echoed"
//     closes the session upon invalid packet format "polling: an invalid payload closes the session"
//     closes the session upon duplicate poll requests "polling: a second concurrent GET closes the session"
//   message / WebSocket
//     sends and receives a plain text packet ..... "WebSocket: text echoed as text"
//     sends and receives a binary packet ......... "WebSocket: binary echoed as a binary frame"
//     closes the session upon invalid packet format "WebSocket: an invalid frame closes the session"
//   heartbeat / HTTP long-polling
//     sends ping/pong packets .................... "polling heartbeat: ping every pingInterval, pong keeps the session"
//     closes the session upon ping timeout ....... "polling heartbeat: no pong → closed (ping timeout)"
//   heartbeat / WebSocket
//     sends ping/pong packets .................... "WebSocket heartbeat: ping every pingInterval, pong keeps the session"
//     closes the session upon ping timeout ....... "WebSocket heartbeat: no pong → closed (ping timeout)"
//   close / HTTP long-polling
//     forcefully closes the session .............. "polling: the client's close packet ends the session, the held GET gets a noop"
//   close / WebSocket
//     forcefully closes the session .............. "WebSocket: the client's close packet closes the connection"
//   upgrade
//     successfully upgrades ... to WebSocket ..... "upgrade: probe, noop on the pending GET, 5, then traffic on WebSocket"
//     ignores HTTP requests with same sid after upgrade "upgrade: polling with the sid is refused afterwards"
//     ignores WebSocket connection with same sid after upgrade "upgrade: a second WebSocket with the sid is closed"
// Beyond the suite: error bodies as `engine.io` writes them, unknown sid, maxPayload, CORS,
// upgradeTimeout, the stock client on each transport, and the graceful drain.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { Server, requireNode, scaled, within } = require('./harness');

const WebSocket = requireNode('ws');
const { Socket: EioClient } = requireNode('engine.io-client');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;

// Node's fetch, with the session's query.
function eio(server, { sid, transport = 'polling', eioVersion = '4', extra = '' } = {}) {
  const q = [];
  if (eioVersion !== null) q.push(`EIO=${eioVersion}`);
  if (transport !== null) q.push(`transport=${transport}`);
  if (sid) q.push(`sid=${sid}`);
  return `http://127.0.0.1:${server.port}/engine.io/?${q.join('&')}${extra}`;
}
const wsUrl = (server, opts) => eio(server, { transport: 'websocket', ...opts }).replace('http:', 'ws:');

async function openPolling(server) {
  const res = await fetch(eio(server));
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.equal(text[0], '0');
  return JSON.parse(text.slice(1)).sid;
}
const poll = (server, sid, extra) => fetch(eio(server, { sid, extra }));
async function pollText(server, sid) {
  const res = await poll(server, sid);
  assert.equal(res.status, 200);
  return res.text();
}
const push = (server, sid, body, headers) => fetch(eio(server, { sid }), { method: 'POST', body, headers });

// A `ws` socket whose messages queue up, so that a test awaits the next one without racing it.
function wsClient(url, { binary = false } = {}) {
  const ws = new WebSocket(url);
  if (binary) ws.binaryType = 'arraybuffer';
  const queued = [];
  const waiting = [];
  ws.on('message', (data, isBinary) => {
    const m = { data: isBinary ? Buffer.from(data) : data.toString(), isBinary };
    if (waiting.length) waiting.shift()(m); else queued.push(m);
  });
  ws.on('error', () => {}); // refused handshakes end in 'close' too, which the tests await
  ws.closed = once(ws, 'close').then(([code, reason]) => ({ code, reason: reason.toString() }));
  ws.next = () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((r) => waiting.push(r)));
  return ws;
}
async function openWs(server, opts) {
  const ws = wsClient(wsUrl(server, opts));
  const open = await ws.next();
  assert.equal(open.data[0], '0');
  ws.sid = JSON.parse(open.data.slice(1)).sid;
  return ws;
}

// A WebSocket for the polling session `sid`, past the upgrade probe (2probe → 3probe), before "5".
async function probe(server, sid) {
  const ws = wsClient(wsUrl(server, { sid }));
  await once(ws, 'open');
  ws.send('2probe');
  assert.deepEqual(await ws.next(), { data: '3probe', isBinary: false });
  return ws;
}

describe('Engine.IO 4 (registrar socketio-echo)', () => {
  let server;
  before(async () => { server = await Server.start({ command: 'socketio-echo' }); });
  after(async () => { await server.stopCleanly(); await server.dispose(); });

  describe('handshake', () => {
    it('polling handshake: open packet fields', async () => {
      const res = await fetch(eio(server));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=UTF-8');
      const text = await res.text();
      assert.equal(text[0], '0');
      const open = JSON.parse(text.slice(1));
      assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
      assert.deepEqual(open.upgrades, ['websocket']);
      assert.equal(open.pingInterval, PING_INTERVAL);
      assert.equal(open.pingTimeout, PING_TIMEOUT);
      assert.equal(open.maxPayload, 1000000);
      const other = await openPolling(server);
      assert.notEqual(other, open.sid);
    });

    it('handshake errors: EIO missing, abc, 3 → 400 code 5', async () => {
      for (const eioVersion of [null, 'abc', '3']) {
        const res = await fetch(eio(server, { eioVersion }));
        assert.equal(res.status, 400, `EIO=${eioVersion}`);
        assert.equal(res.headers.get('content-type'), 'application/json');
        assert.deepEqual(await res.json(), { code: 5, message: 'Unsupported protocol version' });
      }
    });

    it('handshake errors: transport missing or unknown → 400 code 0', async () => {
      for (const transport of [null, 'abc', 'webtransport']) {
        const res = await fetch(eio(server, { transport }));
        assert.equal(res.status, 400, `transport=${transport}`);
        assert.deepEqual(await res.json(), { code: 0, message: 'Transport unknown' });
      }
    });

    it('handshake errors: POST/PUT without sid → 400 code 2', async () => {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await fetch(eio(server), { method, body: method === 'DELETE' ? undefined : '4x' });
        assert.equal(res.status, 400, method);
        assert.deepEqual(await res.json(), { code: 2, message: 'Bad handshake method' });
      }
    });

    it('handshake errors: websocket transport without an upgrade → 400 code 3; unknown sid → 400 code 1', async () => {
      let res = await fetch(eio(server, { transport: 'websocket' }));
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 3, message: 'Bad request' });
      res = await poll(server, 'AAAAAAAAAAAAAAAAAAAA');
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 1, message: 'Session ID unknown' });
      res = await push(server, 'AAAAAAAAAAAAAAAAAAAA', '4x');
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 1, message: 'Session ID unknown' });
    });

    it('WebSocket handshake: open packet with no upgrades', async () => {
      const ws = wsClient(wsUrl(server));
      const { data, isBinary } = await ws.next();
      assert.equal(isBinary, false);
      assert.equal(data[0], '0');
      const open = JSON.parse(data.slice(1));
      assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
      assert.deepEqual(open.upgrades, []);
      assert.equal(open.pingInterval, PING_INTERVAL);
      assert.equal(open.pingTimeout, PING_TIMEOUT);
      assert.equal(open.maxPayload, 1000000);
      ws.close();
      await ws.closed;
    });

    it('WebSocket handshake refused: bad EIO or transport', async () => {
      for (const url of [wsUrl(server, { eioVersion: null }), wsUrl(server, { eioVersion: 'abc' }),
        wsUrl(server, { transport: null }), wsUrl(server, { transport: 'abc' }), wsUrl(server, { sid: 'AAAAAAAAAAAAAAAAAAAA' })]) {
        const ws = new WebSocket(url);
        const [, res] = await once(ws, 'unexpected-response');
        assert.equal(res.statusCode, 400, url);
        ws.on('error', () => {});
        res.destroy();
      }
    });
  });

  describe('messages', () => {
    it('polling: text packets echoed (one, several)', async () => {
      const sid = await openPolling(server);
      let res = await push(server, sid, '4hello');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html');
      assert.equal(await res.text(), 'ok');
      assert.equal(await pollText(server, sid), '4hello');
      res = await push(server, sid, '4test1\x1e4test2\x1e4test3');
      assert.equal(await res.text(), 'ok');
      assert.equal(await pollText(server, sid), '4test1\x1e4test2\x1e4test3');
      // UTF-8 as it came (the old protocol counted UTF-16 units: no longer).
      await push(server, sid, '4€ café');
      assert.equal(await pollText(server, sid), '4€ café');
    });

    it('polling: text and binary packets echoed', async () => {
      const sid = await openPolling(server);
      const res = await push(server, sid, '4hello\x1ebAQIDBA==');
      assert.equal(await res.text(), 'ok');
      assert.equal(await pollText(server, sid), '4hello\x1ebAQIDBA==');
    });

    it('polling: a held GET is answered when a packet comes', async () => {
      const sid = await openPolling(server);
      const held = pollText(server, sid);
      await push(server, sid, '4later');
      assert.equal(await held, '4later');
    });

    it('polling: an invalid payload closes the session', async () => {
      for (const body of ['abc', '4ok\x1e', 'b!!!']) {
        const sid = await openPolling(server);
        const res = await push(server, sid, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        const after = await poll(server, sid);
        assert.equal(after.status, 400);
        assert.equal((await after.json()).code, 1);
      }
    });

    it('polling: a binary (octet-stream) body is refused and closes the session', async () => {
      const sid = await openPolling(server);
      const res = await push(server, sid, Buffer.from([1, 2, 3]), { 'content-type': 'application/octet-stream' });
      assert.equal(res.status, 400);
      assert.equal((await poll(server, sid)).status, 400);
    });

    it('polling: a second concurrent GET closes the session', async () => {
      const sid = await openPolling(server);
      const first = poll(server, sid);
      // The first GET must be held before the second arrives; nothing observable says when, so a
      // short pause (well under pingInterval, whose ping would answer the first GET).
      await new Promise((r) => setTimeout(r, 50));
      const second = await poll(server, sid, '&t=burst');
      assert.equal(second.status, 400);
      const res = await first;
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '1');
      assert.equal((await poll(server, sid)).status, 400);
    });

    it('polling: a body over maxPayload → 413', async () => {
      const sid = await openPolling(server);
      const res = await push(server, sid, `4${'x'.repeat(1000000)}`);
      assert.equal(res.status, 413);
    });

    it('WebSocket: text echoed as text', async () => {
      const ws = await openWs(server);
      ws.send('4hello');
      assert.deepEqual(await ws.next(), { data: '4hello', isBinary: false });
      ws.send('4€');
      assert.deepEqual(await ws.next(), { data: '4€', isBinary: false });
      ws.close();
      await ws.closed;
    });

    it('WebSocket: binary echoed as a binary frame', async () => {
      const ws = await openWs(server);
      ws.send(Uint8Array.from([1, 2, 3, 4]));
      const m = await ws.next();
      assert.equal(m.isBinary, true);
      assert.deepEqual([...m.data], [1, 2, 3, 4]);
      ws.close();
      await ws.closed;
    });

    it('WebSocket: an invalid frame closes the session', async () => {
      for (const frame of ['abc', '']) {
        const ws = await openWs(server);
        ws.send(frame);
        await within(2000, ws.closed, 'close');
      }
    });

    it('WebSocket: a message over maxPayload closes the connection', async () => {
      const ws = await openWs(server);
      ws.send(`4${'x'.repeat(1000000)}`);
      const { code } = await within(5000, ws.closed, 'close');
      // 1009 (message too big) from the close frame; 1006 when the server's close arrives while the
      // client is still writing the message and the unread rest resets the connection first.
      assert.ok([1009, 1006].includes(code), `close code ${code}`);
    });
  });

  describe('heartbeat', () => {
    it('polling heartbeat: ping every pingInterval, pong keeps the session', async () => {
      const sid = await openPolling(server);
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        assert.equal(await pollText(server, sid), '2');
        assert.ok(Date.now() - started >= PING_INTERVAL - 50, 'pinged too early');
        const res = await push(server, sid, '3');
        assert.equal(res.status, 200);
      }
    });

    it('polling heartbeat: no pong → closed (ping timeout)', async () => {
      const sid = await openPolling(server);
      assert.equal(await pollText(server, sid), '2');
      // No pong: the next GET is held until the timeout ends the session with a close packet.
      const started = Date.now();
      assert.equal(await within(PING_TIMEOUT + 2000, pollText(server, sid), 'close packet'), '1');
      assert.ok(Date.now() - started >= PING_TIMEOUT - 50, 'closed before pingTimeout');
      const res = await poll(server, sid);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, 1);
    });

    it('WebSocket heartbeat: ping every pingInterval, pong keeps the session', async () => {
      const ws = await openWs(server);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await ws.next(), { data: '2', isBinary: false });
        ws.send('3');
      }
      ws.close();
      await ws.closed;
    });

    it('WebSocket heartbeat: no pong → closed (ping timeout)', async () => {
      const ws = await openWs(server);
      assert.equal((await ws.next()).data, '2');
      await within(PING_TIMEOUT + 2000, ws.closed, 'close');
    });

    it('a ping from the client closes the session (protocol 4: only the server pings)', async () => {
      const ws = await openWs(server);
      ws.send('2');
      await within(2000, ws.closed, 'close');
    });
  });

  describe('close', () => {
    it('polling: the client\'s close packet ends the session, the held GET gets a noop', async () => {
      const sid = await openPolling(server);
      const held = poll(server, sid);
      await new Promise((r) => setTimeout(r, 50)); // held first (see the duplicate-poll test)
      const res = await push(server, sid, '1');
      assert.equal(res.status, 200);
      const pollRes = await held;
      assert.equal(pollRes.status, 200);
      assert.equal(await pollRes.text(), '6');
      assert.equal((await poll(server, sid)).status, 400);
    });

    it('WebSocket: the client\'s close packet closes the connection', async () => {
      const ws = await openWs(server);
      ws.send('1');
      await within(2000, ws.closed, 'close');
    });
  });

  describe('upgrade', () => {
    it('upgrade: probe, noop on the pending GET, 5, then traffic on WebSocket', async () => {
      const sid = await openPolling(server);
      const ws = await probe(server, sid);
      assert.equal(await pollText(server, sid), '6');
      ws.send('5');
      ws.send('4hello');
      assert.deepEqual(await ws.next(), { data: '4hello', isBinary: false });
      ws.send(Buffer.from([9, 8, 7]));
      const bin = await ws.next();
      assert.equal(bin.isBinary, true);
      assert.deepEqual([...bin.data], [9, 8, 7]);
      ws.close();
      await ws.closed;
    });

    it('upgrade: a GET held during the probe returns with a noop', async () => {
      const sid = await openPolling(server);
      const held = pollText(server, sid);
      await new Promise((r) => setTimeout(r, 50)); // held first
      const ws = await probe(server, sid);
      assert.equal(await held, '6');
      ws.send('5');
      ws.close();
      await ws.closed;
    });

    it('upgrade: polling with the sid is refused afterwards', async () => {
      const sid = await openPolling(server);
      const ws = await probe(server, sid);
      ws.send('5');
      // "5" has no answer; an echo on the WebSocket proves it was processed before the GET.
      ws.send('4sync');
      assert.equal((await ws.next()).data, '4sync');
      let res = await poll(server, sid);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 3, message: 'Bad request' });
      res = await push(server, sid, '4late');
      assert.equal(res.status, 400);
      ws.send('4hello');
      assert.equal((await ws.next()).data, '4hello');
      ws.close();
      await ws.closed;
    });

    it('upgrade: a second WebSocket with the sid is closed', async () => {
      const sid = await openPolling(server);
      const ws = await probe(server, sid);
      ws.send('5');
      const ws2 = wsClient(wsUrl(server, { sid }));
      await within(2000, ws2.closed, 'close of the second WebSocket');
      ws.send('4hello');
      assert.equal((await ws.next()).data, '4hello');
      ws.close();
      await ws.closed;
    });

    it('upgrade: packets queued for polling go over the WebSocket after 5', async () => {
      const sid = await openPolling(server);
      const ws = await probe(server, sid);
      // Echoed on polling while no GET is held: queued until the upgrade completes.
      assert.equal(await (await push(server, sid, '4queued')).text(), 'ok');
      ws.send('5');
      assert.deepEqual(await ws.next(), { data: '4queued', isBinary: false });
      ws.close();
      await ws.closed;
    });
  });

  describe('CORS', () => {
    it('any origin (socketio-echo): the origin echoed with credentials; preflight 204', async () => {
      const origin = 'https://app.example';
      let res = await fetch(eio(server), { headers: { origin } });
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
      await res.text();
      res = await fetch(eio(server), {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.match(res.headers.get('access-control-allow-methods'), /POST/);
      assert.equal(res.headers.get('access-control-allow-headers'), 'content-type');
      // Errors carry it too, so that a browser can read why.
      res = await fetch(eio(server, { eioVersion: '3' }), { headers: { origin } });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      // No Origin (not a browser): no CORS headers.
      res = await fetch(eio(server));
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    });
  });

  describe('the stock engine.io-client', () => {
    for (const [name, opts, finalTransport] of [
      ['default (polling, then the upgrade)', {}, 'websocket'],
      ['polling only', { transports: ['polling'] }, 'polling'],
      ['WebSocket only', { transports: ['websocket'] }, 'websocket'],
    ]) {
      it(`${name}: text and binary echoed, heartbeats answered`, async () => {
        const client = new EioClient(`http://127.0.0.1:${server.port}`, { ...opts, path: '/engine.io/' });
        try {
          await within(5000, once(client, 'open'), 'open');
          if (finalTransport === 'websocket' && !opts.transports) await within(5000, once(client, 'upgrade'), 'upgrade');
          assert.equal(client.transport.name, finalTransport);
          const messages = [];
          const got = (n) => new Promise((resolve) => {
            const check = () => { if (messages.length >= n) { client.off('message', onMsg); resolve(); } };
            const onMsg = (m) => { messages.push(m); check(); };
            client.on('message', onMsg);
            check();
          });
          client.send('hello');
          client.send(Uint8Array.from([1, 2, 3]));
          await within(5000, got(2), 'echoes');
          assert.equal(messages[0], 'hello');
          assert.deepEqual([...new Uint8Array(messages[1])], [1, 2, 3]);
          // Three server pings answered by the client keep the session open past pingInterval + pingTimeout.
          let pings = 0;
          await within(5000, new Promise((resolve) => client.on('ping', () => { if (++pings === 3) resolve(); })), 'three pings');
          assert.equal(client.readyState, 'open');
        } finally {
          client.close();
        }
      });
    }
  });
});

describe('Engine.IO settings and shutdown', () => {
  it('an upgrade probe without "5" is closed after --upgrade-timeout; the polling session goes on', async () => {
    const server = await Server.start({ command: 'socketio-echo', args: ['--upgrade-timeout', '300', '--ping-interval', '20000', '--ping-timeout', '20000'] });
    try {
      const sid = await openPolling(server);
      const ws = await probe(server, sid);
      await within(3000, ws.closed, 'the probe closed');
      assert.equal(await (await push(server, sid, '4still')).text(), 'ok');
      assert.equal(await pollText(server, sid), '4still');
    } finally {
      await server.stopCleanly();
      await server.dispose();
    }
  });

  it('WebSocket: a client that does not read is dropped when its send queue is full; others go on', async () => {
    // Heartbeats far off, so that it is the queue, not a ping timeout, that drops the client.
    const server = await Server.start({ command: 'socketio-echo', args: ['--ping-interval', '60000', '--ping-timeout', '60000', '--log-level', 'debug'] });
    try {
      const slow = await openWs(server);
      slow._socket.pause(); // reads nothing: the echoes pile up in the server's queue for it
      const frame = `4${'x'.repeat(10_000)}`;
      const total = 4000; // 40 MB of echoes: far past the socket buffers and the 1024-frame queue
      for (let i = 0; i < total; i++) slow.send(frame);
      const dropped = server.waitForLog((l) => l.msg === 'engine.io session closed' && l.sid === slow.sid,
        { timeoutMs: scaled(20_000), what: 'the slow client dropped' });
      // Meanwhile another client is served at once.
      const other = await openWs(server);
      other.send('4unaffected');
      assert.equal((await within(2000, other.next(), 'echo to the other client')).data, '4unaffected');
      assert.equal((await dropped).json.reason, 'send queue full');
      other.close();
      slow._socket.resume();
      await within(20_000, slow.closed, 'the close of the slow client');
    } finally {
      await server.stopCleanly();
      await server.dispose();
    }
  });

  it('--ping-interval, --ping-timeout and --max-payload reach the open packet', async () => {
    const server = await Server.start({ command: 'socketio-echo', args: ['--ping-interval', '25000', '--ping-timeout', '20000', '--max-payload', '2048'] });
    try {
      const res = await fetch(eio(server));
      const open = JSON.parse((await res.text()).slice(1));
      assert.equal(open.pingInterval, 25000);
      assert.equal(open.pingTimeout, 20000);
      assert.equal(open.maxPayload, 2048);
      const big = await push(server, open.sid, `4${'x'.repeat(3000)}`);
      assert.equal(big.status, 413);
    } finally {
      await server.stopCleanly();
      await server.dispose();
    }
  });

  it('SIGTERM: a held GET gets the close packet, a WebSocket a close frame, and the process exits 0', async () => {
    const server = await Server.start({ command: 'socketio-echo', args: ['--ping-interval', '20000', '--ping-timeout', '20000'] });
    try {
      const sid = await openPolling(server);
      const held = pollText(server, sid);
      const ws = await openWs(server);
      await new Promise((r) => setTimeout(r, 50)); // the GET held first (see the duplicate-poll test)
      const stopped = server.stopCleanly();
      assert.equal(await within(5000, held, 'the held GET'), '1');
      const { code } = await within(5000, ws.closed, 'the close frame');
      assert.equal(code, 1000);
      await stopped;
    } finally {
      await server.dispose();
    }
  });
});
