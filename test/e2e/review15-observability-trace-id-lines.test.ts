// While tracing is on, every log line about a request carries its trace_id (README, Tracing), so a trace leads to its
// lines. Two did not: `Upstream TLS Failed` (an upstream that does not speak the TLS the service is set to), and the
// debug `Route Not Found` that lists why each route passed on the request; nor did the `Request Error` lines of a
// built-in phase's failure.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';

test('Upstream TLS Failed and Route Not Found carry the trace_id of their request', async () => {
  const receiver = await startOtlpReceiver();
  const plain = await startBackend('plain'); // cleartext, to a service set to TLS: the handshake fails
  const client = createClient();
  const gw = await startInProcess({
    logging: { level: 'debug' },
    services: { tls: { upstreams: [{ name: 'p', address: '127.0.0.1', port: plain.port }], retries: 0, tls: { enabled: true } } },
    routes: [{ name: 'tls', match: { path_prefix: '/tls' }, service: 'tls' }],
    tracing: { otlp_endpoint: receiver.url },
  });
  after(async () => {
    await client.close();
    await gw.close();
    await plain.stop();
    await receiver.close();
  });

  assert.equal((await client.request(`${gw.url}/tls/x`)).status, 502);
  assert.equal((await client.request(`${gw.url}/nowhere`)).status, 404);
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Request Completed').length === 2, 'both requests logged');
  const traceOf = (path: string): unknown => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path)?.trace_id;
  assert.match(String(traceOf('/tls/x')), /^[0-9a-f]{32}$/);
  const tlsFailed = gw.logs.find((l) => l.msg === 'Upstream TLS Failed');
  assert.ok(tlsFailed, 'the handshake failure was logged');
  assert.equal(tlsFailed.trace_id, traceOf('/tls/x'));
  const notFound = gw.logs.find((l) => l.msg === 'Route Not Found');
  assert.ok(notFound, 'the debug line was written');
  assert.equal(notFound.trace_id, traceOf('/nowhere'));
});
