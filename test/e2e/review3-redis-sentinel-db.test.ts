// A Sentinel-managed master with a database number in the sentinel URLs (`redis://s1:26379/2`), as `redis.url`
// takes one. The number was dropped: the gateway wrote to database 0 whatever the URLs said, so two deployments kept
// apart by their database (same key prefix) shared every client's rate-limit bucket.
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { requireRedisServer, run, ThrowawaySentinel, untilAnswering } from '../kv/redis-processes.js';
import { infoField } from '../kv/redis-processes.js';
import { createRedisKvStore } from '../../src/kv/redis.js';

const skip = await requireRedisServer();

describe('Sentinel URLs naming a database', { skip }, () => {
  const client = createClient();
  let sentinel: ThrowawaySentinel | undefined;
  let backend: TestBackend | undefined;
  const gateways: InProcessGateway[] = [];

  before(async () => {
    backend = await startBackend('sentinel-db');
    sentinel = await ThrowawaySentinel.start();
  });
  after(async () => {
    await Promise.allSettled(gateways.map((g) => g.close()));
    await sentinel?.stop();
    await backend?.stop();
    await client.close();
  });

  /** A gateway on the sentinels, every URL ending in `/<database>`, refusing (503) while Redis cannot decide. */
  async function gateway(database: number): Promise<InProcessGateway> {
    const gw = await startInProcess({
      redis: {
        sentinel: { name: sentinel!.name, nodes: sentinel!.target.nodes.map((url) => `${url}/${database}`) },
        key_prefix: 'portcullis-test:review3-sentinel-db:',
      },
      load_balancing: { upstreams: upstreams([backend!.port]) },
      middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 3, on_store_error: 'deny' } },
    });
    gateways.push(gw);
    await waitFor('the gateway to reach the master', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 10_000);
    return gw;
  }

  const keysIn = async (database: number): Promise<number> =>
    Number((await run('redis-cli', ['-p', String(sentinel!.master.port), '-n', String(database), 'DBSIZE'], 5_000)).trim());

  test('the buckets live in the database the URLs name, and two databases keep two sets of buckets', async () => {
    const inTwo = await gateway(2);
    const inThree = await gateway(3);
    for (let i = 0; i < 3; i++) assert.equal((await client.request(`${inTwo.url}/x`)).status, 200);
    assert.equal((await client.request(`${inTwo.url}/x`)).status, 429, 'the burst of 3 is spent in database 2');
    assert.equal(await keysIn(2), 1, 'the bucket is in database 2');
    assert.equal(await keysIn(0), 0, 'nothing in database 0');
    // The same client, the same prefix, another database: a bucket of its own, full.
    const other = await client.request(`${inThree.url}/x`);
    assert.equal(other.status, 200);
    assert.equal(other.headers['ratelimit-remaining'], '2');
    assert.equal(await keysIn(3), 1);
  });

  test('a revocation waits its whole WAIT for a paused replica on a connection that stays open (command_timeout 4 s)', async () => {
    // The data-node sockets close after a silence (a frozen node, review3-redis-sentinel-frozen); a WAIT is a silence
    // as long as the command timeout, so the bound is at least twice that: the connection is not cut mid-WAIT.
    let unreplicated = 0;
    const store = createRedisKvStore({
      sentinel: sentinel!.target,
      keyPrefix: 'portcullis-test:review3-sentinel-db-wait:',
      commandTimeoutMs: 4_000,
      onUnreplicatedRevocation: () => unreplicated++,
    });
    try {
      await untilAnswering(store);
      await store.revoke('warm-up', Date.now() + 60_000); // opens the revocation connection
      await new Promise((resolve) => setTimeout(resolve, 300)); // and its master link, opened beside it
      const connections = Number(await infoField(sentinel!.master.port, 'stats', 'total_connections_received'));
      sentinel!.replica.signal('SIGSTOP');
      try {
        await store.revoke('while-paused', Date.now() + 60_000);
      } finally {
        sentinel!.replica.signal('SIGCONT');
      }
      assert.equal(unreplicated, 1, 'no replica confirmed it: counted once');
      assert.equal(await store.isRevoked('while-paused'), true, 'written on the master');
      const after = Number(await infoField(sentinel!.master.port, 'stats', 'total_connections_received'));
      // One new connection: redis-cli's own, for the second INFO.
      assert.equal(after - connections, 1, 'no connection was cut and opened again during the WAIT');
    } finally {
      await store.close();
    }
  });
});
