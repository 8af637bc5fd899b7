// Redis URLs with an upper-case scheme (`REDIS://host:6379`, `Rediss://...`). URI schemes are case-insensitive
// (RFC 3986 §3.1) and node-redis reads them through `new URL()`, yet the config refused them as "must be a redis://
// or rediss:// URL". Now `redis.url`, `redis.cluster` and sentinel node URLs take any case, are checked as the
// lower-case ones (database, credentials, mixed schemes), and the gateway reaches Redis with them.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { startBackend } from '../helpers/backends.js';
import { configErrorOf } from '../helpers/config-error.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { startRedisLimitedGateway, untilRedisDecides } from '../helpers/redis-limited-gateway.js';
import { freePort } from '../kv/redis-helpers.js';
import { RedisProcess, run, scratchDir } from '../kv/redis-processes.js';

const BASE = 'load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }] }\n';

describe('config: the scheme of a Redis URL in any case', () => {
  test('redis.url, redis.cluster and sentinel nodes load with REDIS:// and Rediss://', () => {
    assert.equal(parseConfigText(`${BASE}redis: { url: "REDIS://127.0.0.1:6379/2" }\n`, {}).redis.url, 'REDIS://127.0.0.1:6379/2');
    assert.equal(parseConfigText(`${BASE}redis: { url: "Rediss://:pw@cache.internal:6380" }\n`, {}).redis.url, 'Rediss://:pw@cache.internal:6380');
    assert.equal(parseConfigText(`${BASE}redis: { cluster: ["REDIS://a:7000", "redis://b:7001"] }\n`, {}).redis.cluster.length, 2);
    assert.equal(parseConfigText(`${BASE}redis: { cluster: ["REDISS://:pw@a:7000", "rediss://:pw@b:7001"] }\n`, {}).redis.cluster.length, 2);
    assert.equal(parseConfigText(`${BASE}redis: { sentinel: { name: m, nodes: ["REDIS://s1:26379", "redis://s2:26379"] } }\n`, {}).redis.sentinel.nodes.length, 2);
  });

  test('the checks behind the scheme still apply, comparing schemes in any case', () => {
    assert.match(configErrorOf(`${BASE}redis: { cluster: ["REDISS://a:7000", "redis://b:7001"] }\n`), /^redis\.cluster: mixes redis:\/\/ and rediss:\/\/ seeds/);
    assert.match(configErrorOf(`${BASE}redis: { cluster: ["REDIS://a:7000/3"] }\n`), /^redis\.cluster\[0\]: names a database/);
    assert.match(configErrorOf(`${BASE}redis: { url: "REDIS://alice@a:6379" }\n`), /^redis\.url: names a user without a password/);
    assert.match(configErrorOf(`${BASE}redis: { url: "REDIS://a:6379/x" }\n`), /^redis\.url: must be a redis:\/\/ or rediss:\/\/ URL$/);
    assert.match(configErrorOf(`${BASE}redis: { url: "HTTP://a:6379" }\n`), /^redis\.url: must be a redis:\/\/ or rediss:\/\/ URL$/);
  });
});

describe('a gateway limiting through Redis named with REDIS://', async () => {
  const client = createClient();
  const backend = await startBackend('scheme-case');
  const gateways: InProcessGateway[] = [];
  const servers: RedisProcess[] = [];
  const dir = scratchDir('review5-scheme-case');
  after(async () => {
    await Promise.allSettled(gateways.map((g) => g.close()));
    await Promise.allSettled(servers.map((s) => s.kill()));
    dir.remove();
    await client.close();
    await backend.stop();
  });

  /** Limits by address, 503 while Redis cannot decide (on_store_error: deny): a 200 means Redis decided. */
  async function gateway(redis: Record<string, unknown>, name: string): Promise<InProcessGateway> {
    const keyPrefix = `portcullis-test:review5-scheme-case:${name}:${process.pid}:`;
    const gw = await startRedisLimitedGateway({ redis, keyPrefix, backendPort: backend.port, requestsPerMinute: 1, burstSize: 3 });
    gateways.push(gw);
    return gw;
  }

  /** Waits until Redis decides (200), then spends the burst: the next request gets 429 (one token a minute). */
  async function assertLimited(gw: InProcessGateway): Promise<void> {
    const remaining = await untilRedisDecides(client, gw, 10_000);
    for (let i = remaining; i > 0; i--) assert.equal((await client.request(`${gw.url}/a`)).status, 200);
    assert.equal((await client.request(`${gw.url}/a`)).status, 429, 'the burst was counted in Redis');
  }

  test('redis.url: REDIS://127.0.0.1:6379', async () => {
    const gw = await gateway({ url: 'REDIS://127.0.0.1:6379' }, 'url');
    await assertLimited(gw);
  });

  test('redis.cluster seeds REDIS:// and redis:// (one scheme, not mixed)', async () => {
    const port = await freePort();
    // A bus port of our own: the default, port + 10000, may be taken.
    const bus = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path];
    const cluster = ['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir.path, 'nodes.conf'), '--cluster-require-full-coverage', 'no'];
    const node = await RedisProcess.spawn(port, [...args, ...cluster], join(dir.path, `${port}.log`));
    servers.push(node);
    await run('redis-cli', ['-p', String(port), 'CLUSTER', 'ADDSLOTSRANGE', '0', '16383'], 5_000);
    await waitFor('the one-node cluster to be ok', async () => (await run('redis-cli', ['-p', String(port), 'CLUSTER', 'INFO'], 5_000)).includes('cluster_state:ok'), 10_000);
    const gw = await gateway({ cluster: [`REDIS://127.0.0.1:${port}`, `redis://127.0.0.1:${port}`] }, 'cluster');
    await assertLimited(gw);
  });
});
