// Runs the KvStore contract against Redis (REDIS_URL), with two store instances sharing state like two gateways.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createClient } from 'redis';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { bucketKey, legacyRevokedKey } from '../../src/kv/redis-keys.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';
import { kvStoreContract } from './kv-store.contract.js';

const skip = await requireRedis();

async function waitUntilAnswering(store: RedisKvStore): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await store.ping();
      return;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

kvStoreContract(
  'redis',
  async () => {
    const keyPrefix = uniquePrefix('contract');
    const store = createRedisKvStore({ url: REDIS_URL, keyPrefix });
    const twin = createRedisKvStore({ url: REDIS_URL, keyPrefix });
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    // The stores connect in the background; wait until both answer.
    for (const s of [store, twin]) await waitUntilAnswering(s);
    return {
      store,
      twin,
      bucketTtlMs: async (key) => {
        const ttl = await admin.pTTL(bucketKey(keyPrefix, key));
        return ttl > 0 ? ttl : undefined;
      },
      settle: async () => {},
      cleanup: async () => {
        const keys = await admin.keys(`${keyPrefix}*`);
        if (keys.length > 0) await admin.del(keys);
        await Promise.all([store.close(), twin.close(), admin.close()]);
      },
    };
  },
  skip,
);

// Redis-only: a single server answers isRevoked with one MGET over the token's key, its name from before hash tags
// and the subject's key. The legacy name is written by hand here as the gateway of then wrote it.
describe('redis isRevoked, single server', { skip }, () => {
  test('a revocation under the key name from before hash tags still refuses its token, with or without a subject', async () => {
    const keyPrefix = uniquePrefix('legacy');
    const store = createRedisKvStore({ url: REDIS_URL, keyPrefix });
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    try {
      await waitUntilAnswering(store);
      const old = randomUUID();
      const fresh = randomUUID();
      await admin.set(legacyRevokedKey(keyPrefix, old), '1', { PX: 60_000 });
      assert.equal(await store.isRevoked(old), true);
      assert.equal(await store.isRevoked(old, 'user:u1', Date.now()), true);
      assert.equal(await store.isRevoked(fresh), false);
      assert.equal(await store.isRevoked(fresh, 'user:u1', Date.now()), false);
      // The subject decides alone when neither token key exists: issued at or before its time is refused.
      const at = Date.now();
      await store.revokeSubject('user:u1', at, 60_000);
      assert.equal(await store.isRevoked(fresh, 'user:u1', at), true);
      assert.equal(await store.isRevoked(fresh, 'user:u1', at + 1000), false);
      assert.equal(await store.isRevoked(fresh, 'user:u2', at), false);
    } finally {
      const keys = await admin.keys(`${keyPrefix}*`);
      if (keys.length > 0) await admin.del(keys);
      await Promise.all([store.close(), admin.close()]);
    }
  });
});
