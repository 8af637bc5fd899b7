// Metrics review (2): one upstream (the same address, port and name) in two services. Each service keeps its own
// backend for it (its own in-flight count, health and cooldown), yet the upstream gauges were labelled by upstream
// and name alone: the second service's value overwrote the first's in the same series, so /metrics showed 0 in
// flight while the first service's requests were running there, and one service's view of its health for both.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

test('an upstream shared by two services: the in-flight and health gauges of each service, not one overwriting the other', async () => {
  const backend = await startBackend('shared');
  const upstream = { name: 'a', address: '127.0.0.1', port: backend.port };
  const gw = await startInProcess({
    services: {
      s1: { upstreams: [upstream] },
      // s2 probes a path the backend answers 503: s2 finds the upstream down, s1 (no active checks) does not.
      s2: { upstreams: [upstream], health_check: { ...FAST_HEALTH_CHECKS, path: '/status?code=503' } },
    },
    routes: [
      { name: 'r1', match: { path_prefix: '/one' }, service: 's1', strip_prefix: true },
      { name: 'r2', match: { path_prefix: '/two' }, service: 's2', strip_prefix: true },
    ],
    admin: { enabled: true },
  });
  const client = createClient({ connections: 8 });
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
  });
  const label = `127.0.0.1:${backend.port}`;
  await waitFor(
    async () => {
      const text = (await client.request(`${gw.adminUrl}/metrics`)).text;
      return (
        sampleValue(text, 'portcullis_upstream_healthy', { upstream: label, name: 'a', service: 's2' }) === 0 &&
        sampleValue(text, 'portcullis_upstream_healthy', { upstream: label, name: 'a', service: 's1' }) === 1
      );
    },
    "the upstream down for s2 and up for s1 in /metrics",
    5_000,
    50,
  );
  const slow = [1, 2, 3].map(() => client.request(`${gw.url}/one/slow?ms=1500`));
  let text = '';
  await waitFor(
    async () => {
      text = (await client.request(`${gw.adminUrl}/metrics`)).text;
      return (sampleValue(text, 'portcullis_upstream_in_flight', { upstream: label, name: 'a', service: 's1' }) ?? 0) === 3;
    },
    "3 in flight on s1's upstream in /metrics",
    1_000,
    20,
  );
  assert.equal(sampleValue(text, 'portcullis_upstream_in_flight', { upstream: label, name: 'a', service: 's2' }), 0);
  for (const res of await Promise.all(slow)) assert.equal(res.status, 200);
});
