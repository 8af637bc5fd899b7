// Every sentinel down and the master down too: each command waits for the master link within its command timeout
// (redis-sentinel.ts whenReady), and is then let go. The first version kept every waiter until the link was ready
// again: 3.3 KB a refused command, 327 MB after 100,000 (about 3 MB a second at 1,000 requests a second), all of
// them run at once, a 1.7 s stall of the event loop, when the master came back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { uniquePrefix } from './redis-helpers.js';
import { killSentinelsUntilMasterLink, RedisProcess, requireRedisServer, ThrowawaySentinel, untilAnswering } from './redis-processes.js';

const skip = await requireRedisServer();
const RULE = { capacity: 1e9, refillPerSecond: 1 };
const TAKES = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test(`sentinels and master down: ${TAKES} refused takes leave nothing behind, and the master's return is followed`, { skip, timeout: 120_000 }, async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const own = await ThrowawaySentinel.start(1_000);
  const store = createRedisKvStore({ sentinel: own.target, keyPrefix: uniquePrefix('sentinel-all-down'), commandTimeoutMs: 200 });
  let master: RedisProcess | undefined;
  const masterLog = join(tmpdir(), `portcullis-sentinel-all-down-${process.pid}.log`);
  try {
    await untilAnswering(store);
    await killSentinelsUntilMasterLink(own, store);
    const masterPort = own.master.port;
    await own.master.kill();
    await sleep(1_000); // the link has seen it go
    gc();
    const before = process.memoryUsage().heapUsed;
    let refused = 0;
    for (let sent = 0; sent < TAKES; sent += 2_000) {
      await Promise.all(Array.from({ length: 2_000 }, () => store.take('bucket', RULE).then(() => undefined, () => void refused++)));
    }
    await sleep(300); // the waiters' own deadlines (100 ms past the command's)
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    assert.equal(refused, TAKES);
    assert.ok(grown < 16 << 20, `${(grown / 2 ** 20).toFixed(1)} MiB held after ${TAKES} refused takes`);
    master = await RedisProcess.spawn(masterPort, ['--port', String(masterPort), '--save', '', '--appendonly', 'no'], masterLog);
    let decided = false;
    const back = Date.now() + 15_000;
    while (!decided && Date.now() < back) {
      decided = await store.take('bucket', RULE).then(() => true, () => false);
      if (!decided) await sleep(50);
    }
    assert.ok(decided, 'decided on the master link once the master is back');
  } finally {
    await store.close().catch(() => undefined);
    await master?.kill();
    await own.stop();
    rmSync(masterLog, { force: true });
  }
});
