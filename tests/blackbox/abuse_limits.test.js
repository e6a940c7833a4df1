// Abuse limits (README "Abuse limits", OWASP ASVS V2.2.1) against the real binary: each limit's
// 429 with Retry-After and a problem body, and its reset; two `serve` processes sharing one Redis
// budget; Redis stopped for real under each --rate-limit-redis-down policy; the login soft lockout,
// which never keeps the owner out longer than --login-lockout-max and is reset by a success.
//
// Limits are small and refill fast (a token every 100-400 ms), so a reset is awaited by polling
// until the request is allowed again (never a fixed sleep). Client addresses are chosen with
// X-Forwarded-For from a trusted proxy (127.0.0.1) where a test needs several clients.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Server, newUser, assertProblem, eventually, randomId } = require('./harness');
const { startRedis } = require('./support/redis');

const from = (ip) => ({ 'x-forwarded-for': ip });
// Processes that share Redis share their PII keys (README: the blind index must be one for phone
// lookups, and bucket names are keyed hashes under it).
const crypto = require('node:crypto');
const SHARED_KEYS = {
  REGISTRAR_PII_KEYS: `1:${crypto.randomBytes(32).toString('base64')}`,
  REGISTRAR_PII_INDEX_KEY: crypto.randomBytes(32).toString('base64'),
};
const ALL_OFF = ['--rate-limit-register-ip', '0', '--rate-limit-register-id', '0', '--rate-limit-login-ip', '0',
  '--rate-limit-login-id', '0', '--rate-limit-codes-ip', '0', '--rate-limit-jobs-ip', '0', '--rate-limit-jobs-id', '0',
  '--login-lockout-failures', '0'];

// A serve with every limit off but those given (later flags win: CLI11 keeps the last).
function limited(args, opts = {}) {
  return Server.start({ ...opts, args: [...ALL_OFF, ...args, ...(opts.args || [])], env: { REGISTRAR_RATE_LIMITS: 'true', ...(opts.env || {}) } });
}

function assertLimited(res, { maxRetryAfter } = {}) {
  const body = assertProblem(res, 429, 'rate_limited');
  assert.equal(body.type, 'urn:registrar:problem:rate_limited');
  const retryAfter = res.headers['retry-after'];
  assert.match(retryAfter || '', /^[1-9][0-9]*$/, `Retry-After is whole seconds: ${retryAfter}`);
  assert.equal(body.retryAfter, Number(retryAfter));
  if (maxRetryAfter !== undefined) assert.ok(Number(retryAfter) <= maxRetryAfter, `Retry-After ${retryAfter} <= ${maxRetryAfter}`);
  return Number(retryAfter);
}

// Sends `send()` until it is not a 429 (the bucket refilled); returns that response.
function untilAllowed(send, what) {
  return eventually(async () => {
    const res = await send();
    return res.status === 429 ? false : res;
  }, { intervalMs: 25, timeoutMs: 10_000, what });
}

test('register: the per-IP bucket answers 429 + Retry-After past its burst, then refills', async (t) => {
  const server = await limited(['--rate-limit-register-ip', '3/3', '--trusted-proxies', '127.0.0.1']);
  t.after(() => server.dispose());
  for (let i = 0; i < 3; i++) assert.equal((await server.register(newUser('ip'), from('203.0.113.10'))).status, 201);
  assertLimited(await server.register(newUser('ip'), from('203.0.113.10')), { maxRetryAfter: 1 });
  // Another client is not affected.
  assert.equal((await server.register(newUser('ip'), from('203.0.113.11'))).status, 201);
  // The refused request did nothing; once a token is back, the same client signs up.
  const user = newUser('ip');
  const res = await untilAllowed(() => server.register(user, from('203.0.113.10')), 'a token back for 203.0.113.10');
  assert.equal(res.status, 201);
  // The access log has the 429s, and no identifier or address of a bucket is logged beyond the client field.
  assert.ok(server.logs.some((l) => l.msg === 'request' && l.status === 429 && l.path === '/auth/register'));
});

