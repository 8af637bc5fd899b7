// An HTTP/2 upstream's RST_STREAM INTERNAL_ERROR (or PROTOCOL_ERROR, ENHANCE_YOUR_CALM) before its response head is
// UPSTREAM_RESET since aaf2806, a retryable failure that may have been processed: the request is repeated only when
// its method is idempotent (RFC 9110 §9.2.2), never a POST or PATCH, with a body or without. Before aaf2806 it was
// PROXY_ERROR and never repeated. Real sockets: an h2c node:http2 upstream (two of them, so a retry has somewhere
// to go) that counts what it was sent and resets every stream before answering, a cleartext gateway, HTTP/1.1 clients.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const C = constants;
const servers: Http2Server[] = [];
const sessions = new Set<ServerHttp2Session>();
/** Requests each path reached the upstreams with, across both. */
const seen = new Map<string, number>();
let gw: InProcessGateway;

function resettingUpstream(): Http2Server {
  const server = createServer();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    seen.set(path, (seen.get(path) ?? 0) + 1);
    stream.on('error', () => undefined);
    stream.resume();
    // The request processed (its body read whole), then the stream reset with the code the path names.
    const code = Number(path.split('/')[1]);
    const reset = (): void => void stream.close(code);
    if (stream.readableEnded) reset();
    else stream.once('end', reset);
  });
  return server;
}

before(async () => {
  for (let i = 0; i < 2; i++) {
    const server = resettingUpstream();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
  gw = await startInProcess({
    load_balancing: {
      http2: true,
      retries: 1,
      health_check: { enabled: false, passive_cooldown: '1ms' },
      upstreams: upstreams(servers.map((s) => (s.address() as AddressInfo).port)),
    },
  });
});

after(async () => {
  await gw?.close();
  for (const session of sessions) session.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

let serial = 0;

test('an upstream stream reset before the head: an idempotent request is retried once, a POST or PATCH never', async () => {
  const cases: ReadonlyArray<readonly [string, boolean, number]> = [
    ['POST', true, 1],
    ['POST', false, 1],
    ['PATCH', true, 1],
    ['GET', false, 2],
    ['DELETE', false, 2],
  ];
  for (const code of [C.NGHTTP2_INTERNAL_ERROR, C.NGHTTP2_PROTOCOL_ERROR, C.NGHTTP2_ENHANCE_YOUR_CALM]) {
    for (const [method, withBody, expected] of cases) {
      const path = `/${code}/${method}-${withBody ? 'body' : 'nobody'}-${serial++}`;
      const res = await fetch(`${gw.url}${path}`, { method, ...(withBody ? { body: '{"charge":1}', headers: { 'content-type': 'application/json' } } : {}) });
      await res.arrayBuffer();
      await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed' && l.path === path), `the access log line of ${path}`);
      const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path)!;
      const what = `${path}: ${JSON.stringify({ status: res.status, seen: seen.get(path), error: line.error, cause: line.cause })}`;
      assert.equal(res.status, 502, what);
      assert.equal(line.error, 'UPSTREAM_RESET', what);
      assert.equal(seen.get(path), expected, what);
    }
  }
});
