// Runs the KvStore contract against a Redis Cluster of our own (3 masters + 3 replicas), two stores sharing it;
// the key-layout and live-resharding suites use the same cluster (one start-up for the three).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, createCluster } from '@redis/client';
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

// The change poller of every gateway replays each revocation of the change log (the catch-up for one Redis refused
// when it was made). A replay went through the whole durable path: ROLE and WAIT for a replica per gateway and per
// start, each unconfirmed one counted again in portcullis_revocations_unreplicated_total.
test('a replayed revocation is written without a replica wait; a new one still waits', { skip }, async () => {
  const seeds = running().seeds;
  const store = createRedisKvStore({ cluster: seeds, keyPrefix: uniquePrefix('replay'), commandTimeoutMs: 2_000 });
  const nodes = seeds.map((url) => createClient({ url }));
  const waits = async (): Promise<number> => {
    let total = 0;
    for (const node of nodes) {
      const stats = await node.sendCommand<string>(['INFO', 'commandstats']);
      total += Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    }
    return total;
  };
  try {
    await Promise.all(nodes.map((n) => n.connect()));
    await untilAnswering(store);
    const before = await waits();
    await store.revoke('replayed-token', Date.now() + 60_000, true);
    assert.equal(await store.isRevoked('replayed-token'), true);
    assert.equal(await waits(), before, 'no WAIT for a replay');
    await store.revoke('fresh-token', Date.now() + 60_000);
    assert.equal(await waits(), before + 1, 'one WAIT for a new revocation');
  } finally {
    await Promise.allSettled([store.close(), ...nodes.map((n) => n.close())]);
  }
});

// The revocation check on a cluster: the token's key and the subject's keys may sit on different slots, so two
// commands (EXISTS, and one MGET of the subject's time and generation, which share the subject's hash tag), as before
// generations: the per-request cost did not grow.
// What a node counts that the store did not send: this test's own INFO, the client's topology and health probes, and a
// replica's replication traffic to its master (REPLCONF ACK every second, PSYNC on a reconnect).
const notTheStore = new Set(['info', 'cluster|slots', 'cluster|shards', 'ping', 'replconf', 'psync', 'sync']);

test('isRevoked with a generation is two commands on a cluster: EXISTS and one MGET', { skip }, async () => {
  const seeds = running().seeds;
  const store = createRedisKvStore({ cluster: seeds, keyPrefix: uniquePrefix('gen-cost'), commandTimeoutMs: 2_000 });
  const nodes = seeds.map((url) => createClient({ url }));
  // Counted on the masters only: a replica runs the DEL its master propagates when a key an earlier test wrote with a
  // TTL expires (a CI run counted one), which the store never sent.
  const calls = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const node of nodes) {
      if (/^role:slave/m.test(await node.sendCommand<string>(['INFO', 'replication']))) continue;
      const stats = await node.sendCommand<string>(['INFO', 'commandstats']);
      for (const [, name, n] of stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[name!] = (out[name!] ?? 0) + Number(n);
    }
    return out;
  };
  try {
    await Promise.all(nodes.map((n) => n.connect()));
    await untilAnswering(store);
    const at = Date.now();
    await store.revokeSubject('user:gen-cost', at, 60_000, 2);
    const before = await calls();
    assert.equal(await store.isRevoked('some-token', 'user:gen-cost', at + 1000, 1), true);
    assert.equal(await store.isRevoked('some-token', 'user:gen-cost', at - 1000, 2), false);
    const after = await calls();
    const delta = Object.fromEntries(
      Object.entries(after)
        .map(([name, n]) => [name, n - (before[name] ?? 0)] as const)
        .filter(([name, n]) => n > 0 && !notTheStore.has(name)),
    );
    assert.deepEqual(delta, { exists: 2, mget: 2 }, 'two checks, EXISTS and MGET each');
  } finally {
    await Promise.allSettled([store.close(), ...nodes.map((n) => n.close())]);
  }
});
