'use strict';
// Redis for the black-box tests: a private redis-server (Debian's) on a free 127.0.0.1 port with a
// temp directory, which a test can stop and start again on the same port (outages). The twin of
// tests/support/redis_server.hpp.
//
//   const { startRedis } = require('./support/redis');
//   const redis = await startRedis();                         // or { password, acl: { user, password }, tls: true, port }
//   redis.url                 redis://[:PASSWORD@]127.0.0.1:PORT/0   (rediss://…?ca_file=CA with tls)
//   redis.aclUrl              the ACL user's URL (with acl)
//   await redis.cli(['GET', 'k'])   redis-cli's output, authenticated (trailing newline removed)
//   await redis.stop(); await redis.start();    SIGTERM (nothing is saved), then up again
//   await redis.kill();                         SIGKILL
//   await redis.dispose();                      stopped and its directory removed
//
// Nothing persists (save "", appendonly no). Readiness is an event: start() sends PING on a fresh
// connection (redis-cli for TLS) every 20 ms until the server answers, it exits, or the deadline.
// Every server still running when the test process exits is killed.

const { spawn, execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { scaled } = require('../harness');

const SERVER = '/usr/bin/redis-server';
const START_TIMEOUT_MS = 10_000;

const liveServers = new Set();
process.on('exit', () => {
  for (const s of liveServers) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(file, args, { timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

// A CA, another CA that signed nothing, and a server certificate for 127.0.0.1 and localhost (and
// more: see the script, which every TLS suite shares).
function makeCertificates(dir) {
  execFileSync(path.join(__dirname, '..', '..', '..', 'scripts', 'make-test-certs.sh'), [dir], { stdio: 'pipe' });
}

class RedisServer {
  constructor({ port, dir, password = '', acl = null, tls = false }) {
    this.port = port;
    this.dir = dir;
    this.password = password;
    this.acl = acl;
    this.tls = tls;
    this.child = null;
    this.caFile = tls ? path.join(dir, 'ca.crt') : null;
    this.otherCaFile = tls ? path.join(dir, 'other-ca.crt') : null;
    const scheme = tls ? 'rediss' : 'redis';
    const query = tls ? `?ca_file=${encodeURIComponent(this.caFile)}` : '';
    const auth = password ? `:${encodeURIComponent(password)}@` : '';
    this.url = `${scheme}://${auth}127.0.0.1:${port}/0${query}`;
    this.aclUrl = acl
      ? `${scheme}://${encodeURIComponent(acl.user)}:${encodeURIComponent(acl.password)}@127.0.0.1:${port}/0${query}`
      : null;
  }

  writeConfig() {
    const lines = [
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      `logfile ${path.join(this.dir, 'redis.log')}`,
      'save ""',
      // persistent: every write in the append-only file, fsynced, so a stop (or a kill) loses
      // nothing, as a production Redis that holds a job queue is set up.
      ...(this.persistent ? ['appendonly yes', 'appendfsync always'] : ['appendonly no']),
      'daemonize no',
      'enable-debug-command local',
    ];
    if (this.tls) {
      lines.push('port 0', `tls-port ${this.port}`, `tls-cert-file ${path.join(this.dir, 'server.crt')}`,
        `tls-key-file ${path.join(this.dir, 'server.key')}`, `tls-ca-cert-file ${this.caFile}`, 'tls-auth-clients no');
    } else {
      lines.push(`port ${this.port}`);
    }
    // Quoted as redis.conf reads quotes (sdssplitargs): a password may hold spaces or quotes.
    const q = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    if (this.password) lines.push(`requirepass ${q(this.password)}`);
    if (this.acl) lines.push(`user ${q(this.acl.user)} on ${q(`>${this.acl.password}`)} ~* &* +@all`);
    fs.writeFileSync(path.join(this.dir, 'redis.conf'), `${lines.join('\n')}\n`);
  }

  async start() {
    if (this.child) return;
    const out = fs.openSync(path.join(this.dir, 'console.out'), 'a');
    const child = spawn(SERVER, [path.join(this.dir, 'redis.conf')], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.child = child;
    liveServers.add(this);
    let exited = false;
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }); }));
    const end = Date.now() + scaled(START_TIMEOUT_MS);
    for (;;) {
      if (exited) {
        this.child = null;
        liveServers.delete(this);
        throw new Error(`redis-server exited during startup\n${this.logTail()}`);
      }
      if (await this.answersPing()) return;
      if (Date.now() > end) {
        await this.kill();
        throw new Error(`redis-server: no answer to PING within ${scaled(START_TIMEOUT_MS)} ms\n${this.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop() { await this.end('SIGTERM'); }
  async kill() { await this.end('SIGKILL'); }

  async end(signal) {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await child.exited;
    this.child = null;
    liveServers.delete(this);
  }

  async dispose() {
    await this.kill();
    if (!process.env.KEEP_DATA) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  get running() { return this.child !== null; }

  cliArgs() {
    const args = ['-h', '127.0.0.1', '-p', String(this.port)];
    if (this.password) args.push('-a', this.password, '--no-auth-warning');
    if (this.tls) args.push('--tls', '--cacert', this.caFile);
    return args;
  }

  // redis-cli with `args`; its output without the trailing newline.
  async cli(args) {
    const out = await run('redis-cli', [...this.cliArgs(), ...args]);
    return out.replace(/\r?\n$/, '');
  }

  // +PONG, or -NOAUTH (up, and wants a password), to a PING on a fresh connection.
  answersPing() {
    if (this.tls) {
      return run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), '--tls', '--cacert', this.caFile, 'PING'])
        .then((out) => /PONG|NOAUTH/.test(out), () => false);
    }
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      const done = (ok) => { socket.destroy(); resolve(ok); };
      socket.setTimeout(1000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString('latin1'))));
    });
  }

  logTail(maxBytes = 4000) {
    let text = '';
    for (const f of ['console.out', 'redis.log']) {
      try { text += fs.readFileSync(path.join(this.dir, f), 'utf8'); } catch { /* not written */ }
    }
    return text.slice(-maxBytes);
  }
}

// A started server. Options: password (requirepass), acl: { user, password } (an ACL user with every
// permission), tls (TLS only; certificates made with the openssl CLI), port (default: a free one),
// persistent (an fsynced append-only file: what was written survives stop/start and kill).
async function startRedis({ password = '', acl = null, tls = false, port = 0, persistent = false } = {}) {
  if (!fs.existsSync(SERVER)) throw new Error(`${SERVER} not found (apt-get install redis-server)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-redis-'));
  const server = new RedisServer({ port: port || await freePort(), dir, password, acl, tls });
  server.persistent = persistent;
  try {
    if (tls) makeCertificates(dir);
    server.writeConfig();
    await server.start();
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return server;
}

module.exports = { startRedis, RedisServer };
