// An HTTP/2 stream the upstream never let out (its SETTINGS_MAX_CONCURRENT_STREAMS allowed none) is found only when
// the request's upstream_response runs out (fab9b6d: UnsentStream, retried whatever the method). fab9b6d also kept
// such an upstream in rotation, as for REFUSED_STREAM; but a REFUSED_STREAM costs one round trip, an unsent stream
// the whole response timeout (30 s by default). An upstream stuck at 0 (a misconfigured proxy, a server that drains
// by advertising 0 instead of sending GOAWAY) then held every request round robin gave it for upstream_response,
// for as long as it stayed so, with no Upstream Down line to show why; a lone one had each request retried on itself,
// on the same connection still at 0, one more full timeout per retry. It now counts against the upstream as the 504
// it replaced did: out of rotation for the cooldown, never retried on itself. Members: two upstreams (a single
// unsent failure, then the other upstream only), a lone upstream (one attempt, not two).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startCountingH2cUpstream, type CountingH2cUpstream } from '../helpers/upstream-fault.js';

const client = createClient();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await client.close();
});

async function h2cUpstream(name: string, maxConcurrentStreams?: number): Promise<CountingH2cUpstream> {
  const upstream = await startCountingH2cUpstream(name, maxConcurrentStreams);
  cleanups.push(upstream.close);
  return upstream;
}

async function gateway(ports: number[]): Promise<InProcessGateway> {
  const gw = await startInProcess({
    load_balancing: { http2: true, retries: 1, strategy: 'round_robin', upstreams: upstreams(ports) },
    server: { timeouts: { upstream_response: '300ms' } },
  });
  cleanups.push(() => gw.close());
  return gw;
}

const UNSENT = 'UnsentStream(HTTP2_STREAM_NOT_SENT)';
const unsentLines = (gw: InProcessGateway) => gw.logs.filter((l) => (l.msg === 'Upstream Retry' || l.msg === 'Request Completed') && l.cause === UNSENT);

test('an upstream advertising 0 leaves rotation at its first unsent stream: later requests never wait on it', async () => {
  const zero = await h2cUpstream('zero', 0);
  const other = await h2cUpstream('other');
  const gw = await gateway([zero.port, other.port]);
  // Round robin from `zero`: the 1st opens its connection and is refused by its SETTINGS (REFUSED_STREAM, retried,
  // not counted); the 3rd is held by nghttp2 until upstream_response (UnsentStream), then goes to `other`. Before,
  // the 5th was held the same way, and so on every other request.
  for (let i = 0; i < 6; i++) {
    const res = await client.request(`${gw.url}/order`, { method: 'GET' });
    assert.deepEqual([res.status, res.text], [200, 'other']);
  }
  assert.equal(zero.streams, 0);
  assert.equal(unsentLines(gw).length, 1, 'one request waited on the upstream that allows no stream');
  const down = gw.logs.filter((l) => l.msg === 'Upstream Down');
  assert.deepEqual(down.map((l) => l.upstream), [`127.0.0.1:${zero.port}`]);
});

test('a lone upstream advertising 0: one attempt, not retried on itself (the same connection still allows none)', async () => {
  const zero = await h2cUpstream('zero', 0);
  const gw = await gateway([zero.port]);
  // The first request opens the connection and is refused by the upstream's SETTINGS (REFUSED_STREAM: 502).
  assert.equal((await client.request(`${gw.url}/order`, { method: 'POST' })).status, 502);
  const res = await client.request(`${gw.url}/order`, { method: 'GET' });
  assert.equal(res.status, 502);
  const id = res.headers['x-request-id'];
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
  assert.deepEqual([line?.error, line?.cause], ['UPSTREAM_RESET', UNSENT]);
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Retry' && l.request_id === id).length, 0, 'not retried on the same upstream');
  assert.equal(zero.streams, 0);
});
