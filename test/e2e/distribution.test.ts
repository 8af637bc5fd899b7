// Load balancing through a real gateway: exact weighted round robin, weighted random spread, least_conn avoidance.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

let backends: TestBackend[] = [];
const client = createClient();

before(async () => {
  backends = await Promise.all(['a', 'b', 'c'].map((name) => startBackend(name)));
});
after(async () => {
  await client.close();
  await Promise.all(backends.map((b) => b.stop()));
});

/** Hit counts of every backend, to diff before/after a phase of a test. */
function hits(): number[] {
  return backends.map((b) => b.hits);
}

function diff(now: number[], before: number[]): number[] {
  return now.map((n, i) => n - before[i]!);
}

/** Sends `total` GETs, `width` at a time, and checks they all succeed. */
async function send(gw: InProcessGateway, total: number, width = 1): Promise<void> {
  for (let done = 0; done < total; done += width) {
    const batch = Array.from({ length: Math.min(width, total - done) }, () => client.request(`${gw.url}/x`));
    for (const res of await Promise.all(batch)) assert.equal(res.status, 200);
  }
}

async function withGateway(strategy: string, weights: number[], body: (gw: InProcessGateway) => Promise<void>): Promise<void> {
  const gw = await startInProcess({
    load_balancing: { strategy, upstreams: upstreams(backends.map((b) => b.port), weights) },
  });
  try {
    await body(gw);
  } finally {
    await gw.close();
  }
}

describe('distribution across three backends', () => {
  test('round_robin 5,1,1: 70 requests give exactly 50/10/10, in the smooth order a,a,b,a,c,a,a', async () => {
    await withGateway('round_robin', [5, 1, 1], async (gw) => {
      const start = hits();
      await send(gw, 70);
      assert.deepEqual(diff(hits(), start), [50, 10, 10]);
      const order = gw.logs
        .filter((l) => l.msg === 'Select Upstream')
        .slice(0, 7)
        .map((l) => backends.findIndex((b) => l.upstream === `127.0.0.1:${b.port}`));
      assert.deepEqual(order, [0, 0, 1, 0, 2, 0, 0]);
    });
  });

  test('round_robin keeps exact counts when requests arrive concurrently', async () => {
    await withGateway('round_robin', [5, 1, 1], async (gw) => {
      const start = hits();
      await send(gw, 70, 10);
      assert.deepEqual(diff(hits(), start), [50, 10, 10]);
    });
  });

  test('random 5,1,1: 700 requests spread roughly by weight', async () => {
    await withGateway('random', [5, 1, 1], async (gw) => {
      const start = hits();
      await send(gw, 700, 10);
      const [a, b, c] = diff(hits(), start) as [number, number, number];
      assert.equal(a + b + c, 700);
      // Expected 500/100/100; binomial sd is about 12 and 9, so these bounds are beyond 4 sd.
      assert.ok(a > 440 && a < 560, `a=${a}`);
      assert.ok(b > 60 && b < 140, `b=${b}`);
      assert.ok(c > 60 && c < 140, `c=${c}`);
    });
  });

  test('least_conn 5,1,1 under light load (one request at a time) gives exactly 50/10/10, like round_robin', async () => {
    // Every pick is a tie at 0 in flight: ties used to rotate, giving 1:1:1 whatever the weights.
    await withGateway('least_conn', [5, 1, 1], async (gw) => {
      const start = hits();
      await send(gw, 70);
      assert.deepEqual(diff(hits(), start), [50, 10, 10]);
    });
  });

  test('least_conn sends new requests away from a backend holding a slow request', async () => {
    await withGateway('least_conn', [1, 1, 1], async (gw) => {
      const slow = client.request(`${gw.url}/slow?ms=1500`);
      await waitFor(() => backends.some((b) => b.active === 1), 'the slow request to arrive');
      const busy = backends.findIndex((b) => b.active === 1);
      const start = hits();
      await send(gw, 30);
      const got = diff(hits(), start);
      assert.equal(got[busy], 0, `busy backend got ${got[busy]} of ${got.join(',')}`);
      // The two idle backends tie every time, and ties rotate: they share the load.
      for (let i = 0; i < 3; i++) if (i !== busy) assert.ok(got[i]! >= 10, `backend ${i}: ${got.join(',')}`);
      assert.equal((await slow).status, 200);
    });
  });

  test('least_conn with two slow requests sends everything else to the third backend', async () => {
    await withGateway('least_conn', [1, 1, 1], async (gw) => {
      const slow = [client.request(`${gw.url}/slow?ms=1500`), client.request(`${gw.url}/slow?ms=1500`)];
      await waitFor(() => backends.filter((b) => b.active === 1).length === 2, 'both slow requests to arrive');
      const idle = backends.findIndex((b) => b.active === 0);
      const start = hits();
      await send(gw, 20);
      const got = diff(hits(), start);
      assert.equal(got[idle], 20, got.join(','));
      for (const res of await Promise.all(slow)) assert.equal(res.status, 200);
    });
  });
});
