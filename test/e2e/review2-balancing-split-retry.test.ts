// What was wrong: a retry on a split went to the first other service of the split that had an upstream in
// rotation, without asking whether that service still had an upstream this request had not been sent to. When that
// service's only upstream had already failed this request but was back in rotation (passive_cooldown: 0, passive
// health off as Kong users set it; or a failure that does not take an upstream out, such as HTTP/2 REFUSED_STREAM),
// it had nothing to offer and the retries stopped there: the client got 502 while a third service of the split,
// never tried, would have answered.
// What is right now: a retry asks each other service of the split in turn, in the split's order, and goes to the
// first that has an untried upstream; only when none has one does it fall back to the panic pick.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const client = createClient();
let live: TestBackend;
let gw: InProcessGateway;

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
