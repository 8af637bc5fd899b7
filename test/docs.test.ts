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
