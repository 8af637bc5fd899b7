// An HTTP/2 upstream whose SETTINGS_MAX_CONCURRENT_STREAMS allows no stream (0, or as many as are open): undici opens
// the stream regardless, nghttp2 holds its HEADERS, and the request was a 504 after upstream_response, counted
// against the upstream (Upstream Down) and never retried, though no byte of it had left. The connection watch now
// fails such a stream at its response timeout as unsent (UnsentStream): it is retried on another upstream whatever
// its method, as a REFUSED_STREAM is (a request whose body undici already took excepted: nothing whole is left to
// send), and the upstream leaves rotation as for the timeout it replaces (review9-upstream-h2-unsent-counted). The first request of a connection races the upstream's SETTINGS and is
// refused by it (REFUSED_STREAM, handled before); the ones after are held by nghttp2. Members: bodiless POSTs and GETs
// with another upstream, a POST with a body (502, not 504), a lone upstream (nowhere to retry: 502 upstream_reset, as
// an unretried REFUSED_STREAM to an HTTP/1 client).
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

const completed = (gw: InProcessGateway, id: unknown) => gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
const downLines = (gw: InProcessGateway) => gw.logs.filter((l) => l.msg === 'Upstream Down');

/** One request; the body's text when it is answered. */
async function send(gw: InProcessGateway, method: 'GET' | 'POST', body?: string) {
  return client.request(`${gw.url}/order`, body === undefined ? { method } : { method, body });
}

test('MAX_CONCURRENT_STREAMS 0: bodiless POSTs and GETs all go to the other upstream; it leaves rotation', async () => {
  const zero = await h2cUpstream('zero', 0);
  const other = await h2cUpstream('other');
  const gw = await gateway([zero.port, other.port]);
  // Round robin from `zero`: the 1st, 3rd, ... are tried there first. The 1st opens the connection and races the
  // upstream's SETTINGS (the upstream refuses it: REFUSED_STREAM, retried as before); the later ones are held by
  // nghttp2 on that connection, never sent.
  for (const method of ['POST', 'POST', 'POST', 'GET', 'GET'] as const) {
    const res = await send(gw, method);
    assert.deepEqual([res.status, res.text], [200, 'other'], `${method} ${completed(gw, res.headers['x-request-id'])?.error}`);
  }
  assert.equal(zero.streams, 0, 'nothing reached the upstream that allowed no stream');
  assert.deepEqual(downLines(gw).map((l) => l.upstream), [`127.0.0.1:${zero.port}`], 'held against the upstream, as the timeout was');
});

test('MAX_CONCURRENT_STREAMS 0: a POST whose body undici took is not retried: 502 at the response timeout, not 504', async () => {
  const zero = await h2cUpstream('zero', 0);
  const other = await h2cUpstream('other');
  const gw = await gateway([zero.port, other.port]);
  // The connection opened (its first request refused by the upstream, retried on `other`); then `other`'s turn.
  assert.equal((await send(gw, 'GET')).text, 'other');
  assert.equal((await send(gw, 'GET')).text, 'other');
  // The body was handed to the held stream: there is nothing whole to send again (forward.ts canRetry).
  const res = await send(gw, 'POST', 'order=1');
  const line = completed(gw, res.headers['x-request-id']);
  assert.deepEqual([res.status, line?.error, line?.cause], [502, 'UPSTREAM_RESET', 'UnsentStream(HTTP2_STREAM_NOT_SENT)']);
  assert.equal(zero.streams, 0);
  assert.deepEqual(downLines(gw).map((l) => l.upstream), [`127.0.0.1:${zero.port}`]);
});

test('a lone upstream advertising 0: 502 upstream_reset after the response timeout, not 504, counted', async () => {
  const zero = await h2cUpstream('zero', 0);
  const gw = await gateway([zero.port]);
  // The first request opens the connection and is refused by the upstream (REFUSED_STREAM, nowhere to retry: 502).
  assert.equal((await send(gw, 'POST')).status, 502);
  const res = await send(gw, 'GET');
  assert.equal(res.status, 502);
  const line = completed(gw, res.headers['x-request-id']);
  assert.deepEqual([line?.error, line?.cause], ['UPSTREAM_RESET', 'UnsentStream(HTTP2_STREAM_NOT_SENT)']);
  assert.equal(zero.streams, 0);
  assert.deepEqual(downLines(gw).map((l) => l.upstream), [`127.0.0.1:${zero.port}`]);
});
