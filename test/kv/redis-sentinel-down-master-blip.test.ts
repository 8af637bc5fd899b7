// Every sentinel down, the master up: the store's commands go to the master on its own link. A stall of this
// process past the socket timeout (a loaded machine; the gateway ran in the test's process) makes the Sentinel
// client's master connection and the link both time out and reconnect, for 50-300 ms. Commands in that window went
// through the Sentinel client, whose rediscovery cannot finish without sentinels, and each met the command timeout:
// refused 503 while the master was up (review21-kv-sentinel-topology-faults' last case, flaky in CI). They now wait
// for the link, within their command timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { uniquePrefix } from './redis-helpers.js';
import { killSentinelsUntilMasterLink, requireRedisServer, ThrowawaySentinel, untilAnswering } from './redis-processes.js';

const skip = await requireRedisServer();
const RULE = { capacity: 1e9, refillPerSecond: 1 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('sentinels down, this process stalled past the socket timeout: takes sent as the connections reconnect are decided', { skip, timeout: 120_000 }, async () => {
  const own = await ThrowawaySentinel.start(1_000);
  // Command timeout 500 ms: socket timeout 1 s (silenceBound), so a 2.5 s stall times out every connection.
  const store = createRedisKvStore({ sentinel: own.target, keyPrefix: uniquePrefix('sentinel-down-blip'), commandTimeoutMs: 500 });
  try {
    await untilAnswering(store);
    await killSentinelsUntilMasterLink(own, store);
    const refused: string[] = [];
    for (let round = 0; round < 3; round++) {
      const until = Date.now() + 2_500;
      while (Date.now() < until); // the stall
      await sleep(1); // the overdue timers run: the connections close and reconnect
      const takes: Promise<void>[] = [];
      for (let i = 0; i < 10; i++) {
        takes.push(store.take('bucket', RULE).then(() => undefined, (err: Error) => void refused.push(`round ${round}, take ${i}: ${err.message}`)));
        await sleep(20);
      }
      await Promise.all(takes);
      await sleep(1_000);
    }
    assert.deepEqual(refused, [], 'takes refused while the master was up');
  } finally {
    await store.close();
    await own.stop();
  }
});
