// 5d18041 gives up a single Redis server's connection gone silent and records why (SilentConnectionError, the store's
// lastError: /status and the 503s' connection cause). The destroyed client's own errors were passed on as well: its
// ping, stuck on the dead link, failed with node-redis's DisconnectsClientError a moment later and took the cause's
// place, so the operator read "DisconnectsClientError" for a link a firewall dropped. Our own redis-server on a free
// port behind a TCP link the test black-holes; never the shared one on 6379.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { IN_CI } from '../helpers/http.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';
import { waitForPing } from '../helpers/wait.js';
import { freePort, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: the outage suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a silent link given up is recorded as silent, not as the destroyed client\'s own errors', { skip }, async () => {
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  after(() => redis.kill());
  const link = await startTcpForwarder('127.0.0.1', redis.port);
  after(() => link.close());
  const kv = createRedisKvStore({ url: `redis://127.0.0.1:${link.port}`, keyPrefix: `portcullis-test:silent-cause:${runId()}:`, commandTimeoutMs: 500 });
  after(() => kv.close());
  await waitForPing(kv);
  assert.equal(kv.lastError, undefined);

  link.blackHole(); // the open connection goes silent both ways; new ones forward as usual
  let recovered = false;
  for (const started = Date.now(); !recovered && Date.now() - started < 20_000; ) {
    recovered = await kv.ping().then(() => true, () => false);
    if (!recovered) await sleep(200);
  }
  assert.ok(recovered, 'served again on a new connection');
  await sleep(1_000); // the destroyed client's late errors, if any, have come by now
  assert.equal(kv.lastError, 'SilentConnectionError');
});
