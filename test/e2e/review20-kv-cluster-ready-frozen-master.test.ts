// /ready on a Redis Cluster is 200 while some masters answer PING (README), also when the master node-redis lists
// first is frozen (SIGSTOP: its connection stays open and ready, nothing comes back). The PING went to that first
// connected master alone and timed out while the others answered: /ready said 503 "redis down" for as long as the
// freeze lasted, and a load balancer would have taken every gateway out over one frozen node. The node timeout is
// long here so that no replica is promoted while the test runs: the answer must come from the masters still up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, servesSlot, ThrowawayCluster, type RedisProcess } from '../kv/redis-processes.js';
import { sleep, waitFor } from '../helpers/wait.js';

const skip = await requireRedisServer();
const client = createClient();
let cluster: ThrowawayCluster;
let backend: TestBackend;
let gw: InProcessGateway;
const frozen: RedisProcess[] = [];

before(async () => {
  if (skip) return;
  cluster = await ThrowawayCluster.start(3, 60_000);
  backend = await startBackend('echo');
  gw = await startInProcess({
    redis: { cluster: cluster.seeds, key_prefix: uniquePrefix('ready-frozen'), command_timeout: '500ms' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: { enabled: false }, rate_limit: { enabled: true, requests_per_minute: 600, burst_size: 100 } },
  });
  await waitFor(async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 'the gateway to reach the cluster', 15_000);
});
after(async () => {
  for (const node of frozen) node.signal('SIGCONT');
  await gw?.close();
  await backend?.stop();
  await client.close();
  await cluster?.stop();
});

test('/ready stays 200 while two of three masters are frozen and the third answers', { skip, timeout: 60_000 }, async () => {
  const masters = await cluster.masters();
  // The masters of slot 0 and slot 8192: whichever order node-redis lists them in, the first is frozen at least
  // twice in three.
  for (const slot of [0, 8192]) frozen.push(cluster.node(masters.find((m) => servesSlot(m.slots, slot))!.port));
  assert.equal(new Set(frozen).size, 2);
  for (const node of frozen) node.signal('SIGSTOP');
  try {
    for (let i = 0; i < 5; i++) {
      const res = await client.request(`${gw.adminUrl}/ready`);
      assert.equal(res.status, 200, `answer ${i + 1}: ${res.text}`);
      await sleep(300);
    }
  } finally {
    for (const node of frozen.splice(0)) node.signal('SIGCONT');
  }
});
