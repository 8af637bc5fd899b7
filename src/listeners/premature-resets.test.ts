import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREMATURE_RESET_MS, PREMATURE_RESET_STREAMS, PrematureResets } from './premature-resets.js';

/** Resets until refused, at most `max`: how many it took (Infinity: never refused). */
function resetsUntilRefused(counter: PrematureResets, ageMs: number, max: number): number {
  for (let i = 1; i <= max; i++) if (counter.reset(ageMs)) return i;
  return Infinity;
}

test('a fresh connection whose every stream is reset at once is refused at half the judged stream count', () => {
  assert.equal(resetsUntilRefused(new PrematureResets(), 0, 10_000), PREMATURE_RESET_STREAMS / 2);
});

test('resets of streams that lived their minimum never count, however many', () => {
  assert.equal(resetsUntilRefused(new PrematureResets(), PREMATURE_RESET_MS, 10_000), Infinity);
});

test('past the judged stream count, premature resets below half of the closed streams are tolerated', () => {
  const counter = new PrematureResets();
  // 3,000 streams, one in three reset early (a gRPC channel whose calls meet their deadlines behind a slow upstream).
  for (let i = 0; i < 3_000; i++) {
    if (i % 3 === 0) assert.equal(counter.reset(200), false, `stream ${i}`);
    counter.closed();
  }
  assert.deepEqual(counter.counts, { premature_resets: 1_000, streams_closed: 3_000 });
});

test('a connection whose premature resets reach half of its closed streams is refused then', () => {
  const counter = new PrematureResets();
  for (let i = 0; i < 1_000; i++) counter.closed();
  // 499 early resets on 1,000 closed streams: below half; the 500th reaches it.
  assert.equal(resetsUntilRefused(counter, 10, 499), Infinity);
  assert.equal(counter.reset(10), true);
});
