'use strict';
// The core black-box suite again, on the MySQL backend (a private MariaDB): so that a plain
// `node --test tests/blackbox/` covers both backends in one run.
//
// Each core file runs in its own `node --test` child with REGISTRAR_TEST_DB=mysql, where the
// harness starts one private MariaDB for the process and gives every Server a fresh database.
// This file does nothing when REGISTRAR_TEST_DB is set: `mysql` means the run is already on MySQL
// (so the core files run directly), `sqlite` asks for the embedded backend only.
//
//   node --test tests/blackbox/                                    both backends
//   REGISTRAR_TEST_DB=mysql node --test tests/blackbox/{api,validation,tokens,robustness,crash}.test.js
//   REGISTRAR_TEST_DB=sqlite node --test tests/blackbox/           SQLite only

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { scaled } = require('./harness');
const path = require('node:path');

const CORE_FILES = ['api', 'validation', 'tokens', 'robustness', 'crash'].map((n) => `${n}.test.js`);
const FILE_TIMEOUT_MS = scaled(180_000);

function runOnMysql(file) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, REGISTRAR_TEST_DB: 'mysql' };
    // Set by the test runner for its children; a nested `node --test` must not see it, or it
    // would report to a parent runner instead of running as one.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', path.join(__dirname, file)], {
      env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    const timer = setTimeout(() => child.kill('SIGTERM'), FILE_TIMEOUT_MS); // the harness cleans up on SIGTERM
    child.on('error', reject);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out }); });
  });
}

// The TAP summary counters (# tests N, # pass N, …) of a finished run.
function summary(out) {
  const counts = {};
  for (const m of out.matchAll(/^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

const selected = process.env.REGISTRAR_TEST_DB;

describe('core black-box suite on MySQL (MariaDB)', { skip: selected ? `REGISTRAR_TEST_DB=${selected}` : false }, () => {
  for (const file of CORE_FILES) {
    it(file, { timeout: FILE_TIMEOUT_MS + 10_000 }, async (t) => {
      const started = Date.now();
      const { code, signal, out } = await runOnMysql(file);
      const counts = summary(out);
      t.diagnostic(`${counts.pass ?? '?'}/${counts.tests ?? '?'} passed on MySQL in ${Date.now() - started} ms`);
      assert.ok(code === 0 && counts.fail === 0 && counts.tests > 0,
        `${file} on MySQL: exit code ${code}, signal ${signal}, ${JSON.stringify(counts)}\n--- its output ---\n${out.slice(-12_000)}`);
    });
  }
});
