// Runs the KvStore contract against a Redis Cluster of our own (3 masters + 3 replicas), two stores sharing it;
// the key-layout and live-resharding suites use the same cluster (one start-up for the three).
import { after, before } from 'node:test';
import { createCluster } from 'redis';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { bucketKey } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, ThrowawayCluster, untilAnswering } from '../kv/redis-processes.js';
import { clusterLayoutSuite } from '../kv/cluster-layout.js';
import { clusterReshardSuite } from '../e2e/cluster-reshard.js';
import { kvStoreContract } from './kv-store.contract.js';

const skip = await requireRedisServer();
let cluster: ThrowawayCluster | undefined;
before(async () => {
  if (skip === false) cluster = await ThrowawayCluster.start();
});
after(async () => {
  await cluster?.stop();
});
const running = (): ThrowawayCluster => {
  if (cluster === undefined) throw new Error('the cluster did not start');
  return cluster;
};

kvStoreContract(
  'redis cluster',
  async () => {
    const seeds = running().seeds;
    const keyPrefix = uniquePrefix('contract-cluster');
    const store = createRedisKvStore({ cluster: seeds, keyPrefix, commandTimeoutMs: 2_000 });
    // Another gateway, knowing other seed nodes.
    const twin = createRedisKvStore({ cluster: seeds.slice(3), keyPrefix, commandTimeoutMs: 2_000 });
    const admin = createCluster({ rootNodes: [{ url: seeds[0] as string }] });
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
        const fullKey = bucketKey(keyPrefix, key);
        const ttl = await admin.sendCommand<number>(fullKey, true, ['PTTL', fullKey]);
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

clusterLayoutSuite(running, skip);
clusterReshardSuite(running, skip);
