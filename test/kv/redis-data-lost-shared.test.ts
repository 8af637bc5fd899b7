// Two gateways (or two workers of one) on one Redis and key prefix: when Redis lost its data, only the store whose
// SET NX of the marker came first was told (87727c7), so only its gateway wrote the revocations again. When that one
// could not (its user store out of reach, or it stopped part way), no gateway did, and every logged-out token was
// accepted until it expired, although README promises every running gateway writes them again. Each store now also
// reads the marker's value with its SET: a value written since its previous call tells it the loss as well. Our own
// redis-server on a free port (FLUSHALL), never the shared one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '@redis/client';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { waitForPing } from '../helpers/wait.js';
import { freePort, redisServerInstalled, ThrowawayRedis } from './redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: must not skip)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

test('dataLost(): every store sharing the marker is told of a loss once, whichever wrote the marker again', { skip }, async (t) => {
  const server = new ThrowawayRedis(await freePort());
  await server.start();
  t.after(() => server.kill());
  const admin = createClient({ url: server.url });
  admin.on('error', () => undefined);
  await admin.connect();
  t.after(() => admin.destroy());
  const [a, b, other] = ['review9-shared:', 'review9-shared:', 'review9-other:'].map((keyPrefix) => createRedisKvStore({ url: server.url, keyPrefix }));
  t.after(() => Promise.all([a!, b!, other!].map((s) => s.close())));
  for (const s of [a!, b!, other!]) await waitForPing(s);

  assert.equal(await a!.dataLost(), true, 'the first call writes the marker');
  assert.equal(await b!.dataLost(), false, 'found in place at its first call');
  assert.equal(await other!.dataLost(), true, 'another prefix, another marker');
  for (const s of [a!, b!, other!]) assert.equal(await s.dataLost(), false, 'nothing lost since');

  await admin.sendCommand(['FLUSHALL']);
  assert.equal(await a!.dataLost(), true, 'the first to ask after the loss');
  assert.equal(await b!.dataLost(), true, 'told too, though the marker is back');
  assert.equal(await a!.dataLost(), false, 'once per loss');
  assert.equal(await b!.dataLost(), false, 'once per loss');

  await admin.sendCommand(['FLUSHALL']);
  assert.equal(await b!.dataLost(), true);
  assert.equal(await a!.dataLost(), true);
  assert.equal(await other!.dataLost(), true, 'its marker went with the data too');
  for (const s of [a!, b!, other!]) assert.equal(await s.dataLost(), false);
});
