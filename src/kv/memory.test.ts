// Unit tests of the memory store's bounds: idle buckets are swept, the entry cap holds, revocations expire.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKvStore } from './memory.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('MemoryKvStore bounds', () => {
  test('200 000 distinct clients: the map is empty again once their buckets are full again', async () => {
    // One token missing at 200/s: full again 5 ms after each client's request.
    const rule = { capacity: 5, refillPerSecond: 200 };
    const store = new MemoryKvStore({ maxBuckets: 1_000_000 });
    try {
      for (let i = 0; i < 200_000; i++) {
        assert.equal(store.take(`p:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rule).allowed, true);
      }
      assert.equal(store.bucketCount, 200_000);
      await sleep(20);
      assert.equal(store.sweep(), 200_000);
      assert.equal(store.bucketCount, 0);
    } finally {
      await store.close();
    }
  });

  test('the periodic sweep runs by itself (on an unref\'d timer)', async () => {
    const store = new MemoryKvStore({ sweepIntervalMs: 20 });
    try {
      // More than one sweep chunk (10 000), so the pass resumes across event-loop turns.
      for (let i = 0; i < 25_000; i++) store.take(`k${i}`, { capacity: 2, refillPerSecond: 100 });
      await store.revoke('jti', Date.now() + 30);
      assert.equal(store.bucketCount, 25_000);
      assert.equal(store.revocationCount, 1);
      for (let i = 0; i < 100 && store.bucketCount + store.revocationCount > 0; i++) await sleep(20);
      assert.equal(store.bucketCount, 0);
      assert.equal(store.revocationCount, 0);
    } finally {
      await store.close();
    }
  });

  test('a bucket still refilling survives the sweep and keeps its count', async () => {
    const store = new MemoryKvStore();
    const rule = { capacity: 2, refillPerSecond: 0.01 };
    try {
      store.take('slow', rule);
      store.take('slow', rule);
      store.sweep();
      assert.equal(store.bucketCount, 1);
      assert.equal(store.take('slow', rule).allowed, false);
    } finally {
      await store.close();
    }
  });

  test('hard cap: a flood of distinct keys between sweeps never holds more than maxBuckets', async () => {
    const store = new MemoryKvStore({ maxBuckets: 1000 });
    const rule = { capacity: 10, refillPerSecond: 0.001 };
    try {
      for (let i = 0; i < 50_000; i++) store.take(`flood${i}`, rule);
      assert.equal(store.bucketCount, 1000);
      // The most recent clients are the ones kept: the newest key is still limited.
      for (let i = 0; i < 9; i++) store.take('flood49999', rule);
      assert.equal(store.take('flood49999', rule).allowed, false);
    } finally {
      await store.close();
    }
  });

  test('hard cap: eviction never drops a bucket that is refusing its client (a flood cannot lift a limit)', async () => {
    let now = 1_000;
    const store = new MemoryKvStore({ maxBuckets: 50, now: () => now });
    const rule = { capacity: 3, refillPerSecond: 1 / 60 };
    try {
      // The victim's login bucket: the oldest entry, and empty (it refuses for the next minute).
      for (let i = 0; i < 3; i++) assert.equal(store.take('victim', rule).allowed, true);
      assert.equal(store.take('victim', rule).allowed, false);
      // A flood of new keys (one take each: none of them limiting) pushes the store past its cap many times over.
      for (let i = 0; i < 5_000; i++) {
        now += 1;
        store.take(`flood${i}`, rule);
      }
      assert.ok(store.bucketCount <= 50, `${store.bucketCount} buckets`);
      assert.equal(store.take('victim', rule).allowed, false, 'the limit in force survived the flood');
      // One token back, it passes again, but a third of a burst is no reason to hand it the other two early: it stays
      // while fuller buckets can go. Once full, it holds nothing and goes like any other.
      now += 60_000;
      for (let i = 0; i < 100; i++) store.take(`late${i}`, rule);
      assert.notEqual(store.bucketTtlMs('victim'), undefined, 'a bucket a third full is kept');
      now += 120_000;
      for (let i = 0; i < 100; i++) store.take(`later${i}`, rule);
      assert.equal(store.bucketTtlMs('victim'), undefined);
    } finally {
      await store.close();
    }
  });

  test('hard cap with nothing evictable: the least recently used goes, and the new client is kept and limited', async () => {
    let now = 1_000;
    const store = new MemoryKvStore({ maxBuckets: 10, now: () => now });
    // Burst 1: after one request a bucket refuses its client for a minute, so none of them may be evicted by choice.
    const rule = { capacity: 1, refillPerSecond: 1 / 60 };
    try {
      for (let i = 0; i < 10; i++) {
        now += 1;
        assert.equal(store.take(`held${i}`, rule).allowed, true);
      }
      // held0, first under the eviction cursor, is in use: someone keeps trying it (a refused take dates it too).
      now += 1;
      assert.equal(store.take('held0', rule).allowed, false);
      // A client past the cap, say one more /64 of the same allocation. Judged on a fresh bucket that was never
      // stored, it was never limited; refused, every new visitor was locked out while the table stayed full.
      assert.equal(store.take('late', rule).allowed, true, 'a new client gets its burst');
      assert.equal(store.take('late', rule).allowed, false, 'and is limited from then on: its bucket was kept');
      assert.equal(store.bucketCount, 10);
      // Room was made from the least recently used (as nginx's limit_req): held1, not held0.
      assert.equal(store.bucketTtlMs('held1'), undefined);
      assert.equal(store.take('held0', rule).allowed, false, 'the bucket in use keeps its limit');
      assert.equal(store.take('held9', rule).allowed, false, 'and so do the newer ones');
    } finally {
      await store.close();
    }
  });

  test('hard cap: an evictable bucket beyond the first sample is still found before a limiting one goes', async () => {
    const now = 1_000;
    const store = new MemoryKvStore({ maxBuckets: 100, now: () => now });
    const rule = { capacity: 2, refillPerSecond: 1 / 60 };
    try {
      // 99 clients limiting (both tokens spent) and, 61st in line, one at half its burst: the only one that may go.
      for (let i = 0; i < 100; i++) {
        store.take(`held${i}`, rule);
        if (i !== 60) store.take(`held${i}`, rule);
      }
      assert.equal(store.take('new', rule).allowed, true, 'room made from the half-full bucket');
      assert.equal(store.bucketTtlMs('held60'), undefined);
      assert.equal(store.take('new', rule).allowed, true);
      // Nothing left that may go by choice: the limiting one whose turn it is goes (the cursor went on from held60 to
      // held61), and the newer client is kept.
      assert.equal(store.take('newer', rule).allowed, true);
      assert.equal(store.bucketTtlMs('held61'), undefined);
      assert.notEqual(store.bucketTtlMs('held0'), undefined);
      assert.equal(store.take('newer', rule).allowed, true);
      assert.equal(store.take('newer', rule).allowed, false, 'limited once its burst is spent');
      assert.equal(store.bucketCount, 100);
    } finally {
      await store.close();
    }
  });

  test('take is synchronous (no promise), so the limiter needs no await with this store', async () => {
    const store = new MemoryKvStore();
    try {
      const result = store.take('k', { capacity: 1, refillPerSecond: 1 });
      assert.equal(result instanceof Promise, false);
      assert.equal(result.allowed, true);
      assert.equal(store.isRevoked('nope'), false);
    } finally {
      await store.close();
    }
  });

  test('after a flood is swept, reused slots carry no state over and other clients keep theirs', async () => {
    const store = new MemoryKvStore({ maxBuckets: 1_000_000 });
    const fast = { capacity: 3, refillPerSecond: 1000 };
    const slow = { capacity: 3, refillPerSecond: 0.001 };
    try {
      // A limited client that must survive the sweep (and the compaction that follows the flood's removal).
      for (let i = 0; i < 3; i++) store.take('kept', slow);
      for (let i = 0; i < 50_000; i++) store.take(`flood${i}`, fast);
      await sleep(10);
      store.sweep();
      assert.equal(store.bucketCount, 1);
      assert.equal(store.take('kept', slow).allowed, false);
      // New clients land in freed slots: each starts with a full bucket, not a previous client's tokens.
      for (let i = 0; i < 1000; i++) {
        const first = store.take(`new${i}`, slow);
        assert.equal(first.remaining, 2);
      }
      assert.equal(store.take('new999', slow).remaining, 1);
    } finally {
      await store.close();
    }
  });

  test('keys differing only in unpaired surrogates stay distinct buckets', async () => {
    const store = new MemoryKvStore();
    const rule = { capacity: 1, refillPerSecond: 0.001 };
    try {
      assert.equal(store.take('u:\uD800', rule).allowed, true);
      assert.equal(store.take('u:\uDBFF', rule).allowed, true);
      assert.equal(store.take('u:\uD800', rule).allowed, false);
      assert.equal(store.bucketCount, 2);
    } finally {
      await store.close();
    }
  });

  test('plain values: the cap drops the value written longest ago, and the sweep drops expired ones', async () => {
    let now = 0;
    const store = new MemoryKvStore({ maxValues: 3, now: () => now });
    try {
      for (const k of ['a', 'b', 'c']) await store.setValue(k, k, 1000);
      await store.setValue('a', 'a2', 1000); // rewritten: now the newest
      await store.setValue('d', 'd', 1000); // at the cap: 'b' goes
      assert.equal(await store.getValue('b'), undefined);
      assert.deepEqual(await Promise.all(['a', 'c', 'd'].map((k) => store.getValue(k))), ['a2', 'c', 'd']);
      now = 2000;
      assert.equal(store.sweep(), 3);
      assert.equal(store.valueCount, 0);
    } finally {
      await store.close();
    }
  });
});

describe('MemoryKvStore: the bytes plain values take together are capped', () => {
  test('past maxValueBytes the oldest-written values go until the new one fits; rewrites, expiry and sweeps give their bytes back', async () => {
    let now = 0;
    // Each of these is counted as 2 × (1 + 9) = 20 bytes: five fit in 100.
    const store = new MemoryKvStore({ maxValueBytes: 100, now: () => now });
    try {
      for (const k of ['a', 'b', 'c', 'd', 'e']) await store.setValue(k, k.repeat(9), 1000);
      assert.equal(store.valueCount, 5);
      await store.setValue('a', 'A'.repeat(9), 1000); // a rewrite takes no more room, and drops nothing
      assert.equal(store.valueCount, 5);
      await store.setValue('f', 'f'.repeat(29)); // 60 bytes: 'b', 'c' and 'd' go, the oldest written
      assert.deepEqual(
        await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => store.getValue(k))),
        ['A'.repeat(9), undefined, undefined, undefined, 'e'.repeat(9), 'f'.repeat(29)],
      );
      now = 2000; // 'a' and 'e' expire: one read and the sweep give their 40 bytes back
      assert.equal(await store.getValue('a'), undefined);
      assert.equal(store.sweep(), 1);
      await store.setValue('g', 'g'.repeat(19)); // 40 bytes: fits beside 'f' without dropping it
      assert.deepEqual(await Promise.all(['f', 'g'].map((k) => store.getValue(k))), ['f'.repeat(29), 'g'.repeat(19)]);
    } finally {
      await store.close();
    }
  });
});

describe('MemoryKvStore: a reload that changes a rule (the bucket is judged under the rule that takes from it)', () => {
  const fast = { capacity: 10, refillPerSecond: 600 / 60 };
  const slow = { capacity: 10, refillPerSecond: 6 / 60 };

  test('drained at 600/min, taken at 6/min 1.1 s later (after the old rule would have refilled it): 0.11 tokens, refused', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 10; i++) assert.equal(store.take('p:c', fast).allowed, true);
      now = 1100;
      // 0.11 tokens: the next one is (1 - 0.11) / 0.1 = 8.9 s away, the whole burst (10 - 0.11) / 0.1 = 98.9 s.
      assert.deepEqual(store.take('p:c', slow), { allowed: false, remaining: 0, retryAfterMs: 8900, resetMs: 98_900 });
    } finally {
      await store.close();
    }
  });

  test('the sweep keeps a bucket the new rule has not refilled yet, and drops it once full under the new rule', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 10; i++) store.take('p:drained', fast);
      now = 10;
      store.take('p:other', slow); // the reload: the store meets the new rule
      now = 1100; // the old rule would have refilled p:drained at 1000
      store.sweep();
      assert.notEqual(store.bucketTtlMs('p:drained'), undefined, 'kept: under the new rule it holds 0.11 tokens');
      assert.ok(store.bucketTtlMs('p:drained')! > 98_000, `ttl ${store.bucketTtlMs('p:drained')}`);
      assert.equal(store.take('p:drained', slow).allowed, false);
      now = 1100 + 100_000; // 10 tokens at 0.1/s: full under the new rule
      store.sweep();
      assert.equal(store.bucketTtlMs('p:drained'), undefined);
      assert.equal(store.bucketCount, 0);
    } finally {
      await store.close();
    }
  });

  test('a reload to a rule met before (another policy\'s values) keeps the bucket too, as soon as the limiter is built', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      store.take('s:x', { ...slow }); // another policy with the new rule's values, met long before the reload
      now = 5;
      for (let i = 0; i < 10; i++) store.take('p:drained', fast);
      now = 10;
      store.expectRules('default', [fast]); // start-up: the default policy's rule
      now = 10;
      store.expectRules('default', [{ ...slow }]); // the reload builds its limiter: the default policy now has slow's values
      now = 1100; // the old rule would have refilled p:drained at 1005
      store.sweep();
      assert.notEqual(store.bucketTtlMs('p:drained'), undefined, 'kept: under the new rule it holds about 0.11 tokens');
      assert.equal(store.take('p:drained', slow).allowed, false, 'no fresh burst');
    } finally {
      await store.close();
    }
  });

  test('a reload with no take under its rule before the sweep keeps the bucket (the rule is known from the limiter)', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      store.expectRules('default', [fast]);
      for (let i = 0; i < 10; i++) store.take('p:drained', fast);
      now = 10;
      store.expectRules('default', [slow]);
      now = 12_000; // sweeps pass before anyone is taken under the new rule
      store.sweep();
      assert.notEqual(store.bucketTtlMs('p:drained'), undefined);
      const taken = store.take('p:drained', slow);
      assert.equal(taken.allowed, true, '1.2 tokens refilled at 0.1/s since the drain');
      assert.equal(taken.remaining, 0);
    } finally {
      await store.close();
    }
  });

  test('a reload that leaves a policy\'s rules as they were keeps no bucket longer', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      store.expectRules('default', [fast]);
      store.expectRules('auth', [slow]);
      for (let i = 0; i < 100; i++) store.take(`p:${i}`, fast);
      now = 10;
      store.expectRules('default', [{ ...fast }]); // a reload: new objects, the same values
      store.expectRules('auth', [{ ...slow }]);
      store.expectRules('strict', [slow]); // and a new policy
      now = 200; // each bucket holds 9 of 10 tokens, full again 100 ms after its take under its own rule
      store.sweep();
      assert.equal(store.bucketCount, 0, 'not kept until full under the slow rule of another scope');
    } finally {
      await store.close();
    }
  });

  test('at the cap, a bucket the old rule refilled but the new rule has not is not evicted as full', async () => {
    let now = 0;
    const store = new MemoryKvStore({ maxBuckets: 20, sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 10; i++) store.take('p:drained', fast);
      now = 10;
      for (let i = 0; i < 19; i++) store.take(`p:new${i}`, slow); // the reload's rule; the table is now at its cap
      now = 1100;
      for (let i = 0; i < 200; i++) store.take(`p:flood${i}`, slow);
      assert.equal(store.take('p:drained', slow).allowed, false, 'no fresh burst through eviction');
    } finally {
      await store.close();
    }
  });
});

describe('MemoryKvStore: a plugin passing a different limit on almost every take', () => {
  /** Limit i of a plugin's per-tenant quotas: burst 10 to 59, 60 to 5 059 a minute. */
  const limit = (i: number) => ({ capacity: 10 + (i % 50), refillPerSecond: (60 + i) / 60 });

  test('5 000 limits in turn: each bucket is checked against at most 65 rules besides its own, not 5 000', async () => {
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 5_000; i++) store.take(`p:old${i}`, limit(i));
      now = 3_600_000; // every bucket full again; the tenants come back, each with its limit
      for (let i = 0; i < 5_000; i++) {
        now += 0.01;
        store.take(`p:tenant${i}`, limit(i));
      }
      assert.ok(store.pendingRuleCount <= 65, `${store.pendingRuleCount} rules checked per bucket`);
      store.sweep();
      assert.equal(store.bucketTtlMs('p:old0'), undefined, 'a bucket full under every rule is dropped');
      assert.notEqual(store.bucketTtlMs('p:tenant4999'), undefined, 'one still refilling is kept');
    } finally {
      await store.close();
    }
  });

  test('a slower rule met among 100 others is still applied: the drained bucket is kept until full under it', async () => {
    const fast = { capacity: 10, refillPerSecond: 600 / 60 };
    const slow = { capacity: 10, refillPerSecond: 6 / 60 };
    let now = 0;
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 10; i++) store.take('p:drained', fast);
      now = 10;
      for (let i = 0; i < 100; i++) store.take(`p:other${i}`, limit(i)); // past the rules checked one by one
      store.take('p:reloaded', slow); // the reload's rule, met last
      now = 1100; // the fast rule would have refilled p:drained at 1000
      store.sweep();
      assert.ok(store.bucketTtlMs('p:drained')! > 98_000, `ttl ${store.bucketTtlMs('p:drained')}`);
      assert.equal(store.take('p:drained', slow).allowed, false, 'no fresh burst: 0.11 tokens under the slow rule');
    } finally {
      await store.close();
    }
  });
});

describe('MemoryKvStore: eviction at the cap takes the fullest buckets', () => {
  const rule = { capacity: 10, refillPerSecond: 100 / 60 };

  test('review D9: a throttled client refilled to one token is not evicted by 100 new keys (it passes 1 of 20, not 10)', async () => {
    let now = 0;
    const store = new MemoryKvStore({ maxBuckets: 100, sweepIntervalMs: 1e9, now: () => now });
    try {
      const passes = (): number => Array.from({ length: 20 }, () => store.take('p:attacker', rule)).filter((r) => r.allowed).length;
      assert.equal(passes(), 10);
      now += 700; // 1.17 tokens back: it passes again, but is far from full
      for (let i = 0; i < 100; i++) store.take(`p:flood-${i}`, rule);
      assert.equal(passes(), 1);
    } finally {
      await store.close();
    }
  });

  test('a long flood of new keys never gives a throttled client more than its own refill', async () => {
    let now = 0;
    const store = new MemoryKvStore({ maxBuckets: 50, sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 10; i++) store.take('p:attacker', rule);
      // 20 000 new keys over 4 s (0.2 ms apart): the attacker refills 4000 / 600 = 6.67 tokens meanwhile.
      for (let i = 0; i < 20_000; i++) {
        now += 0.2;
        store.take(`p:flood-${i}`, rule);
        assert.ok(store.bucketCount <= 50);
      }
      const passed = Array.from({ length: 20 }, () => store.take('p:attacker', rule)).filter((r) => r.allowed).length;
      assert.equal(passed, 6);
    } finally {
      await store.close();
    }
  });

  test('full buckets go first, then the fullest; none under half full, whatever the flood', async () => {
    let now = 0;
    const store = new MemoryKvStore({ maxBuckets: 4, sweepIntervalMs: 1e9, now: () => now });
    try {
      for (let i = 0; i < 6; i++) store.take('p:four-left', rule); // 0.4 of its burst
      for (let i = 0; i < 3; i++) store.take('p:seven-left', rule); // 0.7
      store.take('p:nine-left', rule); // 0.9
      for (let i = 0; i < 8; i++) store.take('p:two-left', rule); // 0.2
      store.take('p:new-1', rule);
      assert.equal(store.bucketTtlMs('p:nine-left'), undefined, 'the fullest went');
      store.take('p:new-2', rule);
      assert.equal(store.bucketTtlMs('p:new-1'), undefined, 'then the next fullest (0.9 again)');
      for (let i = 0; i < 100; i++) store.take(`p:more-${i}`, rule);
      for (const kept of ['p:four-left', 'p:two-left']) assert.notEqual(store.bucketTtlMs(kept), undefined, kept);
      assert.equal(store.take('p:two-left', rule).remaining, 1);
    } finally {
      await store.close();
    }
  });
});
