'use strict';
// Verification sessions for the Create_User tests: a new phone, a session from
// POST /auth/verification-codes, and its code from the development sender's messages.jsonl.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { eventually } = require('../harness');

function newPhone() {
  return `+3361${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
}

// The code the development sender wrote for a session (messages.jsonl, channel sms).
async function codeFor(server, session) {
  const file = path.join(server.dataDir, 'messages.jsonl');
  const line = await eventually(() => {
    if (!fs.existsSync(file)) return null;
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .find((m) => m.session === session) || null;
  }, { what: `the code of session ${session}` });
  return line.code;
}

// {id, token, tokenType, expiresIn, code} of a new session for `phone`.
async function verificationSession(server, phone) {
  const res = await server.request('POST', '/auth/verification-codes', { json: { phone } });
  assert.equal(res.status, 201, res.text);
  return { ...res.json, code: await codeFor(server, res.json.id) };
}

module.exports = { newPhone, codeFor, verificationSession };
