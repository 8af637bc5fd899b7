// Runs the KvStore contract against a Sentinel setup of our own (master + replica + 3 sentinels).
import { createClient } from 'redis';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { bucketKey } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, ThrowawaySentinel, untilAnswering } from '../kv/redis-processes.js';
import { kvStoreContract } from './kv-store.contract.js';

const skip = await requireRedisServer();

kvStoreContract(
  'redis sentinel',
  async () => {
    const setup = await ThrowawaySentinel.start();
    const keyPrefix = uniquePrefix('contract-sentinel');
    const store = createRedisKvStore({ sentinel: setup.target, keyPrefix });
    const twin = createRedisKvStore({ sentinel: { name: setup.name, nodes: setup.target.nodes.slice(1) }, keyPrefix });
    const admin = createClient({ url: setup.master.url });
    try {
      await admin.connect();
      await untilAnswering(store);
      await untilAnswering(twin);
    } catch (err) {
      await Promise.allSettled([store.close(), twin.close(), setup.stop()]);
      throw err;
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
        await Promise.allSettled([store.close(), twin.close(), admin.close()]);
        await setup.stop();
      },
    };
  },
  skip,
);