test('register: the per-identifier bucket follows the email (any case) and the username across addresses', async (t) => {
  const server = await limited(['--rate-limit-register-id', '2/2', '--trusted-proxies', '127.0.0.1']);
  t.after(() => server.dispose());
  const user = newUser('id');
  assert.equal((await server.register(user, from('198.51.100.1'))).status, 201);
  assert.equal((await server.register({ ...newUser('id'), email: user.email }, from('198.51.100.2'))).status, 409);
  assertLimited(await server.register({ ...newUser('id'), email: user.email.toUpperCase() }, from('198.51.100.3')));
  // The username's bucket too: 1 used by the first sign-up.
  const other = newUser('id');
  assert.equal((await server.register({ ...other, username: user.username.toUpperCase() }, from('198.51.100.4'))).status, 409);
  assertLimited(await server.register({ ...newUser('id'), username: user.username }, from('198.51.100.5')));
  // Unrelated identifiers are not limited.
  assert.equal((await server.register(newUser('id'), from('198.51.100.3'))).status, 201);
  const res = await untilAllowed(() => server.register({ ...newUser('id'), email: user.email }, from('198.51.100.6')), 'the email bucket refilled');
  assert.equal(res.status, 409);
});

test('login: per-IP and per-identifier buckets answer 429 before any password is checked, then refill', async (t) => {
  const server = await limited(['--rate-limit-login-ip', '3/3', '--rate-limit-login-id', '4/4', '--trusted-proxies', '127.0.0.1']);
  t.after(() => server.dispose());
  const { user } = await server.registerNew('login');
  const creds = { email: user.email, password: user.password };
  for (let i = 0; i < 3; i++) assert.equal((await server.request('POST', '/auth/login', { json: creds, headers: from('203.0.113.20') })).status, 200);
  assertLimited(await server.request('POST', '/auth/login', { json: creds, headers: from('203.0.113.20') }));
  // The identifier's bucket (every try, from anywhere, any case): one left of 4, then 429 from a fresh address.
  assert.equal((await server.request('POST', '/auth/login', { json: { email: user.email.toUpperCase(), password: 'x' }, headers: from('203.0.113.21') })).status, 401);
  assertLimited(await server.request('POST', '/auth/login', { json: creds, headers: from('203.0.113.22') }));
  const res = await untilAllowed(() => server.request('POST', '/auth/login', { json: creds, headers: from('203.0.113.23') }), 'the identifier bucket refilled');
  assert.equal(res.status, 200);
});

test('verification codes: sending and checking share the per-IP bucket; the per-phone cooldown still applies', async (t) => {
  const server = await limited(['--rate-limit-codes-ip', '3/3', '--code-cooldown', '60']);
  t.after(() => server.dispose());
  const phone = () => `+336${String(10000000 + Math.floor(Math.random() * 89999999))}`;
  assert.equal((await server.request('POST', '/auth/verification-codes', { json: { phone: phone() } })).status, 201);
  const { token } = await (async () => {
    // register is not limited here; its token checks email codes
    const { token } = await server.registerNew('codes');
    return { token };
  })();
  const check = await server.request('POST', '/auth/email-verification', { json: { code: '000000' }, headers: { authorization: `Bearer ${token}` } });
  assert.notEqual(check.status, 429);
  const p = phone();
  assert.equal((await server.request('POST', '/auth/verification-codes', { json: { phone: p } })).status, 201);
  assertLimited(await server.request('POST', '/auth/verification-codes', { json: { phone: phone() } }));
  assertLimited(await server.request('POST', '/auth/email-verification/resend', { headers: { authorization: `Bearer ${token}` } }));
  // Refilled: the same phone is then refused by its own cooldown (the code store's limit, also a
  // rate_limited 429), a new phone gets its code.
  const again = await eventually(async () => {
    const res = await server.request('POST', '/auth/verification-codes', { json: { phone: p } });
    // the bucket's 429 says 1 s; the phone cooldown's says up to 60 s
    return res.status === 429 && Number(res.headers['retry-after']) <= 2 ? false : res;
  }, { intervalMs: 25, timeoutMs: 10_000, what: 'codes bucket refilled' });
  assertLimited(again);
  assert.ok(Number(again.headers['retry-after']) > 2, 'the phone cooldown, not the bucket');
  assert.equal((await untilAllowed(() => server.request('POST', '/auth/verification-codes', { json: { phone: phone() } }), 'a new phone')).status, 201);
});

