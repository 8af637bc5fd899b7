// Failover of a Sentinel setup of our own under proxied load: the master is killed, the sentinels promote the
// replica, and the running gateway follows without a restart. Registered by test/contracts/kv-store.sentinel.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { bucketKey } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import type { ThrowawaySentinel } from '../kv/redis-processes.js';
import { countStatuses, pickClients, startLoad } from './steady-load.js';

/** Stated bound from the kill to answers from the promoted replica (down-after 1 s; measured ~3-5 s here). */
const RECOVERY_BOUND_MS = 20_000;

/** Registers the failover suite on a running Sentinel setup (`setup()` is read in before()). It kills the master. */
export function sentinelFailoverSuite(setup: () => ThrowawaySentinel, skip: string | false): void {
  describe('Redis Sentinel failover under proxied load', { skip }, () => {
    let backend: TestBackend;
    let gw: InProcessGateway;
    const http = createClient();
    const prefix = uniquePrefix('sentinel-failover');

    before(async () => {
      backend = await startBackend('one');
      gw = await startInProcess({
        server: { trusted_proxies: ['127.0.0.1'] },
        redis: { sentinel: setup().target, key_prefix: prefix, command_timeout: '1s' },
        load_balancing: { upstreams: upstreams([backend.port]) },
        middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 100_000, on_store_error: 'deny' } },
      });
      await waitFor('the gateway to reach the master', async () => (await http.request(`${gw.adminUrl}/ready`)).status === 200, 15_000);
    });
    after(async () => {
      await gw?.close();
      await backend?.stop();
      await http.close();
    });

    test('kill the master: the replica is promoted and the same gateway writes buckets to it', async () => {
      const { master, replica } = setup();
      const clients = pickClients(50, () => true);
      const load = startLoad(`${gw.url}/sentinel`, clients);
      let killedAt = 0;
      let recoveredAt = 0;
      try {
        await waitFor('load to flow', () => load.samples.length > 100, 10_000);
        killedAt = load.now();
        await master.kill();
        await waitFor('answers from the promoted replica', () => {
          const since = load.samples.filter((s) => s.at > killedAt);
          const lastRefused = since.findLastIndex((s) => s.status !== 200);
          const tail = since.slice(lastRefused + 1);
          if (lastRefused === -1 || tail.length < 40) return false;
          recoveredAt = tail[0]!.at;
          return true;
        }, RECOVERY_BOUND_MS, 50);
      } finally {
        await load.stop();
      }
      const statuses = countStatuses(load.samples);
      console.log(`# sentinel failover: answers again ${(recoveredAt - killedAt).toFixed(0)} ms after the kill; ${JSON.stringify(statuses)}`);
      // Answered throughout: admitted, or the store-error policy's 503 while no master existed.
      assert.deepEqual(Object.keys(statuses).filter((s) => s !== '200' && s !== '503'), []);
      assert.equal(await setup().reportedMasterPort(), replica.port, 'the sentinels promoted the replica');
      // The buckets written after the promotion are on the former replica, now master.
      const promoted = createRedisClient({ url: replica.url });
      await promoted.connect();
      try {
        assert.equal((await promoted.sendCommand(['ROLE']) as unknown[])[0], 'master');
        assert.equal(await promoted.exists(bucketKey(prefix, `p:${clients[0]}`)), 1);
      } finally {
        promoted.destroy();
      }
    });
  });
}
