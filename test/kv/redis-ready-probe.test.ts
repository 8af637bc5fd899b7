// The Redis store's readiness probe and data-loss marker, on a redis-server of our own (INFO commandstats and DBSIZE
// count this file's commands and keys only): ready() is one EVALSHA that leaves no key behind, also after SCRIPT
// FLUSH (one EVAL more), and is refused by a replica (which makes the store reconnect); dataLost() says true once
// per loss of the marker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '@redis/client';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { KvUnavailableError } from '../../src/kv/kv-store.js';
import { waitForPing } from '../helpers/wait.js';
import { freePort, redisServerInstalled, ThrowawayRedis } from './redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: must not skip)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

test('ready(): one EVALSHA, no key left, NOSCRIPT falls back; refused by a replica; dataLost() after FLUSHALL', { skip }, async (t) => {
  const server = new ThrowawayRedis(await freePort());
  await server.start();
  t.after(() => server.kill());
  const store = createRedisKvStore({ url: server.url, keyPrefix: 'review9-probe:' });
  t.after(() => store.close());
  const admin = createClient({ url: server.url });
  admin.on('error', () => undefined); // the server may be stopped first
  await admin.connect();
  t.after(() => admin.destroy());
  await waitForPing(store);

  const calls = async (): Promise<Record<string, number>> => {
    const stats = await admin.sendCommand<string>(['INFO', 'commandstats']);
    const out: Record<string, number> = {};
    for (const [, name, n] of stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[name!] = Number(n);
    return out;
  };
  const delta = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(after)
        .map(([name, n]) => [name, n - (before[name] ?? 0)] as const)
        .filter(([name, n]) => n > 0 && name !== 'info' && name !== 'ping'),
    );

  await store.ready(); // the first one loads the script (NOSCRIPT, then EVAL)
  let before = await calls();
  await store.ready();
  assert.deepEqual(delta(before, await calls()), { evalsha: 1, set: 1, del: 1 }, 'one EVALSHA running one SET and one DEL');
  assert.equal(await admin.dbSize(), 0, 'the probe leaves no key');

  await admin.sendCommand(['SCRIPT', 'FLUSH']);
  before = await calls();
  await store.ready();
  assert.deepEqual(delta(before, await calls()), { evalsha: 1, eval: 1, set: 1, del: 1 }, 'NOSCRIPT: EVAL once');

  await admin.sendCommand(['REPLICAOF', '127.0.0.1', String(await freePort())]);
  await assert.rejects(store.ready(), KvUnavailableError, 'a replica refuses the probe');
  // READONLY made the store open a new connection (the URL may lead to the promoted master now); PING answers on it.
  await waitForPing(store);
  await assert.rejects(store.ready(), KvUnavailableError, 'still a replica');
  await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']);
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    ready = await store.ready().then(() => true, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'ready once a master again');

  assert.equal(await store.dataLost(), true, 'the first call writes the marker');
  assert.equal(await store.dataLost(), false);
  assert.equal(await store.dataLost(), false);
  await admin.sendCommand(['FLUSHALL']);
  assert.equal(await store.dataLost(), true, 'the marker went with the data');
  assert.equal(await store.dataLost(), false, 'once per loss');
});
