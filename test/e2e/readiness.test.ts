// GET /ready on the admin port: 200 while an upstream is healthy, 503 naming "upstreams" when none is, and back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';

const client = createClient();
after(() => client.close());

test('/ready follows the upstreams: ready, not_ready naming "upstreams" when all are down, ready again', async () => {
  const a = await startBackend('a');
  const b = await startBackend('b');
  after(() => Promise.all([a.stop(), b.stop()]));
  const gw = await startInProcess({
    load_balancing: {
      upstreams: upstreams([a.port, b.port]),
      health_check: FAST_HEALTH_CHECKS,
    },
  });
  after(() => gw.close());
  const ready = () => client.request(`${gw.adminUrl}/ready`);

  const first = await ready();
  assert.equal(first.status, 200);
  assert.deepEqual(first.json(), { status: 'ready' });
  assert.match(String(first.headers['content-type']), /^application\/json/);

  await a.stop();
  await waitFor('the health checker to see b1 down', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy' && l.upstream === `127.0.0.1:${a.port}`), 10_000);
  assert.equal((await ready()).status, 200, 'one healthy upstream is enough');

  await b.stop();
  await waitFor('/ready to answer 503', async () => (await ready()).status === 503, 10_000);
  const down = await ready();
  assert.deepEqual(down.json(), { status: 'not_ready', checks: { upstreams: 'down', accepting: 'ok' } });
  // Liveness on the proxy port is unaffected.
  assert.equal((await client.request(`${gw.url}/health`)).status, 200);

  await b.restart();
  await waitFor('/ready to answer 200 again', async () => (await ready()).status === 200, 10_000);
  assert.deepEqual((await ready()).json(), { status: 'ready' });
});

test('the admin port answers unknown paths with 404 JSON and wrong methods with 405', async () => {
  const a = await startBackend('a');
  after(() => a.stop());
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([a.port]) } });
  after(() => gw.close());
  const missing = await client.request(`${gw.adminUrl}/nope`);
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json(), { error: 'Not Found', code: 'not_found', request_id: missing.headers['x-request-id'] });
  const post = await client.request(`${gw.adminUrl}/ready`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  const get = await client.request(`${gw.adminUrl}/reload`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  // The admin routes are not on the proxy port: /metrics there is proxied like any other path.
  const proxied = await client.request(`${gw.url}/metrics`);
  assert.equal(proxied.json<{ backend: string }>().backend, 'a');
});

test('/ready answers 503 naming "accepting" while the gateway drains, before its port closes', async () => {
  const a = await startBackend('a');
  after(() => a.stop());
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([a.port]) },
    server: { timeouts: { shutdown_drain: '5s' } },
  });
  const inFlight = client.request(`${gw.url}/slow?ms=1500`);
  await waitFor('the slow request to reach the backend', () => a.active === 1, 5_000);
  const closing = gw.close();
  const res = await client.request(`${gw.adminUrl}/ready`);
  assert.equal(res.status, 503);
  assert.equal(res.json<{ checks: Record<string, string> }>().checks.accepting, 'down');
  assert.equal((await inFlight).status, 200, 'the in-flight request still completes');
  await closing;
});
