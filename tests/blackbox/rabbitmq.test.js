'use strict';
// Black-box tests of the RabbitMQ event path (issue 3): the real binary against a private broker.
//
//   REGISTRAR_BIN=build-lead/registrar node --test tests/blackbox/rabbitmq.test.js
//
// One private RabbitMQ node for the file (scripts/rabbitmq-private.sh), started in `before` and
// stopped in `after`; every test first deletes the queues it uses, so each starts from an empty
// topology. The tests wait on conditions (eventually / log lines), never on fixed sleeps, except
// the deliberate ≥ 30 s broker outage.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { Server, newUser, eventually, requireNode } = require('./harness');
const {
  amqp, Broker, QueueConsumer, RoleProcess, consumerQueues, deleteQueues, duplicates, freePort, queueDepth, readJsonLines, sleep,
} = require('./support/rabbitmq');

const NESTJS_QUEUE = 'topic_validateJSON';
const NESTJS_EXCHANGE = 'topic_validateJSON';
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let broker;

before(async () => {
  broker = await Broker.start();
});

after(async () => {
  if (broker) await broker.dispose();
});

async function resetTopology() {
  await deleteQueues(broker.url, [NESTJS_QUEUE, ...consumerQueues('audit'), ...consumerQueues('welcome')]);
}

const sortedKeys = (o) => Object.keys(o).sort();
const isSent = (l) => typeof l.msg === 'string' && l.msg.startsWith('User registration sent to RabbitMQ: ');

// The NestJS sign-up service's user.registered body for the user a 201 answered with.
function assertNestJsBody(body, user) {
  assert.deepEqual(sortedKeys(body), ['data', 'event', 'pattern', 'timestamp'], `body keys: ${JSON.stringify(body)}`);
  assert.equal(body.event, 'user.registered');
  assert.equal(body.pattern, 'user.registered');
  assert.deepEqual(sortedKeys(body.data), ['createdAt', 'email', 'id', 'username'], `data keys: ${JSON.stringify(body.data)}`);
  assert.deepEqual(body.data, { id: user.id, email: user.email, username: user.username, createdAt: user.createdAt });
  assert.match(body.data.createdAt, ISO_MS);
  assert.match(body.timestamp, ISO_MS);
}

function welcomeLines(server) {
  return readJsonLines(path.join(server.dataDir, 'messages.jsonl')).filter((m) => m.subject && /^Welcome/.test(m.subject));
}

