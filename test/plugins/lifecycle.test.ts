// Plugin lifecycle and API: reload re-creates only changed instances (closing the old), a refused reload changes
// nothing, shutdown closes every instance; hooks after auth; api.store namespaced in Redis; api.metrics on /metrics.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedis } from '@redis/client';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';
import { events, fixture } from './helpers.js';

const client = createClient();
after(() => client.close());

describe('plugin reload and shutdown', () => {
  test('reload re-creates changed instances (closing the old), keeps the rest; shutdown closes all', async () => {
    const backend = await startBackend('echo');
    const log = events('reload');
    log.length = 0;
    const rec = (tag: string) => ({ module: fixture('recorder.mjs'), config: { tag, channel: 'reload' } });
    const base = {
      server: { listen_host: '127.0.0.1', listen_port: 0 },
      // What startInProcess adds, so the reloads change nothing a restart would need.
      admin: { listen_host: '127.0.0.1', listen_port: 0 },
      logging: { format: 'json', level: 'info' },
      load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    };
    const gw = await startInProcess({
      ...base,
      plugins: [{ name: 'a', ...rec('A') }, { name: 'b', ...rec('B') }, { name: 'c', ...rec('C') }],
      middleware: { plugins: ['a', 'b', 'c'] },
    });
    try {
      assert.deepEqual(log, ['A:create', 'B:create', 'C:create']);
      assert.equal((await client.request(`${gw.url}/`)).headers['x-trace'], 'A,B,C');
      log.length = 0;
      // b's config changes, c goes, d comes, a stays as it was.
      await gw.gateway.reload(
        parseConfigObject({
          ...base,
          plugins: [{ name: 'a', ...rec('A') }, { name: 'b', module: fixture('recorder.mjs'), config: { tag: 'B2', channel: 'reload' } }, { name: 'd', ...rec('D') }],
          middleware: { plugins: ['d', 'b', 'a'] },
        }),
      );
      await waitUntil(() => log.includes('C:close') && log.includes('B:close'));
      assert.deepEqual([...log].sort(), ['B2:create', 'B:close', 'C:close', 'D:create']);
      assert.equal((await client.request(`${gw.url}/`)).headers['x-trace'], 'D,B2,A');
      // A reload that cannot load a module changes nothing, and closes what it had created.
      log.length = 0;
      await assert.rejects(
        gw.gateway.reload(
          parseConfigObject({
            ...base,
            plugins: [{ name: 'e', ...rec('E') }, { name: 'f', module: '/nonexistent/plugin.mjs' }],
            middleware: { plugins: ['e'] },
          }),
        ),
        /plugins\[1\]\.module: cannot load \/nonexistent\/plugin\.mjs: not found/,
      );
      assert.deepEqual(log, []);
      assert.equal((await client.request(`${gw.url}/`)).headers['x-trace'], 'D,B2,A');
    } finally {
      log.length = 0;
      await gw.close();
      await backend.stop();
    }
    assert.deepEqual([...log].sort(), ['A:close', 'B2:close', 'D:close']);
  });
});

describe('plugins after auth, with their store and metrics', () => {
  test('a refused request never reaches onRequest but its response hooks run; ctx.user is the caller', async () => {
    const backend = await startBackend('echo');
    const gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, plugins: ['counter'] },
      plugins: [{ name: 'counter', module: fixture('counter.mjs'), config: { limit: 2 } }],
    });
    try {
      const refused = await client.request(`${gw.url}/private`);
      assert.equal(refused.status, 401);
      assert.equal(refused.headers['x-user-seen'], 'anonymous', 'onResponse ran on the gateway-made 401');
      assert.equal(refused.headers['x-count'], undefined, 'onRequest never ran');
      const session = (await client.postJson(`${gw.url}/auth/register`, { email: 'plugin@example.com', password: 'SecurePass123!' })).json();
      const auth = { authorization: `Bearer ${session.access_token as string}` };
      const first = await client.request(`${gw.url}/private`, { headers: auth });
      assert.equal(first.status, 200);
      assert.equal(first.headers['x-user-seen'], 'plugin@example.com');
      assert.equal(first.headers['x-count'], '1');
      assert.equal((await client.request(`${gw.url}/private`, { headers: auth })).headers['x-count'], '2');
      const third = await client.request(`${gw.url}/private`, { headers: auth });
      assert.equal(third.status, 429);
      assert.deepEqual(third.json(), { error: 'counter says no' });
      const metrics = await client.request(`${gw.adminUrl!}/metrics`);
      assert.match(metrics.text, /portcullis_plugin_counter_requests_total\{outcome="passed"\} 2/);
      assert.match(metrics.text, /portcullis_plugin_counter_requests_total\{outcome="refused"\} 1/);
    } finally {
      await gw.close();
      await backend.stop();
    }
  });

  test('api.store lives in Redis under the plugin\'s own namespace', async (t) => {
    const skip = await requireRedis();
    if (skip) return t.skip(skip);
    const keyPrefix = uniquePrefix('plugins');
    const backend = await startBackend('echo');
    const redis = createRedis({ url: REDIS_URL });
    await redis.connect();
    const gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      redis: { url: REDIS_URL, key_prefix: keyPrefix },
      middleware: { plugins: ['quota'] },
      plugins: [{ name: 'quota', module: fixture('counter.mjs'), config: { limit: 100 } }],
    });
    try {
      let res = await client.request(`${gw.url}/`);
      for (let i = 0; i < 20 && res.status !== 200; i++) res = await client.request(`${gw.url}/`); // Redis connects in the background
      assert.equal(res.status, 200);
      const keys = (await redis.keys(`${keyPrefix}*`)).sort();
      assert.deepEqual(keys, [`${keyPrefix}v:{plugin:quota:ip:127.0.0.1}`, `${keyPrefix}v:{plugin:quota:last}`]);
      assert.equal(await redis.get(`${keyPrefix}v:{plugin:quota:last}`), res.headers['x-request-id']);
      const ttl = await redis.pTTL(`${keyPrefix}v:{plugin:quota:ip:127.0.0.1}`);
      assert.ok(ttl > 50_000 && ttl <= 60_000, `ttl ${ttl}`);
    } finally {
      await gw.close();
      await backend.stop();
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(keys);
      await redis.close();
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
