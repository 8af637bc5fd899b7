import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSize } from './size.js';

test('sizes: bytes, KB, MB, GB in powers of 1024; anything else is refused', () => {
  assert.equal(parseSize(0), 0);
  assert.equal(parseSize(1500), 1500);
  assert.equal(parseSize('512KB'), 512 * 1024);
  assert.equal(parseSize('10MB'), 10 * 1024 * 1024);
  assert.equal(parseSize('10m'), 10 * 1024 * 1024);
  assert.equal(parseSize('1GB'), 1024 ** 3);
  assert.equal(parseSize('1.5kb'), 1536);
  assert.equal(parseSize('12 B'), 12);
  for (const bad of ['', 'MB', '-1', '10TB', '1e3', 'ten']) assert.equal(parseSize(bad), undefined, bad);
  assert.equal(parseSize(-1), undefined);
  // A bare number reads as "<number>B" does (review16: the JSON Schema offered 0.5, the config refused it).
  assert.equal(parseSize(1.5), parseSize('1.5B'));
  assert.equal(parseSize(0.5), 1);
  assert.equal(parseSize(0.5), parseSize('0.5'));
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, String(2 ** 60), `${2 ** 60}B`, '99999999999GB']) assert.equal(parseSize(bad), undefined, String(bad));
});
