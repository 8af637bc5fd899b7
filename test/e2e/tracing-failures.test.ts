// Tracing when things fail: a retried request shows both attempts with the retry reason, and an unreachable
// collector neither slows nor fails requests while the lost spans are counted in /metrics.
import { test, after } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** A collector that accepts connections and requests but never answers: exports can only time out. */
async function hangingCollector(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

for (const kind of ['refusing', 'hanging'] as const) {
  test(`a ${kind} collector: requests stay fast and succeed, dropped spans are counted in /metrics`, async () => {
    const backend = await startBackend('one');
    const hanging = kind === 'hanging' ? await hangingCollector() : undefined;
    const endpoint = hanging?.url ?? `http://127.0.0.1:${await closedPort()}/v1/traces`;
    const gw = await startInProcess({
      load_balancing: { upstreams: [{ name: 'one', address: '127.0.0.1', port: backend.port }] },
      admin: { enabled: true },
      tracing: { otlp_endpoint: endpoint },
    });
    const client = createClient({ connections: 8 });
    after(async () => {
      await client.close();
      await gw.close();
      await backend.stop();
      await hanging?.close();
    });
    // One at a time, so a latency is the request's own and not a queue's. 200 requests, two spans each.
    let slowest = 0;
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const res = await client.request(`${gw.url}/r/${i}`);
      assert.equal(res.status, 200);
      slowest = Math.max(slowest, performance.now() - started);
    }
    // A request held by the collector would take its 5 s export timeout; a loopback request takes milliseconds
    // (the margin is for a loaded CI machine).
    assert.ok(slowest < 4_000, `slowest request took ${Math.round(slowest)} ms`);
    await waitFor(
      async () => {
        const text = (await client.request(`${gw.adminUrl}/metrics`)).text;
        return (sampleValue(text, 'portcullis_tracing_spans_dropped_total') ?? 0) >= 400; // server + attempt span each
      },
      'dropped spans in /metrics',
      20_000, // the exporter retries for up to its 5 s timeout before giving a batch up
      200,
    );
    assert.equal(gw.logs.filter((l) => l.msg === 'Trace Export Failed').length, 1, 'the outage is logged once, not per batch');
    assert.equal((await client.request(`${gw.url}/after`)).status, 200);
  });
}
