// Shared token-bucket scenarios: run against the pure arithmetic and, with a pinned clock, against the Lua script.
import type { BucketRule } from '../kv/kv-store.js';

/** One take at `atMs` (relative to the first take) and the decision expected from it. */
export interface BucketCaseStep {
  readonly atMs: number;
  readonly allowed: boolean;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
}

export interface BucketCase {
  readonly name: string;
  readonly rule: BucketRule;
  readonly steps: readonly BucketCaseStep[];
}

const spec: BucketRule = { capacity: 10, refillPerSecond: 100 / 60 };

function burst(atMs: number, count: number, startRemaining: number): BucketCaseStep[] {
  const steps: BucketCaseStep[] = [];
  for (let i = 0; i < count; i++) {
    const remaining = startRemaining - 1 - i;
    steps.push({ atMs, allowed: true, remaining, retryAfterMs: 0, resetMs: Math.ceil(((10 - remaining) * 1000) / (100 / 60)) });
  }
  return steps;
}

/**
 * The cases both implementations must agree on. Times are exact expectations of the arithmetic (ms, rounded up);
 * 0.6 s is the time one token takes at 100/min.
 */
export const BUCKET_CASES: readonly BucketCase[] = [
  {
    name: '100/min burst 10: 15 rapid requests give 10 passes and 5 rejections',
    rule: spec,
    steps: [
      ...burst(0, 10, 10),
      ...Array.from({ length: 5 }, () => ({ atMs: 0, allowed: false, remaining: 0, retryAfterMs: 600, resetMs: 6000 })),
    ],
  },
  {
    name: 'after draining, 0.6 s refills exactly one token (fractional refill), 6 s refills the whole burst',
    rule: spec,
    steps: [
      ...burst(0, 10, 10),
      { atMs: 300, allowed: false, remaining: 0, retryAfterMs: 300, resetMs: 5700 },
      { atMs: 600, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 6000 },
      { atMs: 600, allowed: false, remaining: 0, retryAfterMs: 600, resetMs: 6000 },
      ...burst(6600, 10, 10),
      { atMs: 6600, allowed: false, remaining: 0, retryAfterMs: 600, resetMs: 6000 },
    ],
  },
  {
    name: 'capacity is never exceeded however long the client was idle',
    rule: { capacity: 3, refillPerSecond: 1 },
    steps: [
      { atMs: 0, allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 1000 },
      { atMs: 3_600_000, allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 1000 },
      { atMs: 3_600_000, allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 2000 },
      { atMs: 3_600_000, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 3000 },
      { atMs: 3_600_000, allowed: false, remaining: 0, retryAfterMs: 1000, resetMs: 3000 },
    ],
  },
  {
    name: 'a slow rule: retry-after and reset are rounded up to whole ms',
    rule: { capacity: 1, refillPerSecond: 20 / 60 },
    steps: [
      { atMs: 0, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 3000 },
      { atMs: 1, allowed: false, remaining: 0, retryAfterMs: 2999, resetMs: 2999 },
      { atMs: 2999, allowed: false, remaining: 0, retryAfterMs: 1, resetMs: 1 },
      { atMs: 3000, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 3000 },
    ],
  },
  {
    // The store's clock stepped back an hour (Redis's TIME after an NTP step, or a failover to a replica whose clock
    // is behind) right after the client drained its bucket: nothing is granted, and the refill counts from the new
    // time, so the Retry-After given at the step holds. Kept at the old time, the bucket refilled nothing for the
    // hour the clock needed to get back there, while every refusal said one second.
    name: 'a clock stepped back: no token granted, the refill counts from the new time and Retry-After holds',
    rule: { capacity: 2, refillPerSecond: 1 },
    steps: [
      { atMs: 3_600_000, allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 1000 },
      { atMs: 3_600_000, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 2000 },
      { atMs: 0, allowed: false, remaining: 0, retryAfterMs: 1000, resetMs: 2000 },
      { atMs: 1000, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 2000 },
      { atMs: 1000, allowed: false, remaining: 0, retryAfterMs: 1000, resetMs: 2000 },
      { atMs: 3000, allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 1000 },
    ],
  },
  {
    // creditRule({capacity: 2, refillPerSecond: 1}, 500): the login delay's bucket. A fractional capacity; the
    // allowed take at 500 ms runs the real bucket half a token into debt (resetMs 2500 = 2000 to fill + 500 of debt).
    name: 'a credit line: burst 2 plus 0.5 s of credit at 1/s is a bucket of capacity 2.5',
    rule: { capacity: 2.5, refillPerSecond: 1 },
    steps: [
      { atMs: 0, allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 1000 },
      { atMs: 0, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 2000 },
      { atMs: 0, allowed: false, remaining: 0, retryAfterMs: 500, resetMs: 2000 },
      { atMs: 500, allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 2500 },
      { atMs: 500, allowed: false, remaining: 0, retryAfterMs: 1000, resetMs: 2500 },
      { atMs: 3000, allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 1000 },
    ],
  },
];
