// api.store's argument checks: what a plugin gets for a bad key or expiry is its own TypeError, before any store
// is asked (on Redis, an expiry it cannot take read as an outage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKvStore } from '../kv/memory.js';
import { createPluginStore } from './store.js';

test('an expiry past 100 years, or not a positive number, is a TypeError for set and incr', async () => {
  const kv = new MemoryKvStore();
  try {
    const store = createPluginStore('p', () => kv);
    for (const ttl of [1e300, 100 * 365 * 24 * 3_600_000 + 1, Number.POSITIVE_INFINITY, 0, -1, Number.NaN]) {
      await assert.rejects(Promise.resolve().then(() => store.set('k', 'v', ttl)), TypeError, String(ttl));
      await assert.rejects(Promise.resolve().then(() => store.incr('n', ttl)), TypeError, String(ttl));
    }
    await store.set('k', 'v', 100 * 365 * 24 * 3_600_000);
    assert.equal(await store.get('k'), 'v');
    assert.equal(await store.incr('n', 60_000), 1);
  } finally {
    await kv.close();
  }
});
