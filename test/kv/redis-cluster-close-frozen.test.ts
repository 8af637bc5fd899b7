// Closing the store while a master of its Redis Cluster is frozen (SIGSTOP: the kernel accepted the connection, the
// server never answers its handshake). The store was ready (the other masters answer), so close() takes the graceful
// path; the frozen node's connection must still be gone afterwards, or the gateway's process never exits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { requireRedisServer, servesSlot, ThrowawayCluster, until } from './redis-processes.js';
import { uniquePrefix } from './redis-helpers.js';

const skip = await requireRedisServer();

/** This process's TCP sockets to `port` that are still established (from /proc, Linux). */
function establishedTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const remPort = parseInt((cols[2] ?? '').split(':').pop() ?? '', 16);
      if (remPort === port && cols[3] === '01' && inodes.has(cols[9] ?? '')) count++;
    }
  }
  return count;
}

describe('closing a cluster store while a master is frozen', { skip }, () => {
  let cluster: ThrowawayCluster;
  const stores: RedisKvStore[] = [];
  before(async () => {
    // A long node timeout: the frozen master is not failed over during the test.
    cluster = await ThrowawayCluster.start(3, 30_000);
  });
  after(async () => {
    for (const node of cluster?.nodes ?? []) node.signal('SIGCONT');
    await Promise.allSettled(stores.map((s) => s.close()));
    await cluster?.stop();
  });

  test('close() leaves no connection to the frozen master', async (t) => {
    const victim = (await cluster.masters()).find((m) => m.slots.length > 0)!;
    cluster.node(victim.port).signal('SIGSTOP');
    t.after(() => cluster.node(victim.port).signal('SIGCONT'));
    const seeds = cluster.nodes.filter((n) => n.port !== victim.port).map((n) => n.url);
    const store = createRedisKvStore({ cluster: seeds, keyPrefix: uniquePrefix('close-frozen'), commandTimeoutMs: 1_000, connectTimeoutMs: 500 });
    stores.push(store);
    await until('the store to be ready', async () => {
      try {
        await store.ping();
        return store.connected;
      } catch {
        return false;
      }
    }, 5_000, 20);
    // The kernel of the frozen node accepted the store's connection (its handshake waits unanswered).
    await until('a connection to the frozen master', async () => establishedTo(victim.port) >= 1, 2_000, 20);

    const closing = Date.now();
    await store.close();
    assert.ok(Date.now() - closing < 3_000, 'close() returns within about the command timeout');
    await until('the frozen master\'s connection to be closed', async () => establishedTo(victim.port) === 0, 2_000, 50).catch(() => undefined);
    assert.equal(establishedTo(victim.port), 0, 'a connection to the frozen master is still open after close(): the process cannot exit');
  });

  test('close() ends a connection that froze with a command in flight (the escalation to destroy reaches it)', async (t) => {
    const victim = (await cluster.masters()).find((m) => m.slots.length > 0)!;
    const prefix = uniquePrefix('close-frozen-later');
    const store = createRedisKvStore({ cluster: cluster.seeds, keyPrefix: prefix, commandTimeoutMs: 1_000, connectTimeoutMs: 500 });
    stores.push(store);
    let bucket = '';
    for (let i = 0; bucket === ''; i++) if (servesSlot(victim.slots, hashSlot(bucketKey(prefix, `b${i}`)))) bucket = `b${i}`;
    // Connected to every master, the victim's slot answered once.
    await until('the victim\'s slot to answer', async () => {
      try {
        await store.take(bucket, { capacity: 10, refillPerSecond: 1 });
        return true;
      } catch {
        return false;
      }
    }, 10_000, 50);
    cluster.node(victim.port).signal('SIGSTOP');
    t.after(() => cluster.node(victim.port).signal('SIGCONT'));
    const inFlight = store.take(bucket, { capacity: 10, refillPerSecond: 1 }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    await store.close();
    await inFlight;
    await until('the frozen master\'s connection to be closed', async () => establishedTo(victim.port) === 0, 2_000, 50).catch(() => undefined);
    assert.equal(establishedTo(victim.port), 0, 'close() timed out, and destroy() found no client to end');
  });
});
