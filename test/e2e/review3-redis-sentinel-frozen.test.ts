// A Sentinel setup where a machine running the master and a sentinel is paused (both frozen with SIGSTOP: they
// accept connections and never answer) while the gateway runs. The other two sentinels promote the replica, but
// node-redis asked the frozen sentinel first at each rediscovery and waited for its handshake forever: the gateway
// never followed the promotion and answered 503 (on_store_error: deny) until the machine resumed.
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { requireRedisServer, ThrowawaySentinel } from '../kv/redis-processes.js';

const skip = await requireRedisServer();

/** How long the promotion may take to reach the gateway: down-after 1 s, the election, then a rediscovery. */
const FOLLOW_MS = 25_000;

describe('Sentinel: the master and the first sentinel frozen together', { skip }, () => {
  const client = createClient();
  let sentinel: ThrowawaySentinel | undefined;
  let backend: TestBackend | undefined;
  let gw: InProcessGateway | undefined;

  before(async () => {
    backend = await startBackend('sentinel-frozen');
    sentinel = await ThrowawaySentinel.start();
  });
  after(async () => {
    await gw?.close();
    await sentinel?.stop(); // SIGKILL ends stopped processes too
    await backend?.stop();
    await client.close();
  });

  test('the gateway follows the promotion the other sentinels make, without the frozen ones resuming', async () => {
    gw = await startInProcess({
      redis: { sentinel: sentinel!.target, key_prefix: 'portcullis-test:review3-sentinel-frozen:' },
      load_balancing: { upstreams: upstreams([backend!.port]) },
      middleware: { rate_limit: { enabled: true, requests_per_minute: 600, burst_size: 1000, on_store_error: 'deny' } },
    });
    await waitFor('the limiter to decide through the master', async () => (await client.request(`${gw!.url}/a`)).status === 200, 10_000);

    sentinel!.master.signal('SIGSTOP');
    sentinel!.sentinels[0]!.signal('SIGSTOP');
    const frozenAt = Date.now();
    // 503 while no master answers (deny), then 200 once the gateway writes to the promoted replica.
    await waitFor('requests decided by the promoted replica', async () => (await client.request(`${gw!.url}/b`, { timeoutMs: 5_000 })).status === 200, FOLLOW_MS);
    const followedMs = Date.now() - frozenAt;
    const res = await client.request(`${gw.url}/c`);
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers['ratelimit-remaining']) >= 0, 'decided by Redis, not let through');
    assert.ok(followedMs < FOLLOW_MS, `followed after ${followedMs} ms`);
  });
});
