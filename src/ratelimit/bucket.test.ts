// Unit tests of the pure token-bucket arithmetic (the Lua script runs the same cases in test/kv/redis-script.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { takeToken, ruleFromConfig, type BucketState } from './bucket.js';
import { BUCKET_CASES } from './bucket-cases.js';

/** Same epoch base as the Lua test, so both sides do the same floating-point sums. */
const BASE_MS = 1_700_000_000_000;

describe('takeToken: shared cases', () => {
  for (const c of BUCKET_CASES) {
    test(c.name, () => {
      let state: BucketState | undefined;
      c.steps.forEach((step, i) => {
        const out = takeToken(state, c.rule, BASE_MS + step.atMs);
        state = out.state;
        const { allowed, remaining, retryAfterMs, resetMs } = out.result;
        assert.deepEqual({ allowed, remaining, retryAfterMs, resetMs }, {
          allowed: step.allowed,
          remaining: step.remaining,
          retryAfterMs: step.retryAfterMs,
          resetMs: step.resetMs,
        }, `step ${i} at +${step.atMs} ms`);
      });
    });
  }
});

describe('takeToken: properties', () => {
  const rule = ruleFromConfig({ requests_per_minute: 100, burst_size: 10 });

  test('config rule: burst is capacity, requests_per_minute / 60 is the refill per second', () => {
    assert.deepEqual(rule, { capacity: 10, refillPerSecond: 100 / 60 });
  });

  test('a new client starts full', () => {
    const { result } = takeToken(undefined, rule, 0);
    assert.equal(result.allowed, true);
    assert.equal(result.remaining, 9);
  });

  test('fractional refill accumulates: two half-token waits add up to one token', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = takeToken(state, rule, 0).state;
    const half = takeToken(state, rule, 300);
    assert.equal(half.result.allowed, false);
    const whole = takeToken(half.state, rule, 600);
    assert.equal(whole.result.allowed, true);
  });

  test('the state says when the bucket is full again (resetMs after the decision)', () => {
    const { state, result } = takeToken(undefined, rule, 1000);
    assert.equal(result.resetMs, 600);
    assert.equal(state.fullAtMs, 1600);
    // At fullAtMs the bucket is full again: the next take sees the same as a brand-new client.
    assert.deepEqual(takeToken(state, rule, state.fullAtMs).result, takeToken(undefined, rule, state.fullAtMs).result);
  });

  test('capacity is never exceeded: remaining stays below burst over random schedules', () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    let state: BucketState | undefined;
    let now = 0;
    for (let i = 0; i < 10_000; i++) {
      now += Math.floor(random() * 2000);
      const out = takeToken(state, rule, now);
      state = out.state;
      assert.ok(state.tokens <= rule.capacity && state.tokens >= 0, `tokens ${state.tokens}`);
      assert.ok(out.result.remaining <= rule.capacity - 1);
      assert.ok(out.result.resetMs <= 6000);
    }
  });

  test('a clock stepping backwards grants no tokens', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = takeToken(state, rule, 10_000).state;
    const back = takeToken(state, rule, 4_000);
    assert.equal(back.result.allowed, false);
    assert.equal(back.state.updatedMs, 10_000);
  });

  test('pure: the input state is not modified', () => {
    const first = takeToken(undefined, rule, 0).state;
    const copy = { ...first };
    takeToken(first, rule, 100);
    assert.deepEqual(first, copy);
  });
});
