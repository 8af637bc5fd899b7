// Rate-limit phase when its Redis store fails: on_store_error allow/deny, one log line per outage (with hysteresis:
// a store that flaps is one outage), the connection error's class and code in it, sink counts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BucketRule, KvStore, TakeResult } from '../../src/kv/kv-store.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
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
    const server = await startLimiterServer(rateLimitConfig(), store, { quietMs: 300 });
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
      // Recovery is declared at an answer that comes `quietMs` after the last failure, not at the first answer.
      await new Promise((r) => setTimeout(r, 350));
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

/** Lines that would betray a secret or internals: the URL, an address, a password, the server's own words, a stack. */
function assertNothingSecret(logs: Array<Record<string, unknown>>, ...secrets: string[]): void {
  for (const line of logs) {
    const text = JSON.stringify(line);
    assert.doesNotMatch(text, /redis:\/\/|127\.0\.0\.1|invalid username|Authentication required|\bat \w+ \(/, text);
    for (const secret of secrets) assert.ok(!text.includes(secret), `a line carries a secret: ${text}`);
  }
}

/**
 * A two-server store, as a Redis Cluster with one slot range down looks to the limiter: the buckets of users named
 * "dead*" live on `dead`, every other bucket on `live`.
 */
function splitStore(live: KvStore, dead: KvStore): KvStore {
  const memory = createMemoryKvStore();
  return {
    take: (key: string, rule: BucketRule): TakeResult | Promise<TakeResult> => (key.startsWith('u:dead') ? dead : live).take(key, rule),
    revoke: (...a) => memory.revoke(...a),
    isRevoked: (...a) => memory.isRevoked(...a),
    revokeSubject: (...a) => memory.revokeSubject(...a),
    getValue: (...a) => memory.getValue(...a),
    setValue: (...a) => memory.setValue(...a),
    increment: (...a) => memory.increment(...a),
    ping: () => live.ping(),
    close: async () => undefined,
  };
}

describe('rate-limit phase: a store that flaps is one outage', { skip }, () => {
  let redis: ThrowawayRedis;
  let live: RedisKvStore;
  let dead: RedisKvStore;
  before(async () => {
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    live = createRedisKvStore({ url: redis.url, commandTimeoutMs: 300, maxReconnectDelayMs: 100, keyPrefix: 'flap-test:' });
    // Nothing listens there: every command fails at once (the dead master of a slot range).
    dead = createRedisKvStore({ url: `redis://127.0.0.1:${await freePort()}`, commandTimeoutMs: 300, maxReconnectDelayMs: 100 });
    await waitForStore(live);
  });
  after(async () => {
    await live?.close();
    await dead?.close();
    await redis?.kill();
  });

  test('partial outage (a cluster slot range down): answers and failures alternate, one Unavailable, one Recovered with the exact count', async () => {
    const server = await startLimiterServer(rateLimitConfig({ requests_per_minute: 6000, burst_size: 1000 }), splitStore(live, dead), { quietMs: 1500 });
    try {
      for (let i = 0; i < 60; i++) {
        const res = await fetch(`${server.url}/api`, { headers: { 'x-test-user': i % 2 === 0 ? 'dead-user' : 'live-user' } });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      // Before: every answer on the live server wrote Recovered and the next failure Unavailable (60 lines here).
      const unavailable = eventsNamed(server, 'KV Store Unavailable');
      assert.equal(unavailable.length, 1, JSON.stringify(unavailable));
      assert.equal(unavailable[0]!.connection_error, 'Error(ECONNREFUSED)');
      assert.equal(eventsNamed(server, 'KV Store Recovered').length, 0);
      // The metric still counts every failed decision.
      assert.equal(server.events.filter((e) => e === 'store_error:proxy').length, 30);

      // The dead range stops failing (nobody asks it): after the quiet period, the next answer ends the outage.
      await new Promise((r) => setTimeout(r, 1600));
      await (await fetch(`${server.url}/api`, { headers: { 'x-test-user': 'live-user' } })).arrayBuffer();
      const recovered = eventsNamed(server, 'KV Store Recovered');
      assert.equal(recovered.length, 1);
      assert.equal(recovered[0]!.failed_decisions, 30);
      assertNothingSecret(server.logs);
    } finally {
      await server.close();
    }
  });

  test('a single Redis that stalls now and then (timeouts between answers): one outage, not one per stall', async () => {
    const server = await startLimiterServer(rateLimitConfig({ requests_per_minute: 6000, burst_size: 1000 }), live);
    try {
      for (let cycle = 0; cycle < 4; cycle++) {
        redis.signal('SIGSTOP');
        try {
          const res = await fetch(`${server.url}/api`);
          assert.equal(res.status, 200, 'allow: a timed-out decision lets the request through');
          assert.equal(res.headers.get('ratelimit-limit'), null);
          await res.arrayBuffer();
        } finally {
          redis.signal('SIGCONT');
        }
        await waitForStore(live);
        const res = await fetch(`${server.url}/api`);
        assert.equal(res.headers.get('ratelimit-limit'), '1000', 'decided by Redis again');
        await res.arrayBuffer();
      }
      const unavailable = eventsNamed(server, 'KV Store Unavailable');
      assert.equal(unavailable.length, 1, JSON.stringify(unavailable));
      assert.equal(unavailable[0]!.cause, 'CommandTimeoutError');
      assert.equal(eventsNamed(server, 'KV Store Recovered').length, 0, 'the default quiet period (5 s) has not passed');
      assert.equal(server.events.filter((e) => e === 'store_error:proxy').length, 4);
    } finally {
      await server.close();
    }
  });
});

describe('rate-limit phase: why the store is unavailable', { skip }, () => {
  test('a wrong password and a refused connection are told apart (class and code), with no secret in any line', async () => {
    const protectedRedis = new ThrowawayRedis(await freePort(), { password: 'sekrit-pw-1' });
    await protectedRedis.start();
    const wrong = createRedisKvStore({ url: `redis://:wrong-pw-2@127.0.0.1:${protectedRedis.port}`, commandTimeoutMs: 300, maxReconnectDelayMs: 100 });
    const refused = createRedisKvStore({ url: `redis://:other-pw-3@127.0.0.1:${await freePort()}`, commandTimeoutMs: 300, maxReconnectDelayMs: 100 });
    const servers: LimiterTestServer[] = [];
    try {
      const causes: Record<string, unknown> = {};
      for (const [name, store] of [['wrong', wrong], ['refused', refused]] as const) {
        for (let i = 0; i < 100 && store.lastError === undefined; i++) await new Promise((r) => setTimeout(r, 20));
        const server = await startLimiterServer(rateLimitConfig({ on_store_error: 'deny' }), store);
        servers.push(server);
        for (let i = 0; i < 5; i++) {
          const res = await fetch(`${server.url}/api`);
          assert.equal(res.status, 503);
          await res.arrayBuffer();
        }
        const lines = eventsNamed(server, 'KV Store Unavailable');
        assert.equal(lines.length, 1);
        assert.equal(lines[0]!.policy, 'deny');
        assert.equal(lines[0]!.source, 'rate_limit');
        causes[name] = lines[0]!.connection_error;
        assertNothingSecret(server.logs, 'sekrit-pw-1', 'wrong-pw-2', 'other-pw-3');
      }
      assert.deepEqual(causes, { wrong: 'SimpleError(WRONGPASS)', refused: 'Error(ECONNREFUSED)' });
      assert.equal(wrong.lastError, 'SimpleError(WRONGPASS)');
    } finally {
      for (const server of servers) await server.close();
      await wrong.close();
      await refused.close();
      await protectedRedis.kill();
    }
  });
});
