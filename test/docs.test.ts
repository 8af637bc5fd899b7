// The README's errors table covers every status the gateway can send (the catalogue lives in src/errors.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('every status in the error catalogue has a row in the README errors table', () => {
  const statuses = new Set(Object.values(ERROR_CODES).map((spec) => spec.status));
  statuses.delete(499); // never sent: only logged for a client that left
  for (const status of statuses) assert.match(readme, new RegExp(`^\\| ${status} \\|`, 'm'), `README lacks a ${status} row`);
});

test('every code in the error catalogue is named in its status row of the README errors table', () => {
  // A status row alone let a new code (gateway_resources_exhausted under 503) reach clients with no word on what it
  // means: the code is what a client's error body and the access log carry.
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    if (spec.status === 499) continue; // never sent: only logged
    const row = new RegExp(`^\\| ${spec.status} \\|([^|\\n]*)\\|`, 'm').exec(readme);
    assert.ok(row, `README lacks a ${spec.status} row`);
    assert.ok(row[1]!.includes(`\`${code.toLowerCase()}\``), `README's ${spec.status} row does not name \`${code.toLowerCase()}\``);
  }
});
