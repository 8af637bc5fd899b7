import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGenerationValue, parseTimeValue, refusesToken } from './subject-revocation.js';

test('a token with a generation: below the stored one refused, at or above it accepted, whatever the times', () => {
  const stored = { at: 1000, generation: 3, generationAt: 1000 };
  assert.equal(refusesToken(stored, 5000, 2), true);
  assert.equal(refusesToken(stored, 0, 3), false);
  assert.equal(refusesToken(stored, 1000, 3), false, 'a tie of times decides nothing');
});

test('a token without a generation: compared by time, a tie refused', () => {
  const stored = { at: 1000, generation: 3, generationAt: 1000 };
  assert.equal(refusesToken(stored, 1000, undefined), true);
  assert.equal(refusesToken(stored, 1001, undefined), false);
  assert.equal(refusesToken({}, 0, undefined), false);
});

test('a time written without a generation after one with it (an earlier version) refuses by time too', () => {
  assert.equal(refusesToken({ at: 2000, generation: 3, generationAt: 1000 }, 1500, 3), true);
  assert.equal(refusesToken({ at: 2000, generation: 3, generationAt: 1000 }, 2500, 3), false);
  assert.equal(refusesToken({ at: 2000 }, 1500, 0), true, 'no generation stored at all: time decides');
  assert.equal(refusesToken({ at: 2000 }, 2500, 0), false);
});

test('stored values that are not ours read as absent (the other rules then apply), never as a crash', () => {
  assert.deepEqual(parseGenerationValue('4:1733390000000'), { generation: 4, generationAt: 1733390000000 });
  for (const bad of [null, undefined, '', '4', 'x:1', '4:', ':5', '-1:5', '1e3:5', 42]) assert.deepEqual(parseGenerationValue(bad), {}, String(bad));
  assert.equal(parseTimeValue('1733390000000'), 1733390000000);
  assert.equal(parseTimeValue(null), undefined);
  assert.equal(parseTimeValue('garbage'), undefined);
});
