// Tracing when things fail: a retried request shows both attempts with the retry reason, and an unreachable
// collector neither slows nor fails requests while the lost spans are counted in /metrics.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver.js';
import { sampleValue } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

test('a retried request: two attempt spans, the first failed, the second carrying the retry reason', async () => {
  const receiver = await startOtlpReceiver();
  const backend = await startBackend('live');
  const dead = await closedPort();
  // Weighted round robin picks the heavier upstream first: the refused one.
  const gw = await startInProcess({
    load_balancing: {
      upstreams: [
        { name: 'dead', address: '127.0.0.1', port: dead, weight: 100 },
        { name: 'live', address: '127.0.0.1', port: backend.port, weight: 1 },
      ],
      retries: 1,
    },
    tracing: { otlp_endpoint: receiver.url, response_header: 'x-trace-id' },
  });
  const client = createClient();
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
    await receiver.close();
  });
  const res = await client.request(`${gw.url}/retried`);
  assert.equal(res.status, 200);
  const traceId = String(res.headers['x-trace-id']);
  await waitFor(() => receiver.spans.filter((s) => s.traceId === traceId).length >= 3, 'server span and two attempts', 10_000);
  const spans = receiver.spans.filter((s) => s.traceId === traceId);
  const server = spans.find((s) => s.kind === SPAN_KIND.server)!;
  const attempts = spans.filter((s) => s.kind === SPAN_KIND.client).sort((a, b) => Number(a.attrs['portcullis.attempt']) - Number(b.attrs['portcullis.attempt']));
  assert.equal(attempts.length, 2);
  const [first, second] = attempts as [(typeof attempts)[0], (typeof attempts)[0]];
  for (const a of attempts) assert.equal(a.parentSpanId, server.spanId);
  assert.equal(first.attrs['portcullis.upstream'], 'dead');
  assert.equal(typeof first.attrs['error.type'], 'string');
  assert.equal(first.status?.code, 2, 'status ERROR');
  assert.equal(first.attrs['http.response.status_code'], undefined);
  assert.equal(second.attrs['portcullis.upstream'], 'live');
  assert.equal(second.attrs['portcullis.attempt'], 2);
  assert.equal(second.attrs['http.request.resend_count'], 1);
  assert.equal(second.attrs['portcullis.retry_reason'], first.attrs['error.type']);
  assert.equal(second.attrs['http.response.status_code'], 200);
  assert.equal(server.attrs['http.response.status_code'], 200);
});

test('an unreachable collector: requests stay fast and succeed, dropped spans are counted in /metrics', async () => {
  const backend = await startBackend('one');
  const collector = await closedPort();
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'one', address: '127.0.0.1', port: backend.port }] },
    admin: { enabled: true },
    tracing: { otlp_endpoint: `http://127.0.0.1:${collector}/v1/traces` },
  });
  const client = createClient({ connections: 8 });
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
  });
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => client.request(`${gw.url}/r/${i}`)));
  const elapsed = performance.now() - started;
  assert.ok(results.every((r) => r.status === 200));
  // 200 loopback requests take tens of milliseconds; a request waiting on the collector would take seconds.
  assert.ok(elapsed < 3_000, `200 requests took ${Math.round(elapsed)} ms`);
  let dropped = 0;
  await waitFor(
    async () => {
      const text = (await client.request(`${gw.adminUrl}/metrics`)).text;
      dropped = sampleValue(text, 'portcullis_tracing_spans_dropped_total') ?? 0;
      return dropped >= 400; // a server span and an attempt span per request
    },
    'dropped spans in /metrics',
    20_000, // the exporter retries for up to its 5 s timeout before giving a batch up
    200,
  );
  assert.ok(gw.logs.some((l) => l.msg === 'Trace Export Failed'), 'the outage is logged');
  assert.equal(gw.logs.filter((l) => l.msg === 'Trace Export Failed').length, 1, 'once, not per batch');
  // Still serving after the failed exports.
  assert.equal((await client.request(`${gw.url}/after`)).status, 200);
});
