// API keys while the revocation store (Redis) is down, under middleware.auth.on_store_error: allow. The key is let
// through (the configured fail-open), and the outage reaches the one outage log (kv/outage.ts) as a JWT's revocation
// check does: "KV Store Unavailable" (source revocation, policy allow) then "KV Store Recovered". Our own
// redis-server on a free port, stopped mid-test; never the shared one on 6379.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { waitFor } from '../helpers/prometheus.js';
import { authConfig, freePort, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: the outage suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const client = createClient();
after(() => client.close());

test('on_store_error allow: an API key is admitted while Redis is down, and the outage is logged (never the key)', { skip }, async () => {
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  after(() => redis.kill());
  const gw = await startInProcess({
    redis: { url: redis.url, key_prefix: `portcullis-test:api-key-outage:${runId()}:`, command_timeout: '300ms' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    // No rate limit: the API-key check is the only thing that reads Redis on a proxied request.
    middleware: { auth: authConfig({ on_store_error: 'allow' }) },
    admin: { token: ADMIN_TOKEN },
  });
  after(() => gw.close());
  await waitFor('the gateway to reach redis', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 10_000);
  const created = await adminApi(client, gw.adminUrl!).post('/admin/api-keys', { name: 'billing' });
  assert.equal(created.status, 201, created.text);
  const key = created.json<{ id: string; key: string }>();
  const get = (path: string) => client.request(`${gw.url}${path}`, { headers: { 'x-api-key': key.key } });
  assert.equal((await get('/before')).status, 200);
  const messages = (msg: string) => gw.logs.filter((l) => l.msg === msg);
  assert.equal(messages('KV Store Unavailable').length, 0);

  await redis.kill();
  for (let i = 0; i < 5; i++) {
    const res = await get(`/during/${i}`);
    assert.equal(res.status, 200, `request ${i} during the outage: allow lets the key through`);
    assert.equal(res.json<{ headers: Record<string, string> }>().headers['x-consumer-id'], key.id);
  }
  // One line for the outage (hysteresis), saying whose check failed and which policy let the key through.
  const unavailable = messages('KV Store Unavailable');
  assert.equal(unavailable.length, 1, JSON.stringify(unavailable));
  assert.equal(unavailable[0]!.level, 40);
  assert.equal(unavailable[0]!.source, 'revocation');
  assert.equal(unavailable[0]!.policy, 'allow');
  assert.match(String(unavailable[0]!.connection_error), /^(SocketClosedUnexpectedlyError|Error\((ECONNREFUSED|ECONNRESET)\))$/);

  // Redis back (fresh, empty, same port): the first answer 5 s after the last failure ends the outage.
  await redis.start();
  await waitFor('the recovery line', async () => {
    assert.equal((await get('/after')).status, 200);
    return messages('KV Store Recovered').length > 0;
  }, 20_000);
  assert.equal(messages('KV Store Recovered').length, 1);
  assert.ok(Number(messages('KV Store Recovered')[0]!.failed_decisions) >= 5);

  // No line of the gateway's log holds the key, nor its secret part.
  const secret = key.key.slice(key.key.lastIndexOf('_') + 1);
  const log = JSON.stringify(gw.logs);
  assert.ok(!log.includes(secret), 'the key never reaches the log');
});
