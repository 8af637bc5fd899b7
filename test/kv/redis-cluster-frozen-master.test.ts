// A master of a running Redis Cluster freezes (SIGSTOP: a paused VM, a stuck process) and stays frozen. Its
// connection stays open and never fails, so node-redis notices nothing: no reconnect, no slot-map refresh, and the
// frozen node never answers MOVED. After the cluster had promoted the replica, the store kept sending that master's
// slots to the frozen node (every decision timed out, under on_store_error) for as long as it stayed frozen. Now a
// command timeout makes the store ask the other nodes for the slot map (never the timed-out node), so the promotion
// is found and those slots are decided exactly again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from './redis-helpers.js';
import { requireRedisServer, servesSlot, ThrowawayCluster, until } from './redis-processes.js';

const skip = await requireRedisServer();

const NODE_TIMEOUT_MS = 2_000;
const RULE = { capacity: 1_000, refillPerSecond: 0.001 };

describe('Redis Cluster: a master frozen while the store runs', { skip }, () => {
  let cluster: ThrowawayCluster;
  let store: RedisKvStore | undefined;
  before(async () => {
    cluster = await ThrowawayCluster.start(3, NODE_TIMEOUT_MS);
  });
  after(async () => {
    for (const node of cluster?.nodes ?? []) node.signal('SIGCONT');
    await store?.close();
    await cluster?.stop();
  });

  test('its slots answer again once the replica is promoted, while it stays frozen', async () => {
    const prefix = uniquePrefix('frozen-run');
    store = createRedisKvStore({ cluster: cluster.seeds, keyPrefix: prefix, commandTimeoutMs: 300 });
    await until('the store to answer', async () => (await store!.ping(), store!.connected), 10_000, 50);
    const victim = (await cluster.masters())[0]!;
    let onVictim = '';
    for (let i = 0; onVictim === ''; i++) if (servesSlot(victim.slots, hashSlot(bucketKey(prefix, `p:b${i}`)))) onVictim = `p:b${i}`;
    assert.equal((await store.take(onVictim, RULE)).remaining, 999, 'decided before the freeze');

    cluster.node(victim.port).signal('SIGSTOP');
    await assert.rejects(store.take(onVictim, RULE), 'times out while the master is frozen');
    await until('the cluster to promote the replica', async () => {
      const masters = await cluster.topology(cluster.nodes.find((n) => n.port !== victim.port)!.port);
      return masters.some((m) => m.port !== victim.port && m.flags.includes('master') && servesSlot(m.slots, hashSlot(bucketKey(prefix, onVictim))));
    }, NODE_TIMEOUT_MS * 10, 200);
    // The bucket replicated before the freeze (WAIT is not used for buckets: 999 or a fresh 999 both show an answer).
    await until('the frozen master slots to be decided again', async () => {
      try {
        await store!.take(onVictim, RULE);
        return true;
      } catch {
        return false;
      }
    }, 10_000, 100);
  });
});
