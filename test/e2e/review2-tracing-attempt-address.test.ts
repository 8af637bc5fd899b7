// Tracing review (2): the attempt span's server.address is the upstream's address as configured. It was cut from
// the log label (host:port), so an IPv6 upstream's span said "[::1]": OpenTelemetry's server.address is the bare
// name or address, and a backend's own spans (and any query for the address) say "::1".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';

test('an IPv6 upstream: server.address "::1" (no brackets) and server.port on the attempt span', async () => {
  const backend = createServer((_req, res) => res.end('v6'));
  await new Promise<void>((resolve) => backend.listen(0, '::1', resolve));
  const port = (backend.address() as AddressInfo).port;
  const receiver = await startOtlpReceiver();
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'six', address: '::1', port }] },
    tracing: { otlp_endpoint: receiver.url, response_header: 'x-trace-id' },
  });
  const client = createClient();
  after(async () => {
    await client.close();
    await gw.close();
    await receiver.close();
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });
  const res = await client.request(`${gw.url}/six`);
  assert.equal(res.status, 200);
  assert.equal(res.text, 'v6');
  const traceId = String(res.headers['x-trace-id']);
  await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.kind === SPAN_KIND.client), 'the attempt span', 10_000, 50);
  const attempt = receiver.spans.find((s) => s.traceId === traceId && s.kind === SPAN_KIND.client)!;
  assert.equal(attempt.attrs['server.address'], '::1');
  assert.equal(attempt.attrs['server.port'], port);
  assert.equal(attempt.attrs['portcullis.upstream'], 'six');
});