function spoolFiles(server) {
  try {
    return fs.readdirSync(path.join(server.dataDir, 'spool', 'mail')).filter((f) => f.endsWith('.json'));
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
}

function pendingOutbox(server) {
  return server.sql('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')[0].n;
}

// `loops` concurrent loops registering fresh users until `shouldStop()` or `max` issued, each
// pausing `periodMs` after an answer. Returns { done, results } (results grow while running).
function registrationLoops(server, { loops = 4, max = 300, periodMs = 0, prefix = 'ld', shouldStop = () => false }) {
  const results = [];
  let issued = 0;
  const loop = async () => {
    while (!shouldStop() && issued < max) {
      issued += 1;
      const user = newUser(prefix);
      const t0 = Date.now();
      let status;
      let json;
      try {
        const res = await server.register(user);
        status = res.status;
        json = res.json;
      } catch (e) {
        status = `transport error: ${e.message}`;
      }
      results.push({ user, status, id: json && json.user && json.user.id, t0, t1: Date.now() });
      if (periodMs) await sleep(periodMs);
    }
  };
  const done = Promise.all(Array.from({ length: loops }, loop));
  return { done, results };
}

function assertAll201(results) {
  const bad = results.filter((r) => r.status !== 201).map((r) => ({ email: r.user.email, status: r.status }));
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${results.length} sign-ups were not answered 201`);
}

// ---------------------------------------------------------------------------------------------

test('register → audit, welcome and a plain amqplib consumer get user.registered in the NestJS sign-up service structure', async () => {
  await resetTopology();
  const nestjs = await QueueConsumer.start(broker.url, NESTJS_QUEUE);
  const server = await Server.start({ args: ['--amqp-url', broker.url, '--consumers', 'audit,welcome'] });
  try {
    const { res } = await server.registerNew('mq');
    const user = res.json.user;

    // audit: one line, the payload exactly the NestJS service's body
    const line = await eventually(() => server.auditLines().find((l) => l.payload && l.payload.data && l.payload.data.id === user.id),
      { timeoutMs: 20_000, what: 'the audit line of the new user' });
    assert.deepEqual(sortedKeys(line), ['eventId', 'occurredAt', 'payload', 'receivedAt', 'type']);
    assert.equal(line.type, 'user.registered');
    assert.match(line.eventId, /^[0-9a-f-]{36}$/);
    assert.match(line.occurredAt, ISO_MS);
    assert.match(line.receivedAt, ISO_MS);
    assertNestJsBody(line.payload, user);
    const eventId = line.eventId;

    // welcome: the message and its spool file (named by the event id)
    const welcome = await eventually(() => welcomeLines(server).find((m) => m.to === user.email),
      { timeoutMs: 20_000, what: 'the welcome message' });
    assert.equal(welcome.channel, 'email');
    assert.match(welcome.body, new RegExp(user.username));
    // The line is appended first and the spool file linked last (it marks the message sent).
    const spoolFile = path.join(server.dataDir, 'spool', 'mail', `${eventId}.json`);
    await eventually(() => fs.existsSync(spoolFile), { timeoutMs: 20_000, what: 'the welcome message\'s spool file' });
    const spool = JSON.parse(fs.readFileSync(spoolFile, 'utf8'));
    assert.equal(spool.to, user.email);
    assert.equal(spool.idempotencyKey, eventId);

    // the plain amqplib consumer of the NestJS service's queue: body and properties
    const msg = await eventually(() => nestjs.messages.find((m) => m.properties.messageId === eventId),
      { timeoutMs: 20_000, what: `a delivery with message_id ${eventId} on ${NESTJS_QUEUE}` });
    const body = JSON.parse(msg.body.toString('utf8'));
    assertNestJsBody(body, user);
    assert.deepEqual(body, line.payload);
    assert.equal(body.id, undefined, 'no top-level id (NestJS would take the body for a request)');
    assert.equal(msg.properties.messageId, eventId);
    assert.equal(msg.properties.contentType, 'application/json');
    assert.equal(msg.properties.deliveryMode, 2);
    assert.equal(msg.properties.type, 'user.registered');
    assert.equal(typeof msg.properties.timestamp, 'number');
    assert.ok(Math.abs(msg.properties.timestamp - Date.now() / 1000) < 120, `timestamp (s) ${msg.properties.timestamp}`);
    assert.equal(msg.fields.exchange, NESTJS_EXCHANGE);
    assert.equal(msg.fields.routingKey, 'topic_validateJSON');

    // the logs: the NestJS service's publish line, and one delivery to each built-in consumer
    await server.waitForLog((l) => l.msg === `User registration sent to RabbitMQ: ${user.email}` && l.eventId === eventId,
      { what: 'the "User registration sent to RabbitMQ" line' });
    for (const consumer of ['audit', 'welcome']) {
      await server.waitForLog((l) => l.msg === 'Received message' && l.consumer === consumer && l.eventId === eventId,
        { what: `"Received message" of ${consumer}` });
    }
    await server.stopCleanly();
  } finally {
    await nestjs.stop();
    await server.dispose();
  }
});

test('a NestJS @EventPattern("user.registered") consumer (Transport.RMQ, noAck false) receives the event data', async () => {
  await resetTopology();
  requireNode('reflect-metadata');
  const { NestFactory } = requireNode('@nestjs/core');
  const { Controller, Module } = requireNode('@nestjs/common');
  const { Transport, EventPattern, Payload, Ctx } = requireNode('@nestjs/microservices');

  const received = [];
  class UserEventsController {
    handler(data, context) {
      const message = context.getMessage();
      received.push({ data, pattern: context.getPattern(), properties: message.properties });
      context.getChannelRef().ack(message);
    }
  }
  // What TypeScript's `@EventPattern('user.registered') handler(@Payload() data, @Ctx() context)` does.
  const proto = UserEventsController.prototype;
  Payload()(proto, 'handler', 0);
  Ctx()(proto, 'handler', 1);
  EventPattern('user.registered')(proto, 'handler', Object.getOwnPropertyDescriptor(proto, 'handler'));
  Controller()(UserEventsController);
  class AppModule {}
  Module({ controllers: [UserEventsController] })(AppModule);

  const server = await Server.start({ args: ['--amqp-url', broker.url, '--consumers', 'audit'] });
  let app;
  try {
    app = await NestFactory.createMicroservice(AppModule, {
      transport: Transport.RMQ,
      options: {
        urls: [broker.url],
        queue: NESTJS_QUEUE,
        queueOptions: { durable: true }, // as registrar declares it (a mismatch closes the channel)
        noAck: false,
        prefetchCount: 16,
      },
      logger: false,
    });
    await app.listen();

    const { res } = await server.registerNew('nest');
    const user = res.json.user;
    const got = await eventually(() => received.find((r) => r.data && r.data.id === user.id),
      { timeoutMs: 20_000, what: 'the NestJS handler to receive the event' });
    assert.deepEqual(got.data, { id: user.id, email: user.email, username: user.username, createdAt: user.createdAt });
    assert.equal(got.pattern, 'user.registered');
    const line = await eventually(() => server.auditLines().find((l) => l.payload.data.id === user.id), { what: 'audit line' });
    assert.equal(got.properties.messageId, line.eventId);
    assert.equal(received.length, 1, `NestJS handled ${received.length} events`);
    await server.stopCleanly();
  } finally {
    if (app) await app.close();
    await server.dispose();
  }
});

test('broker outage ≥ 30 s under sign-ups: every sign-up 201, every event delivered once per consumer after', async (t) => {
  await resetTopology();
  const nestjs = await QueueConsumer.start(broker.url, NESTJS_QUEUE);
  const server = await Server.start({ args: ['--amqp-url', broker.url, '--consumers', 'audit,welcome'] });
  try {
    let stop = false;
    // No cap on the count: the loops run until the 20 sign-ups after the restart, however long the
    // broker takes to start (a cap of 300 ran out before it was back on a busy machine).
    const load = registrationLoops(server, { loops: 4, max: Infinity, periodMs: 700, prefix: 'out', shouldStop: () => stop });
    let downAt;
    let upAt;
    try {
      await eventually(() => load.results.length >= 20, { timeoutMs: 30_000, what: '20 sign-ups before the outage' });
      await broker.stop();
      downAt = Date.now();
      await sleep(30_000); // the deliberate outage
      await broker.start();
      upAt = Date.now();
      await eventually(() => load.results.filter((r) => r.t0 > upAt).length >= 20,
        { timeoutMs: 30_000, what: '20 sign-ups after the broker came back' });
    } finally {
      stop = true;
      await load.done;
    }
    const results = load.results;
    assertAll201(results);
    const during = results.filter((r) => r.t0 >= downAt && r.t1 <= upAt).length;
    t.diagnostic(`${results.length} sign-ups, ${during} of them while the broker was down (${Math.round((upAt - downAt) / 1000)} s, restart took ${broker.lastStartMs} ms)`);
    assert.ok(during >= 50, `only ${during} sign-ups happened during the outage`);

    const ids = new Set(results.map((r) => r.id));
    assert.equal(ids.size, results.length);
    const t0 = Date.now();
    await eventually(() => {
      const audited = new Set(server.auditLines().map((l) => l.payload && l.payload.data && l.payload.data.id));
      const welcomed = new Set(welcomeLines(server).map((m) => m.to));
      return [...ids].every((id) => audited.has(id))
        && results.every((r) => welcomed.has(r.user.email))
        && nestjs.messageIds().size >= ids.size
        && pendingOutbox(server) === 0;
    }, { timeoutMs: 120_000, intervalMs: 250, what: 'every event at audit, welcome and the NestJS queue after the outage' });
    t.diagnostic(`all delivered ${Date.now() - upAt} ms after the broker was back (${Date.now() - t0} ms after the sign-ups ended)`);

    // Stop the consumers (what is still in flight goes back to the queue), then count effects.
    await server.stopCleanly();
    const audit = server.auditLines();
    assert.equal(audit.filter((l) => l.torn).length, 0, 'no torn audit line');
    assert.deepEqual(duplicates(audit.map((l) => l.eventId)), [], 'an event was audited twice');
    assert.deepEqual(duplicates(audit.map((l) => l.payload.data.id)), [], 'a user was audited twice');
    assert.equal(audit.length, results.length, 'audit lines = sign-ups');
    const auditIds = new Set(audit.map((l) => l.eventId));
    const outboxIds = new Set(server.sql('SELECT event_id FROM outbox').map((r) => r.event_id));
    assert.deepEqual([...auditIds].sort(), [...outboxIds].sort(), 'audited events = outbox events');

    const welcome = welcomeLines(server);
    assert.deepEqual(duplicates(welcome.map((m) => m.to)), [], 'a welcome message was sent twice');
    assert.equal(welcome.length, results.length, 'welcome messages = sign-ups');
    assert.equal(spoolFiles(server).length, results.length, 'spool files = sign-ups');

    // the plain consumer: count in = count out (deduplicated by message_id)
    const nestjsIds = nestjs.messageIds();
    assert.deepEqual([...nestjsIds].sort(), [...auditIds].sort(), 'NestJS-queue message ids = audited event ids');
    const deliveries = server.logs.filter((l) => l.msg === 'Received message');
    t.diagnostic(`NestJS queue: ${nestjs.messages.length} deliveries for ${nestjsIds.size} events (${nestjs.connections} connections); `
      + `built-in consumers: ${deliveries.length} deliveries for ${2 * results.length} effects`);
  } finally {
    await nestjs.stop();
    await server.dispose();
  }
});

test('relay killed -9 mid-batch under sign-ups: every event delivered, audited exactly once', async (t) => {
  await resetTopology();
  // serve accepts sign-ups; its own relay points at a closed port, so only `registrar relay` publishes.
  const closedPort = await freePort();
  const server = await Server.start({ args: ['--amqp-url', `amqp://guest:guest@127.0.0.1:${closedPort}/`, '--consumers', ''] });
  const common = ['--data-dir', server.dataDir, '--amqp-url', broker.url];
  const procs = [];
  const nestjs = await QueueConsumer.start(broker.url, NESTJS_QUEUE);
  try {
    const audit = RoleProcess.start(['consume', 'audit', ...common], { name: 'consume audit' });
    procs.push(audit);
    await audit.waitForLog((l) => l.msg === 'consuming from RabbitMQ', { what: 'the audit consumer to consume' });

    // A backlog, then more sign-ups while relays run and are killed.
    const backlogs = [];
    const fillBacklog = async () => {
      const b = registrationLoops(server, { loops: 8, max: 600, prefix: 'bk' });
      await b.done;
      backlogs.push(b);
    };
    await fillBacklog();
    let stop = false;
    const load = registrationLoops(server, { loops: 4, max: 400, periodMs: 5, prefix: 'rk', shouldStop: () => stop });

    // kill -9 a relay as soon as it has confirmed its first publishes; until a kill lands while
    // the relay holds a batch (rows it claimed and has not marked sent), try again with a new one.
    let killedAt;
    let leased = 0;
    for (let attempt = 1; attempt <= 5 && leased === 0; attempt++) {
      if (attempt > 1) await fillBacklog();
      const relay = RoleProcess.start(['relay', ...common], { name: `relay ${attempt}` });
      procs.push(relay);
      await relay.waitForLog(isSent, { timeoutMs: 30_000, what: 'a confirmed publish' });
      await relay.kill9();
      killedAt = Date.now();
      // The lease owner of a relay names its pid (relay-<pid>-<random>).
      const held = server.sql(`SELECT count(*) AS n, min(claimed_until) AS until FROM outbox WHERE sent_at IS NULL AND claimed_by LIKE 'relay-${relay.pid}-%' AND claimed_until > ${killedAt}`)[0];
      leased = held.n;
      t.diagnostic(`relay ${attempt} killed after logging ${relay.logs.filter(isSent).length} confirmed publishes; ${leased} unsent rows still leased to it`
        + (leased ? ` (lease ends ${held.until - killedAt} ms after the kill)` : ''));
    }
    assert.ok(leased > 0, 'no kill landed while a relay held a batch');

    const relay2 = RoleProcess.start(['relay', ...common], { name: 'relay after the kill' });
    procs.push(relay2);
    try {
      await eventually(() => load.results.length >= 100, { timeoutMs: 30_000, what: 'sign-ups after the kill' });
    } finally {
      stop = true;
      await load.done;
    }
    const results = backlogs.flatMap((b) => b.results).concat(load.results);
    assertAll201(results);
    const ids = new Set(results.map((r) => r.id));
    await eventually(() => {
      if (pendingOutbox(server) !== 0) return false;
      const audited = new Set(server.auditLines().map((l) => l.payload && l.payload.data && l.payload.data.id));
      return [...ids].every((id) => audited.has(id));
    }, { timeoutMs: 90_000, intervalMs: 250, what: 'every event relayed and audited after the relay was killed' });
    t.diagnostic(`all relayed and audited ${Date.now() - killedAt} ms after the kill (the rows held by the dead relay wait for its lease to end)`);

    assert.deepEqual(await relay2.stop(), { code: 0, signal: null }, `relay exit; log tail:\n${relay2.logText().slice(-2000)}`);
    assert.deepEqual(await audit.stop(), { code: 0, signal: null }, `consume audit exit; log tail:\n${audit.logText().slice(-2000)}`);
    const auditLines = server.auditLines();
    assert.equal(auditLines.filter((l) => l.torn).length, 0);
    assert.deepEqual(duplicates(auditLines.map((l) => l.eventId)), [], 'an event was audited twice');
    assert.equal(auditLines.length, results.length, 'audit lines = sign-ups');
    const outboxIds = server.sql('SELECT event_id FROM outbox').map((r) => r.event_id).sort();
    assert.deepEqual(auditLines.map((l) => l.eventId).sort(), outboxIds, 'audited events = outbox events');
    await eventually(() => nestjs.messageIds().size >= outboxIds.length, { timeoutMs: 20_000, what: 'the NestJS queue to have every event' });
    assert.deepEqual([...nestjs.messageIds()].sort(), outboxIds, 'NestJS-queue message ids = outbox events');
    const deliveries = audit.logs.filter((l) => l.msg === 'Received message').length;
    t.diagnostic(`${results.length} events; broker deliveries: NestJS queue ${nestjs.messages.length}, audit consumer ${deliveries} `
      + `(${duplicates(nestjs.messages.map((m) => m.properties.messageId)).length} events published twice: confirmed before a kill, not yet marked sent)`);
    await server.stopCleanly();
  } finally {
    for (const p of procs) await p.kill9();
    await nestjs.stop();
    await server.dispose();
  }
});

