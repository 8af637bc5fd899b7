// /ready names the user store (PostgreSQL) and Redis when they go away, and turns ready again when they return.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';
import { freePort, redisServerInstalled, ThrowawayRedis } from '../kv/redis-helpers.js';

// Both throw (the file fails) under CI=true when their server is missing; otherwise a skip message.
const pgSkip = await requirePostgres();
const redisInstalled = await redisServerInstalled();
if (!redisInstalled && process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: must not skip)');
const skip = pgSkip || (redisInstalled ? false : 'redis-server is not installed');

test('/ready flips for PostgreSQL and for Redis, each named, and recovers by itself', { skip }, async () => {
  const client = createClient();
  const backend = await startBackend('a');
  const target = new URL(DATABASE_URL);
  const pg = await startTcpForwarder(target.hostname, Number(target.port || 5432));
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  after(async () => {
    await client.close();
    await pg.close();
    await redis.kill();
    await backend.stop();
  });
  const viaForwarder = new URL(DATABASE_URL);
  viaForwarder.port = String(pg.port);
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    database: { url: viaForwarder.toString() },
    redis: { url: redis.url },
    jwt: { secret: 'readiness-test-secret-0123456789abcdef' },
    middleware: { auth: { enabled: true, argon2: { memory_kib: 1024, iterations: 1, parallelism: 1 } } },
  });
  after(() => gw.close());
  const ready = async () => {
    const res = await client.request(`${gw.adminUrl}/ready`);
    return { status: res.status, checks: res.json<{ checks?: Record<string, string> }>().checks };
  };
  // Redis connects in the background after start-up: ready once it has.
  await waitFor(async () => (await ready()).status === 200, 'ready after start-up', 10_000);

  await pg.cut();
  await waitFor(async () => (await ready()).status === 503, 'not ready without PostgreSQL', 10_000);
  assert.equal((await ready()).checks?.user_store, 'down');
  await pg.restore();
  await waitFor(async () => (await ready()).status === 200, 'ready again with PostgreSQL', 15_000);

  await redis.kill();
  await waitFor(async () => (await ready()).status === 503, 'not ready without Redis', 10_000);
  const down = await ready();
  assert.equal(down.checks?.redis, 'down');
  assert.equal(down.checks?.user_store, 'ok');
  await redis.start();
  await waitFor(async () => (await ready()).status === 200, 'ready again with Redis', 15_000);
});