test('jobs: POST /users is limited per IP and per phone', async (t) => {
  const server = await limited(['--rate-limit-jobs-ip', '3/3', '--rate-limit-jobs-id', '1/1', '--trusted-proxies', '127.0.0.1']);
  t.after(() => server.dispose());
  const job = (phone) => ({ id: randomId(), token: 'not-checked-here', code: '123456', phone, password: 'Pw-long-enough-123', username: `j_${randomId()}` });
  assert.equal((await server.request('POST', '/users', { json: job('+33611111111'), headers: from('203.0.113.30') })).status, 202);
  assertLimited(await server.request('POST', '/users', { json: job('+33 6 11 11 11 11'), headers: from('203.0.113.31') }));
  assert.equal((await server.request('POST', '/users', { json: job('+33622222222'), headers: from('203.0.113.30') })).status, 202);
  assert.equal((await server.request('POST', '/users', { json: job('+33633333333'), headers: from('203.0.113.30') })).status, 202);
  assertLimited(await server.request('POST', '/users', { json: job('+33644444444'), headers: from('203.0.113.30') }));
  assert.equal((await untilAllowed(() => server.request('POST', '/users', { json: job('+33611111111'), headers: from('203.0.113.32') }), 'phone bucket refilled')).status, 202);
});

test('the admin token and a trusted proxy that forwards nobody are exempt from the per-IP bucket, not from identifiers', async (t) => {
  const admin = `admin-${randomId(20)}`;
  const server = await limited(['--rate-limit-register-ip', '1/60', '--rate-limit-register-id', '1/60', '--trusted-proxies', '127.0.0.1'],
    { env: { REGISTRAR_ADMIN_TOKEN: admin } });
  t.after(() => server.dispose());
  // 127.0.0.1 is a trusted proxy: without X-Forwarded-For its own address is no bucket.
  for (let i = 0; i < 4; i++) assert.equal((await server.register(newUser('px'))).status, 201);
  // A forwarded client is its own bucket, whoever forwards it.
  assert.equal((await server.register(newUser('px'), from('203.0.113.40'))).status, 201);
  assertLimited(await server.register(newUser('px'), from('203.0.113.40')));
  // The admin token lifts the per-IP limit for that client…
  assert.equal((await server.register(newUser('px'), { ...from('203.0.113.40'), authorization: `Bearer ${admin}` })).status, 201);
  // …but a near miss does not, and identifiers stay limited for the admin too.
  assertLimited(await server.register(newUser('px'), { ...from('203.0.113.40'), authorization: `Bearer ${admin}x` }));
  const user = newUser('px');
  assert.equal((await server.register(user, { authorization: `Bearer ${admin}` })).status, 201);
  assertLimited(await server.register({ ...newUser('px'), email: user.email }, { authorization: `Bearer ${admin}` }));
});

