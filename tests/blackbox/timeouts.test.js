'use strict';
// Slow clients are cut off by the head timeout (slowloris) with a 408 while others are served,
// idle keep-alive connections are closed silently, and `registrar migrate` prepares a database on
// its own. (The same over TLS: api_tls.test.js.)
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Server, BIN, parseResponses } = require('./harness');

// Opens a raw connection and resolves with { bytes, closedAfterMs } when the server closes it.
function trickle(port, { first, drip, everyMs }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let timer;
    socket.on('connect', () => {
      socket.write(first);
      if (drip) timer = setInterval(() => socket.write(drip), everyMs);
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {}); // a reset after our last drip is fine; 'close' follows
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - started });
    });
    setTimeout(() => { clearInterval(timer); socket.destroy(); reject(new Error('server never closed the slow connection')); }, 20_000);
  });
}

describe('timeouts', () => {
  let server;
  before(async () => {
    server = await Server.start({ args: ['--header-timeout', '2', '--idle-timeout', '2'] });
  });
  after(async () => { await server.stopCleanly(); await server.dispose(); });

  it('a client that sends its head one byte at a time gets 408 and is disconnected, others are served meanwhile', async () => {
    const slow = trickle(server.port, { first: 'GET /healthz HTTP/1.1\r\n', drip: 'X', everyMs: 200 });
    // While the slow client drips, normal requests go through at once.
    for (let i = 0; i < 5; i++) {
      const res = await server.request('GET', '/healthz');
      assert.equal(res.status, 200);
    }
    const { text, closedAfterMs } = await slow;
    // Part of a request came: 408 problem+json with Connection: close (RFC 9110 §15.5.9), then the close.
    const { responses } = parseResponses(Buffer.from(text, 'latin1'), { atEof: true });
    assert.equal(responses.length, 1, `one answer: ${JSON.stringify(text)}`);
    assert.equal(responses[0].status, 408);
    assert.equal(responses[0].headers.connection, 'close');
    assert.match(responses[0].headers['content-type'], /^application\/problem\+json/);
    const problem = responses[0].json;
    assert.equal(problem.code, 'request_timeout');
    assert.equal(problem.status, 408);
    assert.match(problem.detail, /within 2 seconds/);
    assert.ok(closedAfterMs >= 1500 && closedAfterMs < 10_000, `closed after ${closedAfterMs} ms`);
  });

  it('a head stopped half-way (no more bytes) also gets 408', async () => {
    const { text, closedAfterMs } = await trickle(server.port, { first: 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Le' });
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(closedAfterMs >= 1500 && closedAfterMs < 10_000, `closed after ${closedAfterMs} ms`);
  });

  it('an idle keep-alive connection is closed after the idle timeout', async () => {
    const { text, closedAfterMs } = await trickle(server.port, { first: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' });
    // No bytes of a next request: closed without a 408.
    const { responses } = parseResponses(Buffer.from(text, 'latin1'), { atEof: true });
    assert.deepEqual(responses.map((r) => r.status), [200]);
    assert.ok(closedAfterMs >= 1500 && closedAfterMs < 10_000, `closed after ${closedAfterMs} ms`);
  });

  it('a connection that never sends anything is closed after the head timeout', async () => {
    const { text, closedAfterMs } = await trickle(server.port, { first: '' });
    assert.equal(text, '');
    assert.ok(closedAfterMs >= 1500 && closedAfterMs < 10_000, `closed after ${closedAfterMs} ms`);
  });
});

describe('registrar migrate', () => {
  it('applies the schema once, then finds it current; serve then applies nothing', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-bb-migrate-'));
    try {
      const migrate = () => spawnSync(BIN, ['migrate', '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000 });
      const first = migrate();
      assert.equal(first.status, 0, first.stderr);
      const applied = first.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.msg === 'migration applied');
      assert.ok(applied.length >= 1);
      assert.deepEqual(applied.map((l) => l.version), applied.map((_, i) => i + 1));
      const second = migrate();
      assert.equal(second.status, 0, second.stderr);
      assert.doesNotMatch(second.stdout, /migration applied/);
      assert.match(second.stdout, /schema is current/);

      const server = await Server.start({ dataDir, db: 'sqlite' });
      try {
        assert.ok(!server.logs.some((l) => l.msg === 'migration applied'), 'serve re-applied a migration');
        const res = await server.request('GET', '/readyz');
        assert.equal(res.status, 200);
      } finally {
        await server.stopCleanly();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a bad setting with a one-line message and exit code 2', () => {
    const res = spawnSync(BIN, ['migrate', '--database-url', 'postgres://x/y'], { encoding: 'utf8' });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /^registrar: invalid --database-url .*REGISTRAR_DATABASE_URL/);
  });
});
