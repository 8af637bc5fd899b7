// A failover made without Sentinel: the master is demoted to a replica and the address the gateway uses (a DNS name,
// a virtual IP, a managed Redis's primary endpoint) now leads to the promoted node. The gateway's open connection
// stayed on the demoted one, which answered every write READONLY: under on_store_error deny every limited request got
// 503 (under allow none was counted) for as long as the gateway ran, and /ready said 200 all along. A READONLY reply
// now makes the gateway open a new connection (at most once a second), which reaches the new master. Two
// redis-servers of our own behind a forwarder whose target the test moves (new connections only, as DNS does).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';
import { rawCommand, redisServerInstalled } from '../kv/redis-helpers.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

async function server(name: string): Promise<RedisProcess> {
  const dir = scratchDir(`review9-failover-${name}`);
  after(() => dir.remove());
  const port = await freePort();
  const redis = await RedisProcess.spawn(port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path], `${dir.path}/redis.log`);
  after(() => redis.kill());
  return redis;
}

test('a master demoted under the gateway while its address moves to the new one: the gateway follows, /ready tells', { skip }, async () => {
  const first = await server('first');
  const second = await server('second');
  // 127.0.0.1:port → the first server; moveTo applies to connections accepted from then on.
  const address = await startTcpForwarder('127.0.0.1', first.port);
  after(() => address.close());
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const gw = await startInProcess({
    redis: { url: `redis://127.0.0.1:${address.port}`, key_prefix: 'portcullis-test:review9-failover:' },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name: 'open', match: { path_prefix: '/a' }, service: 'api' }],
    // Deny: a 200 proves Redis decided. One token a minute: the count is exact.
    middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 1_000, on_store_error: 'deny' } },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  const ready = async () => (await client.request(`${gw.adminUrl}/ready`)).status;
  await waitFor('the gateway to reach the first master', async () => (await ready()) === 200, 10_000);
  const before = await client.request(`${gw.url}/a`);
  assert.equal(before.status, 200, before.text);
  assert.equal(before.headers['ratelimit-remaining'], '999');

  // The failover: the address now leads to the second server, and the first is made a replica (of a master that
  // is not there, so it stays one).
  address.moveTo(second.port);
  assert.equal(await rawCommand('127.0.0.1', first.port, `REPLICAOF 127.0.0.1 ${await freePort()}`), '+OK');

  let last = 0;
  await waitFor('the limiter to decide again, on the new master', async () => {
    const res = await client.request(`${gw.url}/a`);
    last = res.status;
    return res.status === 200 && res.headers['ratelimit-remaining'] === '999';
  }, 5_000);
  assert.equal(last, 200);
  assert.equal(await ready(), 200, 'ready on the new master');
  const logs = gw.logs.map((l) => JSON.stringify(l)).join('\n');
  assert.doesNotMatch(logs, /read only replica/i, "the server's words are not logged");
  assert.ok(!logs.includes('    at '), 'no stack in the log');
});