test('soft lockout: an attacker locks only their own address out, never longer than --login-lockout-max; a success resets', async (t) => {
  const server = await limited(['--login-lockout-failures', '3', '--login-lockout-max', '1.5', '--trusted-proxies', '127.0.0.1']);
  t.after(() => server.dispose());
  const { user } = await server.registerNew('lock');
  const attacker = from('203.0.113.66');
  const owner = from('198.51.100.7');
  const wrong = { email: user.email, password: 'wrong password guess' };
  const right = { email: user.email, password: user.password };
  for (let i = 0; i < 3; i++) assert.equal((await server.request('POST', '/auth/login', { json: wrong, headers: attacker })).status, 401);
  const locked = await server.request('POST', '/auth/login', { json: wrong, headers: attacker });
  assertLimited(locked, { maxRetryAfter: 2 });
  assert.match(locked.json.detail, /failed logins/);
  // The owner, from their own address, is not locked out at all.
  assert.equal((await server.request('POST', '/auth/login', { json: right, headers: owner })).status, 200);
  // The attacker hammers the account for 4 s, taking every try the moment it comes back: every
  // refusal says at most the maximum (1.5 s → 2), and they get one guess per 1.5 s.
  const end = Date.now() + 4000;
  let guesses = 0;
  while (Date.now() < end) {
    const res = await server.request('POST', '/auth/login', { json: wrong, headers: attacker });
    if (res.status === 401) guesses += 1;
    else assertLimited(res, { maxRetryAfter: 2 });
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(guesses >= 1 && guesses <= 4, `one guess per 1.5 s while locked, not ${guesses}`);
  // Someone behind the attacker's address (a shared NAT) is kept out no longer than the maximum:
  // polling from the first refusal, the right password gets in within 1.5 s (plus slack).
  const first = await server.request('POST', '/auth/login', { json: right, headers: attacker });
  const started = Date.now();
  if (first.status === 429) {
    assertLimited(first, { maxRetryAfter: 2 });
    const res = await untilAllowed(() => server.request('POST', '/auth/login', { json: right, headers: attacker }), 'the lockout lets a try through');
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started <= 1500 + 1000, `kept out ${Date.now() - started} ms`);
  } else {
    assert.equal(first.status, 200);
  }
  // The success reset the count: three free failures again before the lockout.
  for (let i = 0; i < 3; i++) assert.equal((await server.request('POST', '/auth/login', { json: wrong, headers: attacker })).status, 401);
  assertLimited(await server.request('POST', '/auth/login', { json: wrong, headers: attacker }), { maxRetryAfter: 2 });
});

test('Redis: two serve processes share one budget', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.dispose());
  const args = ['--redis-url', redis.url, '--rate-limit-register-ip', '4/600', '--trusted-proxies', '127.0.0.1'];
  const a = await limited(args, { env: SHARED_KEYS });
  t.after(() => a.dispose());
  const b = await limited(args, { env: SHARED_KEYS });
  t.after(() => b.dispose());
  assert.ok(a.logs.some((l) => l.msg === 'listening' && /^redis/.test(l.rateLimits)));
  const statuses = [];
  for (let i = 0; i < 5; i++) {
    statuses.push((await a.register(newUser('rd'), from('203.0.113.50'))).status);
    statuses.push((await b.register(newUser('rd'), from('203.0.113.50'))).status);
  }
  assert.deepEqual(statuses.filter((s) => s === 201).length, 4, `4 sign-ups in all: ${statuses}`);
  assert.deepEqual(statuses.slice(0, 4), [201, 201, 201, 201]);
  assert.ok(statuses.slice(4).every((s) => s === 429));
  // The keys: prefixed, keyed hashes (no address), with a TTL.
  const keys = (await redis.cli(['KEYS', 'registrar:rl:*'])).trim().split('\n').filter(Boolean);
  assert.equal(keys.length, 1, keys.join(','));
  assert.match(keys[0], /^registrar:rl:register:ip:[0-9a-f]{64}$/);
  const ttl = Number((await redis.cli(['PTTL', keys[0]])).trim());
  assert.ok(ttl > 0 && ttl <= 600_000, `PTTL ${ttl}`);
});

