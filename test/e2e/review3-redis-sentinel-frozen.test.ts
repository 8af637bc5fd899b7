// A Sentinel setup where a machine running the master and the first sentinel of the gateway's list is paused (both
// frozen with SIGSTOP: they accept connections and never answer). node-redis asked the frozen sentinel first at each
// discovery and waited for its handshake forever (and for the frozen master's, once told of it):
// - a running gateway never followed the promotion the other two sentinels made, and answered 503
//   (on_store_error: deny) until the machine resumed;
// - a gateway started then never became ready (every request 503, /ready 503).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { requireRedisServer, ThrowawaySentinel } from '../kv/redis-processes.js';

const skip = await requireRedisServer();

/** How long the promotion may take to reach the gateway: down-after 1 s, the election, then a rediscovery. */
const FOLLOW_MS = 25_000;

const client = createClient();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  // Gateways first, then the sentinels (SIGKILL ends stopped processes too), then the backends.
  for (const cleanup of cleanups.reverse()) await cleanup();
  await client.close();
});

/** A backend, a throwaway Sentinel setup, and a way to start a gateway on both with a deny-on-error limiter. */
async function setUp(name: string): Promise<{ sentinel: ThrowawaySentinel; start(): Promise<InProcessGateway> }> {
  const backend: TestBackend = await startBackend(name);
  cleanups.push(() => backend.stop());
  const sentinel = await ThrowawaySentinel.start();
  cleanups.push(() => sentinel.stop());
  return {
    sentinel,
    async start() {
      const gw = await startInProcess({
        redis: { sentinel: sentinel.target, key_prefix: `portcullis-test:review3-${name}:` },
        load_balancing: { upstreams: upstreams([backend.port]) },
        middleware: { rate_limit: { enabled: true, requests_per_minute: 600, burst_size: 1000, on_store_error: 'deny' } },
      });
      cleanups.push(() => gw.close()); // close() may run twice: the second call awaits the first
      return gw;
    },
  };
}

function freezeMasterAndFirstSentinel(sentinel: ThrowawaySentinel): void {
  sentinel.master.signal('SIGSTOP');
  sentinel.sentinels[0]!.signal('SIGSTOP');
}

async function assertDecidedByRedis(gw: InProcessGateway, path: string): Promise<void> {
  const res = await client.request(`${gw.url}${path}`);
  assert.equal(res.status, 200);
  assert.ok(Number(res.headers['ratelimit-remaining']) >= 0, 'decided by Redis, not let through');
}

test('a running gateway follows the promotion the other sentinels make, without the frozen ones resuming', { skip }, async () => {
  const { sentinel, start } = await setUp('sentinel-frozen');
  const gw = await start();
  await waitFor('the limiter to decide through the master', async () => (await client.request(`${gw.url}/a`)).status === 200, 10_000);

  freezeMasterAndFirstSentinel(sentinel);
  const frozenAt = Date.now();
  // 503 while no master answers (deny), then 200 once the gateway writes to the promoted replica.
  await waitFor('requests decided by the promoted replica', async () => (await client.request(`${gw.url}/b`, { timeoutMs: 5_000 })).status === 200, FOLLOW_MS);
  const followedMs = Date.now() - frozenAt;
  await assertDecidedByRedis(gw, '/c');
  assert.ok(followedMs < FOLLOW_MS, `followed after ${followedMs} ms`);
});

test('a gateway started while they are frozen becomes ready on the promoted replica, and closes promptly', { skip }, async () => {
  const { sentinel, start } = await setUp('sentinel-frozen-start');
  freezeMasterAndFirstSentinel(sentinel);
  const frozenAt = Date.now();
  const gw = await start();
  await waitFor('requests decided by the promoted replica', async () => (await client.request(`${gw.url}/a`, { timeoutMs: 5_000 })).status === 200, FOLLOW_MS);
  assert.ok(Date.now() - frozenAt < FOLLOW_MS);
  assert.equal((await client.request(`${gw.adminUrl}/ready`)).status, 200);
  await assertDecidedByRedis(gw, '/b');
  const closing = Date.now();
  await gw.close();
  assert.ok(Date.now() - closing < 5_000, 'close() does not wait on the frozen nodes');
});
