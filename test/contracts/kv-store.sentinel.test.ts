// Runs the KvStore contract against a Sentinel setup of our own (master + replica + 3 sentinels), then the
// failover suite on the same setup (one start-up for both; the failover kills the master, so it runs last).
import { after, before } from 'node:test';
import { createClient } from '@redis/client';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { bucketKey } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, ThrowawaySentinel, untilAnswering } from '../kv/redis-processes.js';
import { sentinelFailoverSuite } from '../e2e/sentinel-failover.js';
import { kvStoreContract } from './kv-store.contract.js';

const skip = await requireRedisServer();
let setup: ThrowawaySentinel | undefined;
before(async () => {
  if (skip === false) setup = await ThrowawaySentinel.start();
});
after(async () => {
  await setup?.stop();
});
const running = (): ThrowawaySentinel => {
  if (setup === undefined) throw new Error('the sentinel setup did not start');
  return setup;
};

kvStoreContract(
  'redis sentinel',
  async () => {
    const target = running().target;
    const keyPrefix = uniquePrefix('contract-sentinel');
    const store = createRedisKvStore({ sentinel: target, keyPrefix, commandTimeoutMs: 2_000 });
    // Another gateway, knowing other sentinels.
    const twin = createRedisKvStore({ sentinel: { name: target.name, nodes: target.nodes.slice(1) }, keyPrefix, commandTimeoutMs: 2_000 });
    const admin = createClient({ url: running().master.url });
    try {
      await admin.connect();
      await untilAnswering(store);
      await untilAnswering(twin);
    } catch (err) {
      await Promise.allSettled([store.close(), twin.close(), admin.isOpen ? admin.close() : undefined]);
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
      },
    };
  },
  skip,
);

sentinelFailoverSuite(running, skip);
