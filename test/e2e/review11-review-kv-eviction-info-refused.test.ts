// The change poller's look at the eviction policy (INFO memory, once a minute: 890b12c) on a Redis whose ACL refuses
// INFO, as managed services often do (NOPERM): the look is given up until the next minute, by design. But the refusal
// went through the store's failure counter like an outage, so portcullis_store_errors_total{store="redis"}, the
// metric an operator alerts on for Redis failing the gateway's requests, grew once a minute on a healthy Redis.
// Our own redis-server on a free port. The test counts store errors: it also shows that the change poller's first look
// at start-up no longer meets the Redis connection still being made (review14-kv-startup-connect), which, after
// review11-kv-replica-foreign-data in one process (a batch), it did every time.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

test('INFO refused by the ACL: no store error counted, no line, and the gateway serves', { skip }, async () => {
  const dir = scratchDir('review11-review-info-refused');
  after(() => dir.remove());
  const port = await freePort();
  const redis = await RedisProcess.spawn(
    port,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru'],
    `${dir.path}/redis.log`,
  );
  after(() => redis.kill());
  const admin = createRedisClient({ url: redis.url });
  admin.on('error', () => undefined);
  await admin.connect();
  after(() => admin.destroy());
  // Every command but INFO for the default user (the gateway's), as a managed service's restricted user; the test
  // reads Redis's counters as a user of its own.
  await admin.sendCommand(['ACL', 'SETUSER', 'tester', 'on', '>tester-password', '~*', '&*', '+@all']);
  await admin.sendCommand(['ACL', 'SETUSER', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-info']);
  await admin.sendCommand(['AUTH', 'tester', 'tester-password']);
  const client = createClient();
  after(() => client.close());
  const gw = await startInProcess({
    redis: { url: redis.url, key_prefix: 'portcullis-test:review11-review-info-refused:' },
    jwt: { secret: TEST_SECRET },
    load_balancing: { upstreams: upstreams([1]) },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  });
  after(() => gw.close());
  assert.ok(gw.adminUrl !== undefined, 'the admin port (port 0)');

  // The refusal, as Redis logged it; then two more polls of the marker, each after the previous one ended.
  const refusedInfo = async () => JSON.stringify(await admin.sendCommand(['ACL', 'LOG'])).includes('"info"');
  await waitFor('the INFO refused (ACL LOG)', refusedInfo, 10_000);
  const gets = async () => Number(/cmdstat_get:calls=(\d+)/.exec(String(await admin.sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);
  const seen = await gets().catch(() => 0);
  await waitFor('two more polls', async () => (await gets()) >= seen + 2, 10_000);

  const metrics = await client.request(`${gw.adminUrl}/metrics`);
  assert.equal(metrics.status, 200, metrics.text.slice(0, 200));
  // Before the fix: 1 (and one more each minute).
  assert.equal(sampleValue(metrics.text, 'portcullis_store_errors_total', { store: 'redis' }), 0);
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Redis May Evict Revocations'), [], 'nothing said on a failed look');
  const health = await client.request(`${gw.url}/health`);
  assert.equal(health.status, 200, health.text);
});
