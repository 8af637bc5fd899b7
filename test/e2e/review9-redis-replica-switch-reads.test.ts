// A READONLY reply makes a single server's connection open again (7b6d8ec), so a failover that moves the URL's name is
// followed. But the old connection was closed the moment the new one was opened, and every command sent before the
// new one had connected failed at once (no offline queue). A Redis that refuses writes still answers reads (README:
// "still serves the revocation checks"), yet under a URL that names a replica (for good, or for the seconds of a
// failover) each READONLY, the change poller's marker write once a second at least, cut the revocation reads for
// the new connection's handshake: under auth's on_store_error deny (the default) those authenticated requests were
// 503 kv_unavailable, every second, for as long as it lasted. The old connection now serves until the new one is
// ready. Our own redis-server behind a forwarder whose connections take 300 ms to open (a remote or TLS Redis's
// handshake); the server is made a replica of a master that is not there, so it answers reads and refuses writes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';
import { bearer, FAST_ARGON2, register, TEST_SECRET } from '../helpers/auth-gateway.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const OPEN_DELAY_MS = 300;

test('a Redis answering READONLY keeps serving the revocation reads while its connection is replaced', { skip }, async () => {
  const dir = scratchDir('review9-replica-switch');
  after(() => dir.remove());
  const redisPort = await freePort();
  const redis = await RedisProcess.spawn(
    redisPort,
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path],
    `${dir.path}/redis.log`,
  );
  after(() => redis.kill());
  const admin = createRedisClient({ url: redis.url });
  admin.on('error', () => undefined);
  await admin.connect();
  after(() => admin.destroy());
  // Each connection reaches the server OPEN_DELAY_MS after it was accepted.
  const link = await startTcpForwarder('127.0.0.1', redisPort, 0, { openDelayMs: OPEN_DELAY_MS });
  after(() => link.close());
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const gw = await startInProcess({
    redis: { url: `redis://127.0.0.1:${link.port}`, key_prefix: 'portcullis-test:review9-replica-switch:' },
    jwt: { secret: TEST_SECRET },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name: 'me', match: { path_prefix: '/me' }, service: 'api' }],
    // auth.on_store_error: deny (the default): a revocation read that fails is a 503.
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  await waitFor('the gateway to reach Redis', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 10_000);
  const account = await register({ client, url: gw.url });
  assert.equal((await client.request(`${gw.url}/me`, { headers: bearer(account.access_token) })).status, 200);

  // The gateway's first marker round done (its first poll may have met the connection still opening): a server that
  // refuses writes before the gateway ever wrote its marker is not known to hold the gateway's data
  // (review11-kv-revocations-unknown), which is not this test's case.
  await waitFor('the lost-data marker written', async () => (await admin.exists('portcullis-test:review9-replica-switch:kept:{kept}')) === 1, 5_000);
  // A replica now (of a master that is not there): reads answered, every write READONLY.
  await admin.sendCommand(['REPLICAOF', '127.0.0.1', String(await freePort())]);
  await waitFor('the gateway to meet READONLY', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 503, 5_000);
  const acceptedBefore = link.accepted;

  // Until two replacements have been opened (the poller's marker write alone asks for one a second; each takes
  // 300 ms to open) and the second has had its handshake, 10 s at most on a loaded machine.
  const statuses = new Map<number, number>();
  const replaced = () => link.accepted - acceptedBefore;
  let secondAt = Infinity;
  const until = performance.now() + 10_000;
  const worker = async () => {
    while (performance.now() < until && performance.now() < secondAt + 2 * OPEN_DELAY_MS) {
      const res = await client.request(`${gw.url}/me`, { headers: bearer(account.access_token) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (replaced() >= 2 && secondAt === Infinity) secondAt = performance.now();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  assert.ok(replaced() >= 1, `the connection was replaced (${replaced()} new connections)`);
  assert.deepEqual([...statuses.keys()], [200], `every token served from the readable replica: ${JSON.stringify([...statuses])}`);
  // Replaced, not added to: the main connection and at most one being opened (no revocation connection: no logout).
  await waitFor('the replaced connections to be closed', async () => link.open() <= 2, 3_000);
});
