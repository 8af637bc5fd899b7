// The memory store's cap on clients, through the limiter on real sockets: once every bucket it holds is limiting its
// client, a client past the cap (one more /64 of an attacker's allocation, or a real new visitor) gets a bucket of its
// own, made room for by dropping the least recently used (as nginx's limit_req), and is limited from then on. It was
// judged on a fresh full bucket that was never stored, so it was never limited at all; and refusing it instead
// locked every new visitor out while the table stayed full.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKvStore } from '../../src/kv/memory.js';
import { rateLimitConfig, startLimiterServer, type LimiterTestServer } from '../ratelimit/limiter-server.js';

const CAP = 20;
let store: MemoryKvStore;
let server: LimiterTestServer;

before(async () => {
  store = new MemoryKvStore({ maxBuckets: CAP });
  // Burst 1 at 1/min: one request leaves a bucket empty (limiting) for a minute, far longer than the test runs.
  server = await startLimiterServer(rateLimitConfig({ requests_per_minute: 1, burst_size: 1 }), store);
});
after(async () => {
  await server?.close();
  await store?.close();
});

/** An address in its own /64 (the limiter keys IPv6 clients by /64), sent through the trusted 127.0.0.1. */
function fromNet(n: number): Record<string, string> {
  return { 'x-forwarded-for': `2001:db8:${n.toString(16)}::1` };
}

async function status(headers: Record<string, string>): Promise<{ status: number; retryAfter: string | null }> {
  const res = await fetch(server.url + '/api/items', { headers });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
}

test('a new client past the cap of a full memory store is still limited', async () => {
  for (let n = 1; n <= CAP; n++) assert.equal((await status(fromNet(n))).status, 200, `client ${n}`);
  assert.equal(store.bucketCount, CAP);
  // Every further /64 of the allocation: before, each got every request through.
  for (let n = CAP + 1; n <= CAP + 5; n++) {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await status(fromNet(n));
      statuses.push(reply.status);
      if (reply.status === 429) assert.ok(Number(reply.retryAfter) >= 1, `Retry-After ${String(reply.retryAfter)}`);
    }
    assert.deepEqual(statuses, [200, 429, 429, 429], `client ${n} past the cap`);
  }
  assert.equal(store.bucketCount, CAP);
  // Room was made from the least recently used: clients 1 to 5 start over; the others keep their limits.
  assert.equal((await status(fromNet(CAP))).status, 429);
  assert.equal((await status(fromNet(6))).status, 429);
});
