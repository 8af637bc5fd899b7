// GET /metrics on the admin port: proxied traffic lands in the right series, histograms fill, health gauges flip.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';

const client = createClient();
after(() => client.close());

async function scrape(gw: InProcessGateway): Promise<string> {
  const res = await client.request(`${gw.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return res.text;
}

describe('request metrics', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  before(async () => {
    backend = await startBackend('one');
    gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  });
  // Optional chaining: a failed start-up must still release whatever did start.
  after(async () => {
    await gw?.close();
    await backend?.stop();
  });

  test('a proxied 200 increments requests_total with route, method, status and upstream', async () => {
    const labels = { route: 'proxy', service: 'default', method: 'GET', status: '200', upstream: `127.0.0.1:${backend.port}` };
    const before = sampleValue(await scrape(gw), 'portcullis_requests_total', labels) ?? 0;
    for (let i = 0; i < 3; i++) assert.equal((await client.request(`${gw.url}/items/${i}?q=${i}`)).status, 200);
    const text = await scrape(gw);
    assert.equal(sampleValue(text, 'portcullis_requests_total', labels), before + 3);
    // The path never becomes a label.
    assert.doesNotMatch(text, /items\//);
  });

  test('an upstream status is counted with its own status label', async () => {
    assert.equal((await client.request(`${gw.url}/status?code=503`)).status, 503);
    const text = await scrape(gw);
    const labels = { route: 'proxy', service: 'default', method: 'GET', status: '503', upstream: `127.0.0.1:${backend.port}` };
    assert.equal(sampleValue(text, 'portcullis_requests_total', labels), 1);
  });

  test('an unknown method is counted as OTHER and the health route as route="health"', async () => {
    await client.request(`${gw.url}/x`, { method: 'PURGE' });
    await client.request(`${gw.url}/health`);
    const text = await scrape(gw);
    assert.ok((sampleValue(text, 'portcullis_requests_total', { route: 'proxy', service: 'default', method: 'OTHER', status: '200', upstream: `127.0.0.1:${backend.port}` }) ?? 0) >= 1);
    assert.equal(sampleValue(text, 'portcullis_requests_total', { route: 'health', service: 'none', method: 'GET', status: '200', upstream: 'none' }), 1);
  });

  test('gateway and upstream latency histograms are exported with buckets, sum and count', async () => {
    await client.request(`${gw.url}/slow?ms=60`);
    const text = await scrape(gw);
    const upstream = `127.0.0.1:${backend.port}`;
    const count = sampleValue(text, 'portcullis_request_duration_seconds_count', { route: 'proxy' }) ?? 0;
    assert.ok(count >= 5, `count ${count}`);
    assert.ok((sampleValue(text, 'portcullis_request_duration_seconds_sum', { route: 'proxy' }) ?? 0) >= 0.06);
    assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_bucket', { route: 'proxy', le: '+Inf' }), count);
    const slowBucket = sampleValue(text, 'portcullis_upstream_duration_seconds_bucket', { upstream, le: '0.05' }) ?? 0;
    const all = sampleValue(text, 'portcullis_upstream_duration_seconds_count', { upstream }) ?? 0;
    assert.ok(all > slowBucket, 'the 60 ms request is above the 50 ms bucket');
    assert.match(text, /# TYPE portcullis_upstream_duration_seconds histogram/);
  });

  test('event counters, gauges and process metrics are present from the first scrape', async () => {
    const text = await scrape(gw);
    assert.equal(sampleValue(text, 'portcullis_auth_events_total', { event: 'reuse_detected' }), 0);
    assert.equal(sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision: 'reject', route: 'proxy' }), 0);
    assert.equal(sampleValue(text, 'portcullis_store_errors_total', { store: 'redis' }), 0);
    assert.equal(sampleValue(text, 'portcullis_requests_in_flight'), 0);
    assert.ok((sampleValue(text, 'portcullis_client_connections') ?? 0) >= 1);
    assert.equal(sampleValue(text, 'portcullis_upstream_healthy', { upstream: `127.0.0.1:${backend.port}`, name: 'b1', service: 'default' }), 1);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  });

  test('requests in flight are counted while they run', async () => {
    const slow = client.request(`${gw.url}/slow?ms=1500`);
    await waitFor('an in-flight request', async () => (sampleValue(await scrape(gw), 'portcullis_requests_in_flight') ?? 0) >= 1);
    const text = await scrape(gw);
    assert.equal(sampleValue(text, 'portcullis_upstream_in_flight', { upstream: `127.0.0.1:${backend.port}`, name: 'b1', service: 'default' }), 1);
    await slow;
    assert.equal(sampleValue(await scrape(gw), 'portcullis_requests_in_flight'), 0);
  });
});

test('a gateway-made 502 is counted with its status and error code', async () => {
  const dead = await startBackend('dead');
  await dead.stop();
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([dead.port]), retries: 0 } });
  after(() => gw.close());
  assert.equal((await client.request(`${gw.url}/a`)).status, 502);
  const text = await scrape(gw);
  assert.equal(
    sampleValue(text, 'portcullis_requests_total', { route: 'proxy', service: 'default', method: 'GET', status: '502', upstream: `127.0.0.1:${dead.port}` }),
    1,
  );
  assert.equal(sampleValue(text, 'portcullis_request_errors_total', { code: 'UPSTREAM_UNREACHABLE' }), 1);
});

test('the upstream health gauge follows active health checks down and back up', async () => {
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
  const gauge = async () => sampleValue(await scrape(gw), 'portcullis_upstream_healthy', { upstream: `127.0.0.1:${b.port}`, name: 'b2', service: 'default' });
  assert.equal(await gauge(), 1);
  await b.stop();
  await waitFor('b2 reported down', async () => (await gauge()) === 0, 10_000);
  assert.equal(sampleValue(await scrape(gw), 'portcullis_upstream_healthy', { upstream: `127.0.0.1:${a.port}`, name: 'b1', service: 'default' }), 1);
  await b.restart();
  await waitFor('b2 reported up again', async () => (await gauge()) === 1, 10_000);
});

// Series keys pack small integer ids; past 8,192 route names seen (config and reloads alike) the ids wrapped around,
// so route 8,193's requests were counted under route 1 and its own series never appeared.
describe('a route table past the packed-key bound', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  const ROUTES = 8_200;
  before(async () => {
    backend = await startBackend('many');
    gw = await startInProcess({
      services: { many: { upstreams: upstreams([backend.port]) } },
      routes: Array.from({ length: ROUTES }, (_, i) => ({ name: `r${i}`, match: { path_prefix: `/r${i}` }, service: 'many' })),
    });
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
  });

  test('every route keeps its own series, past the bound too', async () => {
    const names = ['r0', 'r1', 'r8191', 'r8192', 'r8193', `r${ROUTES - 1}`];
    // Every route seen once, so the ids run past the bound (64 at a time: one by one took 20 s); then the named ones
    // once more.
    for (let start = 0; start < ROUTES; start += 64) {
      const batch = Array.from({ length: Math.min(64, ROUTES - start) }, (_, k) => gw.gateway.inject({ method: 'GET', url: `/r${start + k}/x` }));
      for (const res of await Promise.all(batch)) assert.equal(res.status, 200);
    }
    for (const name of names) assert.equal((await gw.gateway.inject({ method: 'GET', url: `/${name}/x` })).status, 200);
    const text = await scrape(gw);
    for (const name of names) {
      const labels = { route: name, service: 'many', method: 'GET', status: '200', upstream: `127.0.0.1:${backend.port}` };
      assert.equal(sampleValue(text, 'portcullis_requests_total', labels), 2, name);
      assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_count', { route: name }), 2, `${name} duration`);
    }
  });
});
