'use strict';
// TLS on the connections registrar opens, end to end through the settings (issue 14): the welcome
// mail over smtps:// and over required STARTTLS to a small SMTP server of this file that speaks
// real TLS (node:tls, certificates from scripts/make-test-certs.sh); a server without STARTTLS
// gets no mail (nothing but EHLO); the event webhook over https (a receiver whose certificate the
// CA file verifies gets the signed event, one of another CA nothing); TLS settings that cannot
// work stop the process at start with exit code 2 and a message naming the setting. (RabbitMQ and MariaDB over TLS: the contract
// tests tests/contract/amqp_tls_test.cpp and mysql_tls_test.cpp, against real TLS servers.)
//
//   node --test tests/blackbox/tls_backends.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { Server, BIN, REPO_ROOT, newUser, eventually } = require('./harness');

// An SMTP server on 127.0.0.1: `mode` 'smtps' (TLS from the first byte), 'starttls' (offers it),
// or 'plain' (does not). Records each session's commands, whether they came inside TLS, and the
// messages.
class SmtpServer {
  constructor(mode, certs) {
    this.mode = mode;
    this.sessions = [];
    const context = { key: fs.readFileSync(path.join(certs, 'server.key')), cert: fs.readFileSync(path.join(certs, 'server.crt')) };
    this.context = context;
    const onConnection = (socket) => this.serve(socket, mode === 'smtps');
    this.server = mode === 'smtps' ? tls.createServer(context, onConnection) : net.createServer(onConnection);
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => { this.port = this.server.address().port; resolve(); }));
  }

  close() { return new Promise((resolve) => this.server.close(() => resolve())); }

  serve(socket, secure) {
    const session = { commands: [], data: '', tls: secure };
    this.sessions.push(session);
    let buffer = '';
    let inData = false;
    let current = socket;
    current.on('error', () => {});
    const onData = (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          session.data += buffer.slice(0, end + 5);
          buffer = buffer.slice(end + 5);
          inData = false;
          current.write('250 2.0.0 queued\r\n');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        session.commands.push({ line, tls: session.tls });
        const verb = line.split(' ')[0].toUpperCase();
        if (verb === 'EHLO') {
          current.write(`250-tls.test\r\n${this.mode === 'starttls' && !session.tls ? '250-STARTTLS\r\n' : ''}250 8BITMIME\r\n`);
        } else if (verb === 'STARTTLS' && this.mode === 'starttls' && !session.tls) {
          current.write('220 2.0.0 go ahead\r\n');
          current.removeListener('data', onData);
          const secured = new tls.TLSSocket(current, { isServer: true, ...this.context });
          secured.on('secure', () => { session.tls = true; });
          secured.on('error', () => {});
          secured.on('data', onData);
          current = secured;
          return;
        } else if (verb === 'DATA') {
          inData = true;
          current.write('354 go on\r\n');
        } else if (verb === 'QUIT') {
          current.end('221 bye\r\n');
        } else {
          current.write('250 ok\r\n');
        }
      }
    };
    current.on('data', onData);
    current.write('220 tls.test ESMTP\r\n');
  }
}

let certs;
before(() => {
  certs = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-bb-certs-'));
  execFileSync(path.join(REPO_ROOT, 'scripts', 'make-test-certs.sh'), [certs], { stdio: 'pipe' });
});
after(() => fs.rmSync(certs, { recursive: true, force: true }));

async function welcomeOver(mode, smtpArgs) {
  const smtp = new SmtpServer(mode, certs);
  await smtp.listen();
  const server = await Server.start({
    db: 'sqlite',
    args: ['--consumers', 'audit,welcome', '--mail-from', 'noreply@example.com', '--log-level', 'debug',
      ...smtpArgs(smtp.port)],
  });
  return { smtp, server };
}

describe('the welcome mail over TLS', () => {
  it('smtps:// with --smtp-ca-file: the whole conversation inside TLS', async () => {
    const { smtp, server } = await welcomeOver('smtps', (port) => ['--smtp-url', `smtps://127.0.0.1:${port}`,
      '--smtp-ca-file', path.join(certs, 'ca.crt')]);
    try {
      const user = newUser('tls');
      assert.equal((await server.register(user)).status, 201);
      await eventually(() => smtp.sessions.some((s) => s.data.includes(`To: ${user.email}`)), { what: 'the welcome mail' });
      const session = smtp.sessions.find((s) => s.data.includes(`To: ${user.email}`));
      assert.ok(session.commands.every((c) => c.tls), JSON.stringify(session.commands));
    } finally {
      await server.dispose();
      await smtp.close();
    }
  });

  it('smtp:// with --smtp-starttls true: only EHLO and STARTTLS in clear, the mail inside TLS', async () => {
    const { smtp, server } = await welcomeOver('starttls', (port) => ['--smtp-url', `smtp://127.0.0.1:${port}`,
      '--smtp-starttls', 'true', '--smtp-ca-file', path.join(certs, 'ca.crt')]);
    try {
      const user = newUser('tls');
      assert.equal((await server.register(user)).status, 201);
      await eventually(() => smtp.sessions.some((s) => s.data.includes(`To: ${user.email}`)), { what: 'the welcome mail' });
      const session = smtp.sessions.find((s) => s.data.includes(`To: ${user.email}`));
      assert.deepEqual(session.commands.filter((c) => !c.tls).map((c) => c.line), ['EHLO localhost', 'STARTTLS']);
      assert.ok(session.commands.some((c) => c.tls && c.line.startsWith('MAIL FROM:')));
    } finally {
      await server.dispose();
      await smtp.close();
    }
  });

  it('STARTTLS required, the server does not offer it: no mail, nothing but EHLO, a clear error', async () => {
    const { smtp, server } = await welcomeOver('plain', (port) => ['--smtp-url', `smtp://127.0.0.1:${port}`,
      '--smtp-starttls', 'true', '--smtp-ca-file', path.join(certs, 'ca.crt')]);
    try {
      assert.equal((await server.register(newUser('tls'))).status, 201);
      await eventually(() => server.logs.some((l) => String(l.error || '').includes('does not offer STARTTLS')),
        { what: 'the consumer\'s error' });
      assert.ok(smtp.sessions.length > 0);
      for (const s of smtp.sessions) assert.deepEqual(s.commands.map((c) => c.line), ['EHLO localhost']);
    } finally {
      await server.dispose();
      await smtp.close();
    }
  });

  it('a certificate of another CA: refused with the reason, no mail', async () => {
    const { smtp, server } = await welcomeOver('smtps', (port) => ['--smtp-url', `smtps://127.0.0.1:${port}`,
      '--smtp-ca-file', path.join(certs, 'other-ca.crt')]);
    try {
      assert.equal((await server.register(newUser('tls'))).status, 201);
      await eventually(() => server.logs.some((l) => String(l.error || '').includes('certificate verify failed')),
        { what: 'the consumer\'s error' });
      assert.ok(smtp.sessions.every((s) => s.commands.length === 0 && s.data === ''));
    } finally {
      await server.dispose();
      await smtp.close();
    }
  });
});

