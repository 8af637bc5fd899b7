// A gateway on a healthy Redis started with portcullis_store_errors_total{store="redis"} at 1: the change poller's
// first look at the revocation marker (made during start-up) ran while the Redis connection was still being made,
// failed fast on the offline client, and was counted as a Redis failure, the metric operators alert on. Start-up now
// waits for the first connection, bounded by redis.command_timeout. The Redis here is reached through a proxy that
// holds each new connection 300 ms before passing it on, as a Redis across a slow network would.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { sampleValue } from '../helpers/prometheus.js';
import { REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skip = await requireRedis(); // throws under CI=true when Redis is missing

/** A TCP proxy to `target` that waits `holdMs` after accepting a connection before it connects and relays. */
async function slowProxy(target: URL, holdMs: number): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.pause();
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    setTimeout(() => {
      if (client.destroyed) return;
      const upstream = connect(Number(target.port || 6379), target.hostname);
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    }, holdMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a gateway started on a Redis slow to connect counts no store error for it', { skip }, async () => {
  const proxy = await slowProxy(new URL(REDIS_URL), 300);
  after(() => proxy.close());
  const client = createClient();
  after(() => client.close());
  const gw = await startInProcess({
    redis: { url: proxy.url, key_prefix: `portcullis-test:review14-startup-connect:${runId()}:` },
    jwt: { secret: TEST_SECRET },
    load_balancing: { upstreams: upstreams([1]) },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  });
  after(() => gw.close());
  assert.ok(gw.adminUrl !== undefined, 'the admin port (port 0)');
  // Past the poller's next looks (once a second), which meet the connection up either way.
  await sleep(1_500);
  const metrics = await client.request(`${gw.adminUrl}/metrics`);
  assert.equal(metrics.status, 200, metrics.text.slice(0, 200));
  // Before the fix: 1, the start-up look.
  assert.equal(sampleValue(metrics.text, 'portcullis_store_errors_total', { store: 'redis' }), 0);
  const health = await client.request(`${gw.url}/health`);
  assert.equal(health.status, 200, health.text);
});
