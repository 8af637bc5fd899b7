// What was wrong: a request whose first upstream failed and whose retry was answered by another upstream kept the
// first attempt's failure as its own. The client got the 200, but `Request Completed` said `"error":
// "UPSTREAM_UNREACHABLE"` beside `"status":200`, `portcullis_request_errors_total{code="UPSTREAM_UNREACHABLE"}`
// counted it, and its trace's server span carried error.type: README has "error" on a request the gateway answered
// with an error, and a failover that worked is none (its failure is the `Upstream Retry` warning's `reason`).
// What is right now: once the retry's upstream answers, the earlier attempt's failure is no longer the request's:
// the line has no error, the counter does not move; a retry that fails too still reports its own failure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  backend = await startBackend('good');
  // The closed port first: round robin's first pick.
  gw = await startInProcess({
    load_balancing: { strategy: 'round_robin', upstreams: upstreams([await closedPort(), backend.port]), retries: 1 },
  });
});

after(async () => {
  await client.close();
  await gw.close();
  await backend.stop();
});

test('a request the retry answered is logged and counted without the first attempt\'s failure', async () => {
  const res = await client.request(`${gw.url}/orders`);
  assert.equal(res.status, 200, res.text);
  const id = res.headers['x-request-id'];
  const retry = gw.logs.find((l) => l.msg === 'Upstream Retry' && l.request_id === id);
  assert.equal(retry?.reason, 'UPSTREAM_UNREACHABLE', 'the first attempt failed and was retried');
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
  assert.equal(line?.status, 200);
  assert.equal(line?.error, undefined, `no error on a request answered 200: ${JSON.stringify(line)}`);
  assert.equal(line?.cause, undefined);
  const metrics = (await client.request(`${gw.adminUrl}/metrics`)).text;
  assert.doesNotMatch(metrics, /portcullis_request_errors_total\{code="UPSTREAM_UNREACHABLE"\} [1-9]/);
});

test('a retry that fails too is still answered and logged with its own failure', async () => {
  // The good upstream stopped: both attempts fail (the closed port is cooling down, then tried by the panic pick).
  await backend.stop();
  const res = await client.request(`${gw.url}/orders`);
  assert.equal(res.status, 502, res.text);
  const id = res.headers['x-request-id'];
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
  assert.equal(line?.status, 502);
  assert.equal(line?.error, 'UPSTREAM_UNREACHABLE');
});
