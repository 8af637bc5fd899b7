// A Redis named by an IPv6 literal (`redis://[::1]:port`), as `redis.url` and as a cluster seed. node-redis's
// maintenance handshake looked the host up in DNS with its brackets ("[::1]": ENOTFOUND) and failed every connection
// attempt, so the limiter never reached Redis: every request was let through uncounted (or 503 under deny).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { startRedisLimitedGateway, untilRedisDecides } from '../helpers/redis-limited-gateway.js';
import { freePort } from '../kv/redis-helpers.js';
import { RedisProcess, requireRedisServer, run, scratchDir } from '../kv/redis-processes.js';

/** Whether this host can listen on ::1 (a container without IPv6 cannot; the test then has nothing to check). */
async function loopbackV6(): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

const noServer = await requireRedisServer();
const skip = noServer !== false ? noServer : (await loopbackV6()) ? false : 'no IPv6 loopback here; skipped';

const client = createClient();
const backend = await startBackend('ipv6');
const dir = scratchDir('review3-ipv6');
const servers: RedisProcess[] = [];
const gateways: InProcessGateway[] = [];
after(async () => {
  await Promise.allSettled(gateways.map((g) => g.close()));
  await Promise.allSettled(servers.map((s) => s.kill()));
  dir.remove();
  await client.close();
  await backend.stop();
});

/** A redis-server of our own listening on 127.0.0.1 and ::1; `extra` are more arguments (cluster mode). */
async function server(extra: readonly string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1 ::1', '--save', '', '--appendonly', 'no', '--dir', dir.path, ...extra];
  const proc = await RedisProcess.spawn(port, args, join(dir.path, `${port}.log`));
  servers.push(proc);
  return proc;
}

/** A gateway limiting by address with `redis`, refusing (503) while Redis cannot decide: a 200 means Redis decided. */
async function gateway(redis: Record<string, unknown>): Promise<InProcessGateway> {
  const keyPrefix = `portcullis-test:review3-ipv6:${process.pid}:`;
  const gw = await startRedisLimitedGateway({ redis, keyPrefix, backendPort: backend.port, requestsPerMinute: 60, burstSize: 5 });
  gateways.push(gw);
  return gw;
}

/** Waits until the limiter decides through Redis (200 with its headers), then checks the count goes down by one. */
async function assertLimited(gw: InProcessGateway): Promise<void> {
  const remaining = await untilRedisDecides(client, gw, 8_000);
  const next = await client.request(`${gw.url}/a`);
  assert.equal(next.status, 200);
  assert.equal(Number(next.headers['ratelimit-remaining']), remaining - 1, 'each request spends one token in Redis');
}

test('redis.url with an IPv6 literal, a password with URL characters and a database number', { skip }, async () => {
  const redis = await server();
  const password = 'p@ss:w/rd#?% é';
  await run('redis-cli', ['-p', String(redis.port), 'CONFIG', 'SET', 'requirepass', password], 5_000);
  const gw = await gateway({ url: `redis://:${encodeURIComponent(password)}@[::1]:${redis.port}/3` });
  await assertLimited(gw);
  const keys = await run('redis-cli', ['-p', String(redis.port), '--no-auth-warning', '-a', password, '-n', '3', 'DBSIZE'], 5_000);
  assert.equal(Number(keys.trim()), 1, 'the bucket lives in database 3');
});

test('redis.cluster with an IPv6 literal seed', { skip }, async () => {
  // A bus port of our own: the default, port + 10000, may be taken (it was once in CI: redis-server exited at bind).
  const bus = await freePort();
  const node = await server(['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir.path, 'nodes.conf'), '--cluster-require-full-coverage', 'no']);
  await run('redis-cli', ['-p', String(node.port), 'CLUSTER', 'ADDSLOTSRANGE', '0', '16383'], 5_000);
  await waitFor('the one-node cluster to be ok', async () => (await run('redis-cli', ['-p', String(node.port), 'CLUSTER', 'INFO'], 5_000)).includes('cluster_state:ok'), 10_000);
  const gw = await gateway({ cluster: [`redis://[::1]:${node.port}`] });
  await assertLimited(gw);
});
