// What was wrong: when no service of a route's split had an upstream in rotation, the split always asked its first
// service, whatever the state of the others. A first service whose upstreams the active checks had marked down
// (a broken canary listed first) had nothing to offer, and the route answered every request 502
// no_healthy_upstream, although the other service's upstream was only cooling down after one passive failure and
// answers: a single service in that state keeps serving (its panic pick tries an upstream the checks still call
// healthy, as nginx does when every server of a group is marked failed). How long the outage lasted depended on
// the order the services were written in.
// What is right now: with no service in rotation, each service of the split is asked in turn, and the first one
// that can still take the request (a cooling upstream its checks call healthy) serves it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient();
let stable: TestBackend;
let gw: InProcessGateway;

before(async () => {
  stable = await startBackend('stable');
  gw = await startInProcess({
    services: {
      // Down for the active checks: never in rotation, and not offered by a panic pick either.
      canary: { upstreams: [{ name: 'canary-1', address: '127.0.0.1', port: await closedPort() }], health_check: FAST_HEALTH_CHECKS },
      stable: {
        upstreams: [{ name: 'stable-1', address: '127.0.0.1', port: stable.port }],
        retries: 0,
        health_check: { enabled: false, passive_cooldown: '60s' },
      },
    },
    routes: [{ name: 'api', match: { path_prefix: '/' }, split: [{ service: 'canary', weight: 1 }, { service: 'stable', weight: 9 }] }],
  });
});

after(async () => {
  await client.close();
  await gw.close();
  await stable.stop();
});

test('a split whose first service is down and whose other is cooling down still serves from the cooling one', async () => {
  await waitFor(() => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'the canary marked down by its checks');
  // One failure of stable's only upstream (stopped for that request): it cools down for 60 s.
  await stable.stop();
  const failed = await client.request(`${gw.url}/x`);
  assert.equal(failed.status, 502, failed.text);
  assert.ok(gw.logs.some((l) => l.msg === 'Upstream Down' && l.upstream_service === 'stable'), 'stable cooling down');
  await stable.restart();
  // Nothing is in rotation now; stable's upstream answers again and its checks (off) never called it unhealthy.
  for (let i = 0; i < 3; i++) {
    const res = await client.request(`${gw.url}/x`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json<{ backend: string }>().backend, 'stable');
  }
});
