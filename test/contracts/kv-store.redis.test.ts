// Runs the KvStore contract against Redis (REDIS_URL), with two store instances sharing state like two gateways.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createClient } from '@redis/client';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { bucketKey, legacyRevokedKey } from '../../src/kv/redis-keys.js';
import { freePort, REDIS_URL, requireRedis, ThrowawayRedis, uniquePrefix } from '../kv/redis-helpers.js';
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

// The revocation check is on every authenticated request: with token generations it must stay one command (MGET) on a
// single server, and read the subject's generation only for a token that carries one. Counted on a Redis of our own
// (INFO commandstats), so no other test's commands are in the counts.
describe('redis isRevoked with a generation, single server', { skip }, () => {
  test('one MGET a check, with or without a generation; a revocation is one script', async () => {
    const server = new ThrowawayRedis(await freePort());
    await server.start();
    const store = createRedisKvStore({ url: server.url, keyPrefix: uniquePrefix('gen-cost') });
    const admin = createClient({ url: server.url });
    try {
      await admin.connect();
      await waitUntilAnswering(store);
      const calls = async (): Promise<Record<string, number>> => {
        const stats = await admin.sendCommand<string>(['INFO', 'commandstats']);
        const out: Record<string, number> = {};
        for (const [, name, n] of stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[name!] = Number(n);
        return out;
      };
      const at = Date.now();
      await store.revokeSubject('user:u1', at, 60_000, 2);
      const before = await calls();
      assert.equal(await store.isRevoked(randomUUID(), 'user:u1', at + 1000, 1), true);
      assert.equal(await store.isRevoked(randomUUID(), 'user:u1', at - 1000, 2), false);
      assert.equal(await store.isRevoked(randomUUID(), 'user:u1', at - 1000), true);
      const after = await calls();
      const delta = Object.fromEntries(
        Object.entries(after)
          .map(([name, n]) => [name, n - (before[name] ?? 0)] as const)
          .filter(([name, n]) => n > 0 && name !== 'info'),
      );
      assert.deepEqual(delta, { mget: 3 }, 'three checks, one MGET each and nothing else');
    } finally {
      await Promise.allSettled([store.close(), admin.close()]);
      await server.kill();
    }
  });
});
