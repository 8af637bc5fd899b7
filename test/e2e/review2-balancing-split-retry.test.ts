// What was wrong: a retry on a split went to the first other service of the split that had an upstream in
// rotation, without asking whether that service still had an upstream this request had not been sent to. When that
// service's only upstream had already failed this request but was back in rotation (passive_cooldown: 0, passive
// health off as Kong users set it; or a failure that does not take an upstream out, such as HTTP/2 REFUSED_STREAM),
// it had nothing to offer and the retries stopped there: the client got 502 while a third service of the split,
// never tried, would have answered.
// And a retry whose own service had no other upstream in rotation went to that service's panic pick (an upstream
// cooling down after a failure of its own, likely still down) rather than to another service of the split in
// rotation: 502 while the other service answered.
// What is right now: a retry goes to another upstream in rotation of the same service, else asks each other service
// of the split in turn, in the split's order, for an upstream in rotation this request has not been sent to; only
// when none has one does it fall back to the panic picks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const client = createClient();
let live: TestBackend;
let gw: InProcessGateway;
const stops: Array<() => Promise<unknown>> = [];

before(async () => {
  live = await startBackend('c');
  const dead = async (name: string) => ({
    upstreams: [{ name, address: '127.0.0.1', port: await closedPort() }],
    retries: 2,
    health_check: { enabled: false, passive_cooldown: '0s' },
  });
  gw = await startInProcess({
    services: {
      a: await dead('a-1'),
      b: await dead('b-1'),
      c: { upstreams: [{ name: 'c-1', address: '127.0.0.1', port: live.port }], retries: 2, health_check: { enabled: false, passive_cooldown: '0s' } },
    },
    routes: [{ name: 'api', match: { path_prefix: '/' }, split: [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }, { service: 'c', weight: 1 }] }],
  });
});

after(async () => {
  await client.close();
  await gw.close();
  await live.stop();
  for (const stop of stops) await stop();
});

test('a retry on a split goes on to a service not tried yet, past one whose only upstream already failed', async () => {
  // Every request of a round of three: whichever service it starts on, two retries are enough to reach c.
  for (let i = 0; i < 6; i++) {
    const res = await client.request(`${gw.url}/x${i}`);
    assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.text}`);
    assert.equal(res.json<{ backend: string }>().backend, 'c');
  }
});

test('a POST is retried the same way (a refused connection never reached the upstream)', async () => {
  for (let i = 0; i < 3; i++) {
    const res = await client.request(`${gw.url}/p${i}`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.text}`);
  }
});

test("a retry prefers another service of the split in rotation to its own service's cooling upstream", async () => {
  const a1 = await startBackend('a1');
  const b1 = await startBackend('b1');
  const a2Port = await closedPort();
  const split = await startInProcess({
    services: {
      a: {
        upstreams: [{ name: 'a-1', address: '127.0.0.1', port: a1.port }, { name: 'a-2', address: '127.0.0.1', port: a2Port }],
        retries: 1,
        health_check: { enabled: false, passive_cooldown: '60s' },
      },
      b: { upstreams: [{ name: 'b-1', address: '127.0.0.1', port: b1.port }], health_check: { enabled: false } },
    },
    routes: [{ name: 'api', match: { path_prefix: '/' }, split: [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }] }],
  });
  stops.push(() => split.close(), () => a1.stop(), () => b1.stop());
  const backendOf = async (path: string) => {
    const res = await client.request(`${split.url}${path}`);
    assert.equal(res.status, 200, `${path}: ${res.status} ${res.text}`);
    return res.json<{ backend: string }>().backend;
  };
  // The split alternates a, b; service a alternates a-1, a-2. a-2's port is closed: its first request fails over
  // to a-1, and a-2 cools down for 60 s.
  assert.equal(await backendOf('/1'), 'a1');
  assert.equal(await backendOf('/2'), 'b1');
  assert.equal(await backendOf('/3'), 'a1');
  assert.ok(split.logs.some((l) => l.msg === 'Upstream Down' && l.upstream === `127.0.0.1:${a2Port}`), 'a-2 cooling down');
  assert.equal(await backendOf('/4'), 'b1');
  // a-1 goes away: the next request of service a fails there; its retry goes to b, in rotation, not to a-2.
  await a1.stop();
  assert.equal(await backendOf('/5'), 'b1');
});
