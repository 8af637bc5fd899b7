// Review 2 (rate limit): the token refund the login throttle uses (a login refused by its per-email bucket gives back
// its per-email + address token) must decide the same on both stores. The pure arithmetic (refundToken, which the
// memory store runs) and the Redis store's Lua refund script, interleaved with takes, on the same pinned clock; and the
// memory store itself, with its clock injected.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@redis/client';
import { REFUND_SCRIPT, TAKE_SCRIPT } from '../../src/kv/redis-script.js';
import { MemoryKvStore } from '../../src/kv/memory.js';
import { refundToken, takeToken, type BucketState } from '../../src/ratelimit/bucket.js';
import type { BucketRule } from '../../src/kv/kv-store.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';

const skip = await requireRedis();
const BASE_SECONDS = 1_700_000_000;
const CLOCK_LINE = "local clock = redis.call('TIME')";
const PINNED_TAKE = TAKE_SCRIPT.replace(CLOCK_LINE, 'local clock = {ARGV[5], ARGV[6]}');
const PINNED_REFUND = REFUND_SCRIPT.replace(CLOCK_LINE, 'local clock = {ARGV[3], ARGV[4]}');

type Step = { readonly op: 'take' | 'refund'; readonly atMs: number };

const RULE: BucketRule = { capacity: 2, refillPerSecond: 1 };
/** Takes and refunds, a clock step back included; the last take of each block shows what the refunds left. */
const STEPS: readonly Step[] = [
  { op: 'take', atMs: 0 },
  { op: 'take', atMs: 0 },
  { op: 'take', atMs: 0 }, // refused: empty
  { op: 'refund', atMs: 500 }, // 0.5 refilled + 1
  { op: 'take', atMs: 500 },
  { op: 'take', atMs: 500 }, // refused: 0.5 left
  { op: 'refund', atMs: 600 },
  { op: 'refund', atMs: 700 }, // capped at capacity: the bucket is full again
  { op: 'take', atMs: 700 },
  { op: 'take', atMs: 5000 },
  { op: 'take', atMs: 5000 },
  { op: 'refund', atMs: 4000 }, // the clock stepped back: one token, dated now
  { op: 'take', atMs: 4000 },
  { op: 'take', atMs: 4000 }, // refused
  { op: 'refund', atMs: 4000 },
  { op: 'refund', atMs: 4000 },
  { op: 'refund', atMs: 4000 }, // never above capacity
  { op: 'take', atMs: 4000 },
  { op: 'take', atMs: 4000 },
  { op: 'take', atMs: 4000 }, // refused: the refunds gave back two tokens, not three
];

/** The takes' decisions under the pure arithmetic. */
function expected(): object[] {
  let state: BucketState | undefined;
  const out: object[] = [];
  for (const step of STEPS) {
    const now = BASE_SECONDS * 1000 + step.atMs;
    if (step.op === 'refund') {
      state = refundToken(state, RULE, now);
      continue;
    }
    const taken = takeToken(state, RULE, now);
    state = taken.result.resetMs === 0 ? undefined : taken.state;
    out.push({ ...taken.result });
  }
  return out;
}

describe('token refunds: memory store and Redis script decide as the pure arithmetic', () => {
  test('the scenario itself: refunds give back what the takes spent, never above capacity', () => {
    const allowed = expected().map((r) => (r as { allowed: boolean }).allowed);
    assert.deepEqual(allowed, [true, true, false, true, false, true, true, true, true, false, true, true, false]);
  });

  test('memory store (clock injected)', () => {
    let now = BASE_SECONDS * 1000;
    const store = new MemoryKvStore({ now: () => now });
    const out: object[] = [];
    for (const step of STEPS) {
      now = BASE_SECONDS * 1000 + step.atMs;
      if (step.op === 'refund') store.refund('k', RULE);
      else out.push({ ...store.take('k', RULE) });
    }
    void store.close();
    assert.deepEqual(out, expected());
  });

  describe('Redis refund script (clock pinned)', { skip }, () => {
    const client = createClient({ url: REDIS_URL });
    const key = `${uniquePrefix('review2-refund')}bucket`;
    before(async () => {
      assert.ok(TAKE_SCRIPT.includes(CLOCK_LINE) && REFUND_SCRIPT.includes(CLOCK_LINE), 'both scripts read TIME');
      await client.connect();
    });
    after(async () => {
      await client.del(key);
      await client.close();
    });

    test('same decisions, and a refund of an absent bucket creates none', async () => {
      const out: object[] = [];
      for (const step of STEPS) {
        const ms = BASE_SECONDS * 1000 + step.atMs;
        const clock = [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)];
        const rule = [String(RULE.capacity), String(RULE.refillPerSecond)];
        if (step.op === 'refund') {
          await client.sendCommand(['EVAL', PINNED_REFUND, '1', key, ...rule, ...clock]);
          continue;
        }
        const [allowed, remaining, retryAfterMs, resetMs] = (await client.sendCommand(['EVAL', PINNED_TAKE, '1', key, ...rule, '0', '0', ...clock])) as number[];
        out.push({ allowed: allowed === 1, remaining, retryAfterMs, resetMs });
      }
      assert.deepEqual(out, expected());
      await client.del(key);
      assert.equal(await client.sendCommand(['EVAL', REFUND_SCRIPT, '1', key, '2', '1']), 0);
      assert.equal(await client.exists(key), 0);
    });
  });
});
