// Runs the KvStore contract against Redis (REDIS_URL), with two store instances sharing state like two gateways.
import { createClient } from 'redis';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { bucketKey } from '../../src/kv/redis-keys.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';
import { kvStoreContract } from './kv-store.contract.js';

const skip = await requireRedis();

kvStoreContract(
  'redis',
  async () => {
    const keyPrefix = uniquePrefix('contract');
    const store = createRedisKvStore({ url: REDIS_URL, keyPrefix });
    const twin = createRedisKvStore({ url: REDIS_URL, keyPrefix });
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    // The stores connect in the background; wait until both answer.
    for (const s of [store, twin]) {
      for (let i = 0; ; i++) {
        try {
          await s.ping();
          break;
        } catch (err) {
          if (i > 100) throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
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
