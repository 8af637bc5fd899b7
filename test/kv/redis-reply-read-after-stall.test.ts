// A reply Redis sent in time is not thrown away because this process's event loop stalled past the command
// timeout. After a stall (CPU starvation, a GC pause, a long synchronous task), the overdue timer ran in the timers
// phase, before the poll phase read the reply already waiting in the socket: a take Redis had decided, its token
// spent, was answered 503 (on_store_error: deny). Found under a loaded CI, where the gateway runs in the test's process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { REDIS_URL, requireRedis, uniquePrefix } from './redis-helpers.js';
import { untilAnswering } from './redis-processes.js';

const skip = await requireRedis();

const RULE = { capacity: 1e9, refillPerSecond: 1 };

test('a take whose reply came during a 700 ms stall of this process is still decided (command timeout 500 ms)', { skip }, async () => {
  const store = createRedisKvStore({ url: REDIS_URL, keyPrefix: uniquePrefix('reply-after-stall'), commandTimeoutMs: 500 });
  try {
    await untilAnswering(store);
    await store.take('bucket', RULE); // the script loaded: each take below is one EVALSHA
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const take = store.take('bucket', RULE).then(() => 'decided', (err: Error) => `refused: ${err.message}`);
      // Two turns, so the command is on the wire before the stall (as a request's take is, in the gateway).
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      const until = Date.now() + 700;
      while (Date.now() < until); // Redis answers within a millisecond; this process reads it after the stall
      outcomes.push(await take);
    }
    assert.deepEqual(outcomes, Array(5).fill('decided'));
  } finally {
    await store.close();
  }
});
