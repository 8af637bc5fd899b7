// Live resharding under proxied load: `redis-cli --cluster reshard` moves slots holding busy buckets while requests
// flow; MOVED/ASK redirections must be followed with no failed request and no lost bucket state.
// Registered by test/contracts/kv-store.cluster.test.ts on its cluster.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { createClient } from '../helpers/http.js';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { run, servesSlot, type ThrowawayCluster } from '../kv/redis-processes.js';
import { bucketDrift, countStatuses, pickClients, startLoad } from './steady-load.js';

/** A burst no client reaches in this test, refilled once a minute: RateLimit-Remaining counts requests exactly. */
const BURST = 100_000;
/** Slots moved: enough to carry a good share of the busy buckets, few enough to finish within seconds. */
const MOVED_SLOTS = 400;

/** Registers the resharding suite on a running cluster (`cluster()` is read in before()). */
export function clusterReshardSuite(cluster: () => ThrowawayCluster, skip: string | false): void {
  describe('Redis Cluster resharding under load', { skip }, () => {
    let backend: TestBackend;
    let gw: InProcessGateway;
    const prefix = uniquePrefix('reshard');

    before(async () => {
      backend = await startBackend('one');
      gw = await startInProcess({
        server: { trusted_proxies: ['127.0.0.1'] },
        redis: { cluster: cluster().seeds, key_prefix: prefix, command_timeout: '1s' },
        load_balancing: { upstreams: upstreams([backend.port]) },
        // deny: a request that met a failing store would show as 503, so "all 200" means none did.
        middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: BURST, on_store_error: 'deny' } },
      });
      const http = createClient();
      await waitFor('the gateway to reach the cluster', async () => (await http.request(`${gw.adminUrl}/ready`)).status === 200, 15_000);
      await http.close();
    });
    after(async () => {
      await gw?.close();
      await backend?.stop();
    });

    test('slots move while requests flow: every request answered 200, every bucket still exact, keys on the new master', async () => {
      const [source, target] = await cluster().masters();
      assert.ok(source !== undefined && target !== undefined);
      // Busy clients all on the source master, so the slots that move carry live buckets.
      const slotOf = (bucket: string): number => hashSlot(bucketKey(prefix, bucket));
      const clients = pickClients(300, (bucket) => servesSlot(source.slots, slotOf(bucket)));
      const load = startLoad(`${gw.url}/reshard`, clients);
      try {
        await waitFor('load to flow', () => load.samples.length > 200, 10_000);
        await run('redis-cli', [
          '--cluster', 'reshard', `127.0.0.1:${source.port}`,
          '--cluster-from', source.id, '--cluster-to', target.id, '--cluster-slots', String(MOVED_SLOTS), '--cluster-yes',
        ], 60_000);
        const doneAt = load.samples.length;
        await waitFor('load after the move', () => load.samples.length > doneAt + 200, 10_000);
      } finally {
        await load.stop();
      }
      const samples = load.samples;
      assert.deepEqual(Object.keys(countStatuses(samples)), ['200'], `statuses ${JSON.stringify(countStatuses(samples))}`);

      const moved = (await cluster().masters()).find((m) => m.id === target.id)!;
      const movedClients = clients.filter((c) => servesSlot(moved.slots, slotOf(`p:${c}`)));
      assert.ok(movedClients.length >= 10, `only ${movedClients.length} busy buckets were in the moved slots`);
      // Every bucket, moved or not, counted every admitted request exactly once (MIGRATE moved state intact).
      for (const client of clients) assert.equal(bucketDrift(samples, client, BURST), 0, `bucket of ${client}`);
      // The moved buckets now live on the target (they were written there or migrated there).
      const slot = slotOf(`p:${movedClients[0]}`);
      const count = await run('redis-cli', ['-p', String(target.port), 'CLUSTER', 'COUNTKEYSINSLOT', String(slot)], 5_000);
      assert.ok(Number(count.trim()) >= 1, `target holds no key in moved slot ${slot}`);
    });
  });
}