// An https webhook receiver on 127.0.0.1 with the certificate `name` of make-test-certs.sh; records
// the requests that got through the handshake.
async function httpsReceiver(name) {
  const requests = [];
  const server = https.createServer({ key: fs.readFileSync(path.join(certs, `${name}.key`)), cert: fs.readFileSync(path.join(certs, `${name}.crt`)) },
    (req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => { requests.push({ url: req.url, headers: req.headers, body }); res.writeHead(204).end(); });
    });
  server.on('tlsClientError', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { requests, url: `https://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

describe('event webhooks over https', () => {
  it('with --webhook-ca-file the signed event arrives over TLS; a receiver of another CA is refused with the reason and gets nothing', async () => {
    const good = await httpsReceiver('server');
    const other = await httpsReceiver('self-signed');
    const secret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
    let server;
    try {
      // Inside the try: the receivers are closed also when the server does not start (they would
      // keep this file's process alive).
      server = await Server.start({
        db: 'sqlite',
        args: ['--consumers', 'webhook', '--log-level', 'debug', '--webhook-urls', `${good.url}/hook,${other.url}/hook`,
          '--webhook-ca-file', path.join(certs, 'ca.crt')],
        env: { REGISTRAR_WEBHOOK_SECRET: secret },
      });
      const reg = await server.register(newUser('hook'));
      assert.equal(reg.status, 201, reg.text);
      await eventually(() => good.requests.some((r) => r.body.includes(reg.json.user.id)), { what: 'the delivery over https' });
      assert.match(good.requests[0].headers['webhook-signature'], /^v1,/);
      await eventually(() => server.logs.some((l) => String(l.error || '').includes('certificate verify failed')),
        { what: 'the consumer\'s error' });
      assert.equal(other.requests.length, 0);
      assert.ok(!server.logText().includes(secret.slice('whsec_'.length)), 'the signing key is in the log');
    } finally {
      if (server) await server.dispose();
      await good.close();
      await other.close();
    }
  });
});

describe('TLS settings that cannot work stop the process at start', () => {
  const run = (args, env = {}) => spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', ...args], {
    encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, REGISTRAR_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-bb-')), ...env },
  });
  const hookSecret = { REGISTRAR_WEBHOOK_SECRET: `whsec_${crypto.randomBytes(32).toString('base64')}` };
  for (const [what, args, expected, env] of [
    ['a CA file for amqp://', ['--amqp-url', 'amqp://guest:guest@127.0.0.1:1/', '--amqp-ca-file', '/etc/hostname'], '--amqp-ca-file'],
    ['an amqps:// CA file that does not load', ['--amqp-url', 'amqps://guest:guest@127.0.0.1:1/', '--amqp-ca-file', '/nonexistent.pem'], 'cannot load the CA file'],
    ['a MySQL CA file that does not load', ['--database-url', 'mysql://u:p@127.0.0.1:1/r', '--database-ca-file', '/nonexistent.pem'], 'cannot load the CA file'],
    ['an unknown --database-ssl-mode', ['--database-url', 'mysql://u:p@127.0.0.1:1/r', '--database-ssl-mode', 'preferred'], '--database-ssl-mode'],
    ['an SMTP CA file that does not load', ['--smtp-url', 'smtps://127.0.0.1:1', '--mail-from', 'a@b.example', '--smtp-ca-file', '/nonexistent.pem'], 'cannot load the CA file'],
    ['a webhook CA file that does not load', ['--consumers', 'webhook', '--webhook-urls', 'https://127.0.0.1:1/h', '--webhook-ca-file', '/nonexistent.pem'], '--webhook-ca-file: cannot load the CA certificates from /nonexistent.pem', hookSecret],
    ['a webhook CA file with http:// URLs only', ['--consumers', 'webhook', '--webhook-urls', 'http://127.0.0.1:1/h', '--webhook-ca-file', '/etc/hostname'], '--webhook-ca-file needs an https:// URL', hookSecret],
  ]) {
    it(what, () => {
      const r = run(args, env);
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.ok(r.stderr.includes(expected), r.stderr);
    });
  }
});