test('poison messages land in registrar.audit.dlq after 3 attempts while valid events keep flowing', async (t) => {
  await resetTopology();
  const server = await Server.start({ args: ['--amqp-url', broker.url, '--consumers', ''] });
  const audit = RoleProcess.start(['consume', 'audit', '--data-dir', server.dataDir, '--amqp-url', broker.url, '--consumer-max-attempts', '3'],
    { name: 'consume audit' });
  const conn = await amqp.connect(broker.url);
  conn.on('error', () => {});
  try {
    await audit.waitForLog((l) => l.msg === 'consuming from RabbitMQ', { what: 'the audit consumer to consume' });
    const ch = await conn.createConfirmChannel();
    const poison = [
      { body: Buffer.from('this is not JSON'), messageId: `poison-text-${Date.now()}` },
      { body: Buffer.from('{"event":"user.registered","data":'), messageId: `poison-truncated-${Date.now()}` },
      { body: Buffer.from('[1,2,3]'), messageId: `poison-array-${Date.now()}` },
      { body: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]), messageId: `poison-binary-${Date.now()}` },
      { body: Buffer.from('{"hello":"no event type"}'), messageId: undefined }, // no message_id either
    ];
    const users = [];
    for (let i = 0; i < 12; i++) {
      users.push((await server.registerNew('ok')).res.json.user);
      if (i % 2 === 0 && poison[i / 2]) {
        const p = poison[i / 2];
        ch.publish(NESTJS_EXCHANGE, 'topic_validateJSON', p.body, { persistent: true, contentType: 'application/json', messageId: p.messageId });
        await ch.waitForConfirms();
      }
    }
    for (let i = 0; i < 8; i++) users.push((await server.registerNew('ok')).res.json.user);

    const ids = new Set(users.map((u) => u.id));
    await eventually(() => {
      const audited = new Set(server.auditLines().map((l) => l.payload && l.payload.data && l.payload.data.id));
      return [...ids].every((id) => audited.has(id));
    }, { timeoutMs: 30_000, what: 'every valid event at the audit consumer' });
    const dlqDepthWhenValidDone = await queueDepth(broker.url, 'registrar.audit.dlq');
    await eventually(async () => (await queueDepth(broker.url, 'registrar.audit.dlq')) === poison.length,
      { timeoutMs: 30_000, intervalMs: 200, what: `${poison.length} messages in registrar.audit.dlq` });
    t.diagnostic(`every valid event audited while ${poison.length - dlqDepthWhenValidDone} poison message(s) were still being retried`);

    // The dead letters: the original bodies, after 3 attempts each.
    const dead = [];
    for (;;) {
      const m = await ch.get('registrar.audit.dlq', { noAck: true });
      if (!m) break;
      dead.push(m);
    }
    assert.equal(dead.length, poison.length);
    assert.deepEqual(dead.map((m) => m.content.toString('hex')).sort(), poison.map((p) => p.body.toString('hex')).sort());
    for (const m of dead) {
      assert.equal(Number(m.properties.headers['x-attempts']), 3, `x-attempts of ${m.properties.messageId}`);
      assert.ok(m.properties.headers['x-last-error'], 'x-last-error set');
    }
    for (const p of poison.filter((x) => x.messageId)) {
      const n = audit.logs.filter((l) => l.msg === 'Received message' && l.eventId === p.messageId).length;
      assert.equal(n, 3, `deliveries of ${p.messageId}`);
    }
    assert.equal(await queueDepth(broker.url, 'registrar.audit'), 0);

    const lines = server.auditLines();
    assert.equal(lines.length, users.length, 'only the valid events are audited');
    assert.deepEqual(duplicates(lines.map((l) => l.eventId)), []);
    assert.deepEqual(await audit.stop(), { code: 0, signal: null }, `consume audit exit; log tail:\n${audit.logText().slice(-2000)}`);
    await server.stopCleanly();
  } finally {
    await conn.close().catch(() => {});
    await audit.kill9();
    await server.dispose();
  }
});
