// Unit tests of the pure token-bucket arithmetic (the Lua script runs the same cases in test/kv/redis-script.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { creditRule, creditWaitMs, takeToken, ruleFromConfig, type BucketState } from './bucket.js';
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

  test('a clock stepping backwards grants no tokens, and the bucket is dated at the new time', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = takeToken(state, rule, 10_000).state;
    const back = takeToken(state, rule, 4_000);
    assert.equal(back.result.allowed, false);
    assert.equal(back.state.tokens, 0);
    assert.equal(back.state.updatedMs, 4_000, 'the refill counts from the stepped clock, not from 10 s');
    assert.equal(takeToken(back.state, rule, 4_000 + back.result.retryAfterMs).result.allowed, true, 'Retry-After holds');
  });

  test('pure: the input state is not modified', () => {
    const first = takeToken(undefined, rule, 0).state;
    const copy = { ...first };
    takeToken(first, rule, 100);
    assert.deepEqual(first, copy);
  });
});

describe('creditRule + creditWaitMs: the login delay reserves its token', () => {
  const rule = { capacity: 2, refillPerSecond: 1 };
  const lending = creditRule(rule, 2500);

  test('the credit line is max_delay worth of refill on top of the burst', () => {
    assert.deepEqual(lending, { capacity: 4.5, refillPerSecond: 1 });
    const defaults = ruleFromConfig({ requests_per_minute: 10, burst_size: 10 });
    assert.ok(Math.abs(creditRule(defaults, 3000).capacity - 10.5) < 1e-9, '3 s at 10/min is half a token');
  });

  test('concurrent takers of an empty bucket are admitted one refill apart, the rest refused at once', () => {
    let state: BucketState | undefined;
    const waits: number[] = [];
    const refused: number[] = [];
    for (let i = 0; i < 8; i++) {
      const out = takeToken(state, lending, 0);
      state = out.state;
      if (out.result.allowed) waits.push(creditWaitMs(out.result, rule));
      else refused.push(out.result.retryAfterMs);
    }
    // Two from the burst at once, then the lent tokens as they would have refilled: 1 s, 2 s (3 s is past 2.5 s).
    assert.deepEqual(waits, [0, 0, 1000, 2000]);
    // Refused until the debt is short enough again: 0.5 s on, a take would wait 2.5 s, the most allowed.
    assert.deepEqual(refused, [500, 500, 500, 500]);
  });

  test('over random schedules a taker never waits past max_delay, and those who wait go one refill apart', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    let state: BucketState | undefined;
    let now = 0;
    let lastRelease = -Infinity;
    for (let i = 0; i < 10_000; i++) {
      now += Math.floor(random() * 700);
      const out = takeToken(state, lending, now);
      state = out.state;
      const wait = creditWaitMs(out.result, rule);
      assert.ok(wait <= 2500, `wait ${wait}`);
      if (wait > 0) {
        // The real bucket was in debt: this token refills 1 s after the one lent before it, never earlier.
        assert.ok(now + wait >= lastRelease + 1000 - 1, `released at ${now + wait}, previous at ${lastRelease}`);
        lastRelease = now + wait;
      }
    }
  });

  test('a refused take waits for nothing; a whole token left means no wait', () => {
    assert.equal(creditWaitMs({ allowed: false, remaining: 0, retryAfterMs: 500, resetMs: 4500 }, rule), 0);
    assert.equal(creditWaitMs(takeToken(undefined, lending, 0).result, rule), 0);
  });
});
