// Review 4 (rate limit, memory store): more distinct bucket rules in use than the store's rule log remembers (64:
// more than ~60 named policies in rotation, or a plugin's per-tenant take() limits) made every take of a rule the log
// had forgotten add one more "new rule" entry, and the sweep checks every bucket against every such entry. With 100
// rules in turn, a sweep of 100 000 buckets after 100 000 takes blocked the event loop for about ten minutes.
// A rule met again now refreshes its one entry (the same rule, the later time: the same buckets judged under it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKvStore } from '../../src/kv/memory.js';

test('a sweep after many takes over more rules than the rule log holds stays quick, and drops the full buckets', async () => {
  let now = 0;
  const store = new MemoryKvStore({ now: () => now, sweepIntervalMs: 3_600_000 });
  try {
    // 5 000 clients on the default rule (burst 10, 100/min).
    const main = { capacity: 10, refillPerSecond: 100 / 60 };
    for (let i = 0; i < 5_000; i++) store.take(`p:${i}`, main);
    // 80 named policies (burst 5 to 9, 6 to 85 a minute), 10 000 requests spread over them (one a millisecond), on
    // 500 users (2 000 buckets: each user once per policy it met).
    const policies = Array.from({ length: 80 }, (_, i) => ({ capacity: 5 + (i % 5), refillPerSecond: (6 + i) / 60 }));
    for (let i = 0; i < 10_000; i++) {
      now += 1;
      store.take(`u|policy${i % 80}|user${i % 500}`, policies[i % 80]!);
    }
    // The next sweep, a second later: the clients' buckets are full under their rule and under every rule met since.
    now += 1_000;
    const started = performance.now();
    store.sweep();
    const elapsed = performance.now() - started;
    assert.ok(store.bucketCount <= 2_000, `the 5 000 full client buckets are dropped (${store.bucketCount} left)`);
    // 7 000 buckets against 80 rules is a few ms; against one entry per take (10 000) it was seconds.
    assert.ok(elapsed < 1_000, `the sweep blocked the event loop for ${Math.round(elapsed)} ms`);
  } finally {
    await store.close();
  }
});
