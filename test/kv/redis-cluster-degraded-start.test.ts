// A gateway that starts while one master of its Redis Cluster is down (refuses connections) or frozen (accepts them
// and never answers, SIGSTOP): the store is ready within a connect timeout, the other masters' slots are decided
// exactly at once, the missing master's slots fail fast (no command waits on a connection that is not there), and
// they answer again once the replica is promoted (a takeover, rather than waiting out the node timeout), found by the
// store itself (the dead master is never asked, so no MOVED reply tells it). A frozen seed listed first does not hold
// up the start either.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { ClusterNodeUnavailableError } from '../../src/kv/redis-cluster.js';
import { KvUnavailableError } from '../../src/kv/kv-store.js';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from './redis-helpers.js';
import { requireRedisServer, run, servesSlot, ThrowawayCluster, until, type ClusterNodeView } from './redis-processes.js';

const skip = await requireRedisServer();

/** Long enough that the store's start and the first checks happen before the cluster fails the master over. */
const NODE_TIMEOUT_MS = 8_000;
const CONNECT_TIMEOUT_MS = 1_000;
const RULE = { capacity: 1_000, refillPerSecond: 0.001 };

/** `count` bucket names whose keys live on (or off) `master`'s slots. */
function bucketsOn(prefix: string, master: ClusterNodeView, count: number, on: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const name = `p:10.9.${i >> 8}.${i & 255}`;
    if (servesSlot(master.slots, hashSlot(bucketKey(prefix, name))) === on) out.push(name);
  }
  return out;
}

/** The error a rejected take carries, or undefined when it was decided. */
async function takeError(store: RedisKvStore, bucket: string): Promise<unknown> {
  try {
    await store.take(bucket, RULE);
    return undefined;
  } catch (err) {
    return err;
  }
}

describe('Redis Cluster with a master missing at start-up', { skip }, () => {
  let cluster: ThrowawayCluster;
  const stores: RedisKvStore[] = [];
  const open = (seeds: string[], prefix: string): RedisKvStore => {
    const store = createRedisKvStore({ cluster: seeds, keyPrefix: prefix, commandTimeoutMs: 3_000, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    stores.push(store);
    return store;
  };

  before(async () => {
    cluster = await ThrowawayCluster.start(3, NODE_TIMEOUT_MS);
  });
  after(async () => {
    for (const node of cluster?.nodes ?? []) node.signal('SIGCONT');
    await Promise.allSettled(stores.map((s) => s.close()));
    await cluster?.stop();
  });

  /** Starts a store with `victim` already gone, checks the degraded start, then waits for the failover. */
  async function degradedStart(victim: ClusterNodeView, prefix: string, seeds: string[]): Promise<void> {
    const store = open(seeds, prefix);
    // Ready (PING answered by a live master, every master answered or failed) well before the cluster notices: a
    // connect timeout for a frozen seed asked first, one for the frozen master's handshake, and room for a busy CI.
    await until('the store to answer', async () => (await store.ping(), store.connected), 5 * CONNECT_TIMEOUT_MS, 20);

    const live = bucketsOn(prefix, victim, 20, false);
    const missing = bucketsOn(prefix, victim, 10, true);
    for (const bucket of live) {
      const result = await store.take(bucket, RULE);
      assert.deepEqual([result.allowed, result.remaining], [true, 999], `${bucket} is decided on a live master`);
    }
    // The missing master's slots: once its connection has failed (refused at once, or silent for the connect
    // timeout), every command fails at once with the node named by class, not after the command timeout.
    await until('the missing master to be known as down', async () => (await takeError(store, missing[0]!)) instanceof KvUnavailableError && ((await takeError(store, missing[0]!)) as Error).cause instanceof ClusterNodeUnavailableError, 3 * CONNECT_TIMEOUT_MS, 50);
    for (const bucket of missing) {
      const err = await takeError(store, bucket);
      assert.ok(err instanceof KvUnavailableError, `${bucket}: ${String(err)}`);
      assert.ok(err.cause instanceof ClusterNodeUnavailableError, `${bucket} fails fast: ${String(err.cause)}`);
    }
    const views = await cluster.topology(cluster.nodes.find((n) => n.running && n.port !== victim.port)!.port);
    assert.ok(!views.find((v) => v.port === victim.port)!.flags.includes('fail'), 'checked before the cluster failed the master over');

    // The replica is promoted at once (CLUSTER FAILOVER TAKEOVER: no vote, no wait for the node timeout, which is long
    // only so that the checks above come first); the store finds it without being told by a MOVED reply.
    const replica = views.find((v) => v.masterId === victim.id && !v.flags.includes('fail'));
    assert.ok(replica !== undefined, `a replica of the missing master: ${JSON.stringify(views)}`);
    await run('redis-cli', ['-p', String(replica.port), 'CLUSTER', 'FAILOVER', 'TAKEOVER'], 5_000);
    await until('the missing slots to answer again', async () => (await takeError(store, missing[0]!)) === undefined, NODE_TIMEOUT_MS * 4, 100);
    for (const bucket of missing.slice(1)) assert.equal((await store.take(bucket, RULE)).remaining, 999, bucket);
    // Buckets taken before stay exact: one more take each.
    for (const bucket of live) assert.equal((await store.take(bucket, RULE)).remaining, 998, bucket);
  }

  /**
   * A master with slots and a replica attached, as a live node sees it. Right after ThrowawayCluster.start a node's
   * view may still list the replicas as slotless masters (gossip has not caught up), and a slotless "victim" left
   * bucketsOn() looping forever.
   */
  async function masterWithReplica(): Promise<ClusterNodeView> {
    let found: ClusterNodeView | undefined;
    await until('a master with slots and a replica', async () => {
      const views = await cluster.topology();
      found = views.find((v) => v.flags.includes('master') && !v.flags.includes('fail') && v.slots.length > 0 && views.some((r) => r.masterId === v.id && !r.flags.includes('fail')));
      return found !== undefined;
    }, 10_000);
    return found!;
  }

  test('a master that refuses connections', async () => {
    const victim = await masterWithReplica();
    await cluster.node(victim.port).kill();
    await degradedStart(victim, uniquePrefix('degraded-down'), cluster.seeds);
  });

  test('a frozen master, listed as the only seed ahead of live ones', async () => {
    // A master that still has a replica (the first test's promoted replica has none).
    const victim = await masterWithReplica();
    cluster.node(victim.port).signal('SIGSTOP');
    const others = cluster.nodes.filter((n) => n.running && n.port !== victim.port).map((n) => n.url);
    // Every seed order must work: node-redis starts at a random seed, so make the frozen one every other entry.
    const seeds = others.flatMap((url) => [cluster.node(victim.port).url, url]);
    await degradedStart(victim, uniquePrefix('degraded-frozen'), seeds);
  });
});
