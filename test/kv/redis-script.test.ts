// The Lua token-bucket script against the same cases as the pure arithmetic, with Redis's clock pinned per step.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@redis/client';
import { TAKE_SCRIPT } from '../../src/kv/redis-script.js';
import { BUCKET_CASES } from '../../src/ratelimit/bucket-cases.js';
import { REDIS_URL, requireRedis, uniquePrefix } from './redis-helpers.js';

const skip = await requireRedis();

/** Same epoch base as bucket.test.ts, so both sides do the same floating-point sums. */
const BASE_SECONDS = 1_700_000_000;
const CLOCK_LINE = "local clock = redis.call('TIME')";
// Only the clock source changes: TIME becomes {seconds, microseconds} passed in ARGV[5], ARGV[6] (ARGV[3] is the
// deadline, ARGV[4] the look flag).
const PINNED_SCRIPT = TAKE_SCRIPT.replace(CLOCK_LINE, 'local clock = {ARGV[5], ARGV[6]}');

describe('Lua take script: shared bucket cases', { skip }, () => {
  const client = createClient({ url: REDIS_URL });
  const prefix = uniquePrefix('lua');

  before(async () => {
    assert.ok(TAKE_SCRIPT.includes(CLOCK_LINE), 'the script reads the clock with TIME');
    await client.connect();
  });
  after(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  for (const [index, c] of BUCKET_CASES.entries()) {
    test(c.name, async () => {
      const key = `${prefix}${index}`;
      for (const [i, step] of c.steps.entries()) {
        const seconds = BASE_SECONDS + Math.floor(step.atMs / 1000);
        const micros = (step.atMs % 1000) * 1000;
        const reply = (await client.sendCommand([
          'EVAL', PINNED_SCRIPT, '1', key, String(c.rule.capacity), String(c.rule.refillPerSecond), '0', '0', String(seconds), String(micros),
        ])) as number[];
        const [allowed, remaining, retryAfterMs, resetMs] = reply;
        assert.deepEqual(
          { allowed: allowed === 1, remaining, retryAfterMs, resetMs },
          { allowed: step.allowed, remaining: step.remaining, retryAfterMs: step.retryAfterMs, resetMs: step.resetMs },
          `step ${i} at +${step.atMs} ms`,
        );
      }
    });
  }
});

describe('Lua take script: the deadline', { skip }, () => {
  const client = createClient({ url: REDIS_URL });
  const prefix = uniquePrefix('lua-deadline');
  const nowMs = BASE_SECONDS * 1000 + 500;
  const take = async (key: string, deadline: string): Promise<number[]> =>
    (await client.sendCommand([
      'EVAL', PINNED_SCRIPT, '1', key, '5', '1', deadline, '0', String(Math.floor(nowMs / 1000)), String((nowMs % 1000) * 1000),
    ])) as number[];

  before(() => client.connect());
  after(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  test('run after its deadline: -1 and the bucket untouched; at or before it: decided as usual', async () => {
    const key = `${prefix}a`;
    assert.deepEqual(await take(key, String(nowMs - 1)), [-1, 0, 0, 0, nowMs]);
    assert.equal(await client.exists(key), 0, 'a late take writes nothing');
    assert.deepEqual(await take(key, String(nowMs)), [1, 4, 0, 1000, nowMs]);
    assert.deepEqual(await take(key, String(nowMs - 1000)), [-1, 0, 0, 0, nowMs]);
    assert.deepEqual(await take(key, '0'), [1, 3, 0, 2000, nowMs], 'a late take in between spent nothing');
  });
});
