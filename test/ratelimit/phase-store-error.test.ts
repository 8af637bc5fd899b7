// Rate-limit phase when its Redis store fails: on_store_error allow/deny, one log line per outage, sink counts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { freePort, redisServerInstalled, ThrowawayRedis } from '../kv/redis-helpers.js';
import { rateLimitConfig, startLimiterServer, type LimiterTestServer } from './limiter-server.js';

const installed = await redisServerInstalled();
if (!installed && process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: must not skip)');
const skip = installed ? false : 'redis-server not installed; skipped (set CI=true to make this a failure)';

async function waitForStore(store: RedisKvStore): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await store.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error('store did not come back');
}

const eventsNamed = (server: LimiterTestServer, name: string): Array<Record<string, unknown>> =>
  server.logs.filter((line) => line.event === name);

describe('rate-limit phase: store errors', { skip }, () => {
  let redis: ThrowawayRedis;
  let store: RedisKvStore;

  before(async () => {
    redis = new ThrowawayRedis(await freePort());
    store = createRedisKvStore({ url: redis.url, commandTimeoutMs: 300, maxReconnectDelayMs: 100, keyPrefix: 'phase-test:' });
  });
  after(async () => {
    await store.close();
    await redis.kill();
  });

  test('allow: requests pass without RateLimit headers; warn once per outage, info once on recovery', async () => {
    const server = await startLimiterServer(rateLimitConfig(), store);
    try {
      // Redis was never started: the first outage.
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${server.url}/api`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit-limit'), null);
        await res.arrayBuffer();
      }
      assert.equal(server.events.filter((e) => e === 'store_error:proxy').length, 10);
      const warns = eventsNamed(server, 'KV Store Unavailable');
      assert.equal(warns.length, 1);
      assert.equal(warns[0]!.level, 40);
      assert.equal(typeof warns[0]!.cause, 'string'); // the cause's class, e.g. ClientOfflineError
      assert.equal(eventsNamed(server, 'KV Store Recovered').length, 0);

      await redis.start();
      await waitForStore(store);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.url}/api`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit-limit'), '10');
        await res.arrayBuffer();
      }
      const infos = eventsNamed(server, 'KV Store Recovered');
      assert.equal(infos.length, 1);
      assert.equal(infos[0]!.level, 30);
      assert.equal(infos[0]!.failed_decisions, 10);

      // A second outage is logged again, once.
      await redis.kill();
      for (let i = 0; i < 5; i++) await (await fetch(`${server.url}/api`)).arrayBuffer();
      assert.equal(eventsNamed(server, 'KV Store Unavailable').length, 2);
      // No line carries the Redis URL or a stack trace.
      for (const line of server.logs) assert.doesNotMatch(JSON.stringify(line), /redis:\/\/|\bat \w+ \(/);
    } finally {
      await server.close();
    }
  });

  test('deny: 503 KV_UNAVAILABLE with Retry-After, within the command timeout', async () => {
    await redis.kill();
    const server = await startLimiterServer(rateLimitConfig({ on_store_error: 'deny' }), store);
    try {
      const started = performance.now();
      const res = await fetch(`${server.url}/api`);
      assert.ok(performance.now() - started < 1000);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.error, 'Service Unavailable');
      assert.equal(typeof body.request_id, 'string');
      // The login throttle applies the same policy.
      const login = await fetch(`${server.url}/auth/login`, { headers: { 'x-test-email': 'a@example.test' } });
      assert.equal(login.status, 503);
      await login.arrayBuffer();
      // /health never touches the store.
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
    } finally {
      await server.close();
    }
  });
});
