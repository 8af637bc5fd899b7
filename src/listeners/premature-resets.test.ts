import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PREMATURE_RESET_BURST,
  PREMATURE_RESET_MS,
  PREMATURE_RESET_STREAMS,
  PREMATURE_RESETS_PER_SECOND,
  PrematureResets,
} from './premature-resets.js';

/** Resets (each after `cheap` streams that closed on their own) until refused, at most `max`: how many it took. */
function resetsUntilRefused(counter: PrematureResets, ageMs: number, max: number, cheap = 0, everyMs = 0): number {
  for (let i = 1; i <= max; i++) {
    for (let c = 0; c < cheap; c++) counter.closed();
    if (counter.reset(ageMs, i * everyMs)) return i;
  }
  return Infinity;
}

test('a fresh connection whose every stream is reset at once is refused at half the judged stream count', () => {
  const counter = new PrematureResets();
  assert.equal(resetsUntilRefused(counter, 0, 10_000), PREMATURE_RESET_STREAMS / 2);
  assert.deepEqual(counter.counts, { premature_resets: 250, streams_closed: 250 });
});

test('resets of streams that lived their minimum never count, however many', () => {
  assert.equal(resetsUntilRefused(new PrematureResets(), PREMATURE_RESET_MS, 10_000), Infinity);
});

test('past the judged stream count, premature resets below half of the closed streams are tolerated', () => {
  const counter = new PrematureResets();
  // 3,000 streams over 60 s, one in three reset early (a gRPC channel whose calls meet their deadlines).
  for (let i = 0; i < 3_000; i++) {
    if (i % 3 === 0) assert.equal(counter.reset(200, i * 20), false, `stream ${i}`);
    else counter.closed();
  }
  assert.deepEqual(counter.counts, { premature_resets: 1_000, streams_closed: 3_000 });
});

test('a connection whose premature resets reach half of its closed streams is refused then', () => {
  const counter = new PrematureResets();
  for (let i = 0; i < 1_000; i++) counter.closed();
  // 1,000 closed, then resets 20 ms apart (within the bucket: 500 of it spent, 300 refilled), each closing its
  // stream: the k-th refuses once 2k >= 1,000 + k.
  assert.equal(resetsUntilRefused(counter, 10, 2_000, 0, 20), 1_000);
});

test('two cheap streams per reset keep the share under half, but not past the burst', () => {
  // A thousand a second: the burst and what refills meanwhile (about 30 a second), then refused.
  const took = resetsUntilRefused(new PrematureResets(), 10, 100_000, 2, 1);
  assert.ok(took > PREMATURE_RESET_BURST && took <= PREMATURE_RESET_BURST + 40, String(took));
});

test('no more than the burst passes at once, across any moment (a bucket has no window edge)', () => {
  const counter = new PrematureResets();
  // 800 over 9.99 s, then a rush: at most 900 - 800 + the 300 refilled in those 10 s (less what they spent) pass.
  for (let i = 0; i < 800; i++) {
    for (let c = 0; c < 2; c++) counter.closed();
    assert.equal(counter.reset(10, (i * 9_990) / 800), false);
  }
  let rushed = 0;
  while (!counter.reset(10, 10_000)) {
    for (let c = 0; c < 2; c++) counter.closed();
    rushed++;
  }
  assert.ok(rushed <= PREMATURE_RESET_BURST - 800 + 300, String(rushed));
});

test('an honest pace under the refill goes on for good', () => {
  // 25 premature resets a second, with twice as many streams answered.
  assert.ok(PREMATURE_RESETS_PER_SECOND >= 25);
  assert.equal(resetsUntilRefused(new PrematureResets(), 10, 20_000, 2, 1_000 / 25), Infinity);
});
