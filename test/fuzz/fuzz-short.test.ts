// A short run of the fuzz harness (`npm run fuzz` is the long one): the gateway survives adversarial traffic and no
// forbidden header or non-canonical path reaches the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../fuzz/harness.js';
import { violationOf } from '../../fuzz/watch-backend.js';

test('the backend-side check catches what it must (so a clean fuzz run means something)', () => {
  assert.match(violationOf('/public/..;/admin', {}) ?? '', /non-canonical/);
  assert.match(violationOf('/x', { x_user_id: 'v' }) ?? '', /owned header/);
  assert.match(violationOf('/x', { 'x-real-ip': '1.2.3.4' }) ?? '', /owned header/);
  assert.match(violationOf('/x', { 'x-anything': 'FUZZSPOOF' }) ?? '', /client value/);
  assert.match(violationOf('/x', { 'x-forwarded-for': '6.6.6.6, 127.0.0.1' }) ?? '', /owned header/);
  assert.equal(violationOf('/x', { 'x-forwarded-for': '127.0.0.1', 'x-request-id': '0b6f4a0e-4a6d-4c3e-9f1a-2b3c4d5e6f70' }), undefined);
});

/**
 * The seed this short run replays (FUZZ_SEED picks another): the sequence of cases is the seed's, so a CI failure is
 * a change in the gateway, not a new draw. Exploring new sequences is `npm run fuzz`'s job, which draws its own.
 */
const SEED = Number(process.env.FUZZ_SEED ?? '889878069');

test('a few seconds of generated malformed and adversarial requests: alive, /health 200, memory back, no leaks upstream', async () => {
  const report = await runFuzz({ durationMs: 5_000, concurrency: 24, seed: SEED });
  assert.deepEqual(report.failures, [], `seed ${report.seed}: ${JSON.stringify(report.outcomes)}`);
  assert.ok(report.cases >= 50, `only ${report.cases} cases ran`);
  assert.ok(report.backendHits > 0, 'ordinary requests still reached the backend');
  assert.ok((report.outcomes['400'] ?? 0) > 0, 'malformed requests were refused');
});
