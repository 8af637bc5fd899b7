// redis.url naming a database the server refuses to SELECT: past its `databases` setting (16 by default:
// redis://host:port/99), or a /N other than 0 on a server that has database 0 only (a cluster node). check-config
// cannot know (it connects to no server) and start-up says ok; then every connect's SELECT fails, /ready is 503 naming
// redis, rate-limited requests go by on_store_error (allow here: through, uncounted), and the outage line said only
// SimpleError(ERR), the bare code of any error reply. It now says SelectRefused, our words: never the server's own
// ("DB index is out of range"). A database within range on the same server works. Our own redis-server processes on
// free ports, never the shared one on 6379.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { infoField, RedisProcess, scratchDir, until } from '../kv/redis-processes.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

async function server(name: string, extra: readonly string[] = []): Promise<RedisProcess> {
  const dir = scratchDir(`review9-dbindex-${name}`);
  after(() => dir.remove());
  const port = await freePort();
  const redis = await RedisProcess.spawn(
    port,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, ...extra],
    `${dir.path}/redis.log`,
  );
  after(() => redis.kill());
  return redis;
}

async function gatewayOn(url: string) {
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const gw = await startInProcess({
    redis: { url, command_timeout: '500ms' },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] },
    middleware: { rate_limit: { enabled: true, requests_per_minute: 60, burst_size: 100 } },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  return { gw, client };
}

for (const [title, start, database] of [
  ['a database past the default 16', () => server('range'), 99],
  ['database 1 on a server with database 0 only (cluster mode)', () => server('cluster', ['--cluster-enabled', 'yes']), 1],
] as const) {
  test(`${title}: /ready 503 naming redis, requests let through, the outage line says SelectRefused`, { skip }, async () => {
    const redis = await start();
    const { gw, client } = await gatewayOn(`${redis.url}/${database}`);
    // The first request may come before the gateway's first connection reached its SELECT: that command fails as
    // ClientOfflineError with no connection error known yet, and its outage line (the first, the one read below)
    // names none. Wait until the server has refused a SELECT (its error replies counted), so the refusal is known.
    await until('the server refused a SELECT', async () => Number((await infoField(redis.port, 'errorstats', 'errorstat_ERR'))?.match(/count=(\d+)/)?.[1] ?? 0) > 0, 5_000, 50);
    const ready = await client.request(`${gw.adminUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.equal((JSON.parse(ready.text) as { checks: Record<string, string> }).checks.redis, 'down');
    const proxied = await client.request(`${gw.url}/a`);
    assert.equal(proxied.status, 200, 'on_store_error allow');
    assert.equal(proxied.headers['ratelimit-remaining'], undefined, 'uncounted');
    let outage: Record<string, unknown> | undefined;
    await waitFor('the outage line', () => (outage = gw.logs.find((l) => l.msg === 'KV Store Unavailable')) !== undefined);
    assert.equal(outage?.connection_error ?? outage?.cause, 'SelectRefused', JSON.stringify(outage));
    const text = gw.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.doesNotMatch(text, /DB index|SELECT is not allowed|SimpleError\(ERR\)/, "the server's words, or a bare ERR");
  });
}

test('a database within range on the same kind of server is ready and counted', { skip }, async () => {
  const redis = await server('fine');
  const { gw, client } = await gatewayOn(`${redis.url}/15`);
  await waitFor('ready', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200);
  const proxied = await client.request(`${gw.url}/a`);
  assert.equal(proxied.status, 200);
  assert.match(String(proxied.headers['ratelimit-remaining']), /^\d+$/);
});
