// A Redis Cluster master freezes (SIGSTOP) under a gateway whose wall clock then steps back 10 minutes (NTP, a
// restored snapshot). The store asks the other nodes for the slot map again after a command timeout, at most once a
// second (redis-cluster.ts), and counts a connection unanswered past the handshake timeout as failing
// (redis-node-health.ts): both timed on Date.now(). After the step every refresh lay "in the future" of the last
// one, so none was made for 10 minutes: the frozen master's slots kept timing out (503 under on_store_error deny)
// long after the cluster had promoted its replica. Both now run on performance.now(). The gateway runs with
// test/helpers/clock-offset-import.mjs and a clock file (clock-step.ts); the cluster is our own (redis-processes.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, servesSlot, ThrowawayCluster, until } from '../kv/redis-processes.js';
import { pickClients } from './steady-load.js';

const skip = await requireRedisServer();
const NODE_TIMEOUT_MS = 2_000;
const prefix = uniquePrefix('review9-clock-cluster');
const client = createClient();
let cluster: ThrowawayCluster | undefined;
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;
let clock: SteppedClock | undefined;

before(async () => {
  if (skip) return;
  cluster = await ThrowawayCluster.start(3, NODE_TIMEOUT_MS);
  backend = await startBackend('one');
  clock = steppedClock();
  gw = await spawnGateway(
    {
      server: { trusted_proxies: ['127.0.0.1'] },
      redis: { cluster: cluster.seeds, key_prefix: prefix, command_timeout: '300ms' },
      load_balancing: { upstreams: upstreams([backend.port]) },
      // deny: a decision the store could not make shows as 503.
      middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 100_000, on_store_error: 'deny' } },
    },
    { env: clock.env },
  );
});

after(async () => {
  for (const node of cluster?.nodes ?? []) node.signal('SIGCONT');
  await client.close();
  await gw?.cleanup();
  clock?.remove();
  await backend?.stop();
  await cluster?.stop();
});

test('a frozen master\'s slots are decided again after the promotion, though the wall clock stepped back 10 minutes', { skip }, async () => {
  const victim = (await cluster!.masters())[0]!;
  const [address] = pickClients(1, (bucket) => servesSlot(victim.slots, hashSlot(bucketKey(prefix, bucket))));
  const send = async (): Promise<number> =>
    (await client.request(`${gw!.url}/x`, { headers: { 'x-forwarded-for': address! }, timeoutMs: 5_000 })).status;
  await until('a decision on the victim\'s slots', async () => (await send()) === 200, 10_000, 100);

  cluster!.node(victim.port).signal('SIGSTOP');
  // Times out, and the store asks the other nodes for the slot map (too early: no promotion yet).
  assert.equal(await send(), 503, 'refused while its master is frozen');
  await clock!.step(-10 * 60_000);
  await until('the cluster to promote the replica', async () => {
    const masters = await cluster!.topology(cluster!.nodes.find((n) => n.port !== victim.port)!.port);
    return masters.some((m) => m.port !== victim.port && m.flags.includes('master') && servesSlot(m.slots, hashSlot(bucketKey(prefix, `p:${address}`))));
  }, NODE_TIMEOUT_MS * 10, 200);
  await until('the slots to be decided again', async () => (await send()) === 200, 8_000, 200);
});
