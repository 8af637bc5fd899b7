// A gateway started while the Sentinel master and the first sentinel of its list are frozen (SIGSTOP: connections
// accepted, never answered), e.g. a paused machine running both. node-redis waited for the frozen sentinel's
// handshake forever, and for the frozen master's once told of it: the store never became ready, even after the other
// sentinels had promoted the replica (every request 503 under on_store_error: deny, /ready 503).
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

describe('Sentinel: started with the master and the first sentinel frozen', { skip }, () => {
  const client = createClient();
  let sentinel: ThrowawaySentinel | undefined;
  let backend: TestBackend | undefined;
  let gw: InProcessGateway | undefined;

  before(async () => {
    backend = await startBackend('sentinel-frozen-start');
    sentinel = await ThrowawaySentinel.start();
  });
  after(async () => {
    await gw?.close();
    await sentinel?.stop(); // SIGKILL ends stopped processes too
    await backend?.stop();
    await client.close();
  });

  test('the store becomes ready on the promoted replica, and closes promptly', async () => {
    sentinel!.master.signal('SIGSTOP');
    sentinel!.sentinels[0]!.signal('SIGSTOP');
    const frozenAt = Date.now();
    gw = await startInProcess({
      redis: { sentinel: sentinel!.target, key_prefix: 'portcullis-test:review3-sentinel-frozen-start:' },
      load_balancing: { upstreams: upstreams([backend!.port]) },
      middleware: { rate_limit: { enabled: true, requests_per_minute: 600, burst_size: 1000, on_store_error: 'deny' } },
    });
    await waitFor('requests decided by the promoted replica', async () => (await client.request(`${gw!.url}/a`, { timeoutMs: 5_000 })).status === 200, FOLLOW_MS);
    assert.ok(Date.now() - frozenAt < FOLLOW_MS);
    assert.equal((await client.request(`${gw.adminUrl}/ready`)).status, 200);
    const res = await client.request(`${gw.url}/b`);
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers['ratelimit-remaining']) >= 0, 'decided by Redis, not let through');
    const closing = Date.now();
    await gw.close();
    gw = undefined;
    assert.ok(Date.now() - closing < 5_000, 'close() does not wait on the frozen nodes');
  });
});