test('Redis stopped: local keeps limiting per process, closed answers 503, open lets requests through; all recover', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.dispose());
  const base = ['--redis-url', redis.url, '--rate-limit-register-ip', '2/600'];
  const local = await limited([...base, '--rate-limit-redis-down', 'local'], { env: SHARED_KEYS });
  t.after(() => local.dispose());
  const closed = await limited([...base, '--rate-limit-redis-down', 'closed'], { env: SHARED_KEYS });
  t.after(() => closed.dispose());
  const open = await limited([...base, '--rate-limit-redis-down', 'open'], { env: SHARED_KEYS });
  t.after(() => open.dispose());
  // Up: the one budget of 127.0.0.1 is spent.
  assert.equal((await local.register(newUser('rs'))).status, 201);
  assert.equal((await closed.register(newUser('rs'))).status, 201);
  assertLimited(await open.register(newUser('rs')));
  await redis.stop();
  // local: its own bucket (2) then 429.
  const localStatuses = [];
  for (let i = 0; i < 3; i++) localStatuses.push((await local.register(newUser('rs'))).status);
  assert.deepEqual(localStatuses, [201, 201, 429]);
  await local.waitForLog((l) => l.msg === 'rate limits: Redis unreachable' && l.policy === 'local', { what: 'outage line' });
  // closed: 503 with Retry-After, nothing applied.
  const refused = await closed.register(newUser('rs'));
  assertProblem(refused, 503, 'backend_unavailable');
  assert.ok(refused.headers['retry-after']);
  // open: not limited.
  for (let i = 0; i < 3; i++) assert.equal((await open.register(newUser('rs'))).status, 201);
  // Non-limited routes are untouched by the outage in every mode.
  assert.equal((await closed.request('GET', '/healthz')).status, 200);
  await redis.start();
  // Back: the shared budget decides again (a fresh Redis: full), for every policy.
  const back = await eventually(async () => {
    const res = await closed.register(newUser('rs'));
    return res.status === 201 ? res : false;
  }, { intervalMs: 50, what: 'closed serves again once Redis is back' });
  assert.equal(back.status, 201);
  assert.equal((await open.register(newUser('rs'))).status, 201);
  assertLimited(await local.register(newUser('rs')));
  await closed.waitForLog((l) => l.msg === 'rate limits: Redis reachable again; shared buckets in use', { what: 'recovery line' });
});

test('limits are settings: a malformed rate is refused at start with the flag and the variable named (exit 2)', () => {
  const { spawnSync } = require('node:child_process');
  const { BIN } = require('./harness');
  for (const [flag, value] of [['--rate-limit-login-ip', 'ten per minute'], ['--rate-limit-jobs-id', '5/0'],
    ['--login-lockout-max', '0'], ['--rate-limit-redis-down', 'maybe']]) {
    const res = spawnSync(BIN, ['migrate', flag, value], { encoding: 'utf8' });
    assert.equal(res.status, 2, `${flag} ${value}: ${res.stderr}`);
    assert.match(res.stderr, new RegExp(`invalid ${flag}.*REGISTRAR_${flag.slice(2).toUpperCase().replaceAll('-', '_')}`));
  }
});

// README "Safe retries" tells clients to retry a sign-up through an outage with its
// Idempotency-Key. The tries answered 503 give the email's and username's buckets back, so once
// the database is up the sign-up is served (a 201), not refused for its own retries (a 429).
test('a sign-up retried through a database outage is not refused by its own identifiers\' limit', async (t) => {
  const { MariaDb } = require('./harness');
  const db = await MariaDb.create();
  t.after(() => db.dispose());
  const server = await limited(['--rate-limit-register-id', '2/3600'], { db: 'mysql', mariadb: db });
  t.after(() => server.dispose());
  const user = newUser('outage');
  const key = { 'idempotency-key': `"${randomId()}"` };
  await db.stop();
  for (let i = 0; i < 4; i++) assert.equal((await server.register(user, key)).status, 503, `try ${i + 1} while the database is down`);
  await db.start();
  const res = await eventually(async () => {
    const r = await server.register(user, key);
    return r.status === 503 ? false : r;
  }, { intervalMs: 100, timeoutMs: 30_000, what: 'the database back' });
  assert.equal(res.status, 201, `after the outage: ${res.status} ${JSON.stringify(res.body)}`);
  // Without an outage the limit holds: the same identifiers again are refused after the burst.
  const again = await server.register({ ...newUser('outage2'), email: user.email });
  assert.ok([409, 429].includes(again.status), `the email's bucket still limits: ${again.status}`);
});
