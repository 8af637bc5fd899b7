// Hash tags on a real Redis Cluster: every script's keys share one slot, and 10,000 clients' buckets spread over
// every master (a hot slot would make one master the whole limiter). Registered by kv-store.cluster.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { bucketKey, hashSlot, revokedKey, SCRIPT_KEYS } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from './redis-helpers.js';
import { createClient } from '@redis/client';
import { servesSlot, type ThrowawayCluster, untilAnswering } from './redis-processes.js';

/** Bucket names as the limiter makes them: client addresses (v4 and v6), user ids, hashed emails. */
function sampleBuckets(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 4;
    if (kind === 0) out.push(`p:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    else if (kind === 1) out.push(`p:2001:db8::${i.toString(16)}`);
    else if (kind === 2) out.push(`u:${randomUUID()}`);
    else out.push(`e:${randomUUID().replaceAll('-', '')}`);
  }
  return out;
}

/** Registers the key-layout suite on a running cluster (`cluster()` is read in before()). */
export function clusterLayoutSuite(cluster: () => ThrowawayCluster, skip: string | false): void {
  describe('Redis Cluster key layout', { skip }, () => {
    let store: RedisKvStore;
    const prefix = uniquePrefix('slots');

    before(async () => {
      store = createRedisKvStore({ cluster: cluster().seeds, keyPrefix: prefix, commandTimeoutMs: 2_000 });
      await untilAnswering(store);
    });
    after(async () => {
      await store?.close();
    });

    test('each script call touches keys of one slot, and our slot arithmetic equals CLUSTER KEYSLOT', async () => {
      const names = sampleBuckets(400);
      for (const [script, keysOf] of Object.entries(SCRIPT_KEYS)) {
        for (const name of names) {
          const slots = new Set(keysOf(prefix, name).map(hashSlot));
          assert.equal(slots.size, 1, `script ${script} with ${name} spans slots ${[...slots].join(', ')}`);
        }
      }
      // The server agrees with hashSlot (so the test above is about real slots), for a sample of keys.
      const sample = names.slice(0, 100).flatMap((n) => [bucketKey(prefix, n), revokedKey(prefix, n)]);
      const node = createClient({ url: cluster().seeds[0] });
      await node.connect();
      try {
        const slots = await Promise.all(sample.map((key) => node.sendCommand(['CLUSTER', 'KEYSLOT', key])));
        sample.forEach((key, i) => assert.equal(slots[i], hashSlot(key), key));
      } finally {
        node.destroy();
      }
    });

    test("10,000 clients' buckets land on every master, each holding between a fifth and a half", async () => {
      const buckets = sampleBuckets(10_000);
      const rule = { capacity: 5, refillPerSecond: 0.01 };
      for (let i = 0; i < buckets.length; i += 500) {
        const results = await Promise.all(buckets.slice(i, i + 500).map((b) => store.take(b, rule)));
        assert.ok(results.every((r) => r.allowed && r.remaining === 4));
      }
      const masters = await cluster().masters();
      assert.equal(masters.length, 3);
      const perMaster = masters.map((m) => buckets.filter((b) => servesSlot(m.slots, hashSlot(bucketKey(prefix, b)))).length);
      assert.equal(perMaster.reduce((a, b) => a + b, 0), 10_000, 'every bucket is on exactly one master');
      // The keys really are there: each master holds exactly the buckets its slots say (SCAN of this run's prefix).
      for (const [i, master] of masters.entries()) {
        const node = createClient({ url: `redis://127.0.0.1:${master.port}` });
        await node.connect();
        let size = 0;
        try {
          for await (const keys of node.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) size += keys.length;
        } finally {
          node.destroy();
        }
        assert.equal(size, perMaster[i], `master ${master.port}`);
        assert.ok(size > 2_000 && size < 5_000, `master ${master.port} holds ${size} of 10,000 buckets`);
      }
    });
  });
}
