// Tracing review (2): url.path is the request target's path and nothing else. The server span starts before the
// target is judged (a non-canonical one is answered 400), and url.path took the target as sent up to its query
// string: an absolute-form target's scheme and authority came with it, userinfo password included
// (`GET http://user:s3cret@host/x`), and a fragment sent on the request line. The collector got them all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { startOtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver.js';
import { rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

test('an absolute-form target loses its scheme and authority (userinfo included), a fragment is no part of url.path', async () => {
  const receiver = await startOtlpReceiver();
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    tracing: { otlp_endpoint: receiver.url, response_header: 'x-trace-id' },
  });
  after(async () => {
    await gw.close();
    await backend.stop();
    await receiver.close();
  });
  const cases: ReadonlyArray<readonly [target: string, path: string | undefined]> = [
    ['http://user:s3cret@a.test/x?token=q', '/x'],
    ['https://alice:s3cret@a.test', '/'],
    ['HTTP://bob:s3cret@a.test:8080/deep/path', '/deep/path'],
    ['ws://carol:s3cret@a.test/socket', '/socket'],
    ['/fragment#s3cret', '/fragment'],
    ['*', undefined], // no origin-form path at all: none recorded
  ];
  for (const [target, path] of cases) {
    const res = await rawRequest(gw.gateway.port, `GET ${target} HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n`);
    assert.equal(res.status, 400, target);
    const traceId = res.headers['x-trace-id']!;
    await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.kind === SPAN_KIND.server), `the span of ${target}`, 10_000, 50);
    const span = receiver.spans.find((s) => s.traceId === traceId && s.kind === SPAN_KIND.server)!;
    assert.equal(span.attrs['url.path'], path, target);
    assert.equal(span.attrs['http.response.status_code'], 400);
  }
  assert.ok(!JSON.stringify(receiver.spans).includes('s3cret'), 'no userinfo password or fragment in any span');
});
