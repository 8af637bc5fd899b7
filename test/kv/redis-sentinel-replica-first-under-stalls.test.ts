// A sentinel listed first that names a replica, on a gateway whose event loop keeps stalling (a loaded machine):
// the store must still move on to the other sentinels. node-redis answers each READONLY with another rediscovery
// through the same sentinel, so no command settles; the store took its link for silent and opened a replacement
// asking the same sentinel first, whose swap reset the clock of the watch that rotates to the next sentinel. At
// load 15 it never rotated, and every request was refused (review21-kv-sentinel-topology-faults failed that way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { startFakeSentinel } from '../helpers/fake-sentinel.js';
import { uniquePrefix } from './redis-helpers.js';
import { requireRedisServer, ThrowawaySentinel } from './redis-processes.js';

const skip = await requireRedisServer();
const RULE = { capacity: 1e9, refillPerSecond: 1 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a sentinel naming a replica asked first, this process stalled 400 ms of every 500: takes are decided within 20 s', { skip, timeout: 120_000 }, async () => {
  const own = await ThrowawaySentinel.start(1_000);
  const lying = await startFakeSentinel(own.replica.port);
  const store = createRedisKvStore({ sentinel: { name: own.target.name, nodes: [lying.url, ...own.target.nodes] }, keyPrefix: uniquePrefix('sentinel-replica-stalls'), commandTimeoutMs: 500 });
  // The share of a core a process gets at load 15 on two cores.
  const stalls = setInterval(() => {
    const until = performance.now() + 400;
    while (performance.now() < until);
  }, 500);
  try {
    const started = Date.now();
    let decided = false;
    while (!decided && Date.now() - started < 20_000) {
      decided = await store.take('bucket', RULE).then(() => true, () => false);
      if (!decided) await sleep(100);
    }
    clearInterval(stalls);
    assert.ok(decided, 'no take decided in 20 s');
  } finally {
    clearInterval(stalls);
    await store.close();
    await lying.close();
    await own.stop();
  }
});
