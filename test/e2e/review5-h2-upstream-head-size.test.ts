// What was wrong: an upstream's response head over 16 KB was refused (502 upstream_protocol) when the upstream
// spoke HTTP/1, but relayed when it spoke HTTP/2 (undici gives node's http2 client no header-list bound of its own,
// and node's default is 64 KB): the same service answered differently by protocol, and the README had to say so.
// What is right now: an HTTP/2 upstream's head is counted as undici counts an HTTP/1 one (names and values, 16,384
// bytes or more refused): 502 upstream_protocol for both, and a head just under the bound is relayed by both.
// An h2c upstream (node:http2) and an HTTP/1 upstream answering the same heads, behind an in-process gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';

/** x-big's length for `?head=N`: the head's names and values come to N bytes with the other headers counted. */
function bigValue(url: string | undefined, others: number): string {
  const want = Number(new URL(url ?? '/', 'http://x').searchParams.get('head') ?? '0');
  return 'v'.repeat(Math.max(1, want - others - 'x-big'.length));
}

let h2: Http2Server;
let h1: Server;
let gw: InProcessGateway;

before(async () => {
  // Only x-big and content-type: both servers send the same two fields (node's http2 server adds date; counted).
  h2 = createH2Server();
  h2.on('stream', (stream, headers) => {
    const date = new Date().toUTCString();
    const others = 'content-type'.length + 'text/plain'.length + 'date'.length + date.length;
    stream.respond({ ':status': 200, 'content-type': 'text/plain', date, 'x-big': bigValue(headers[':path'], others) });
    stream.end('ok');
  });
  h1 = createHttpServer((req, res) => {
    const date = new Date().toUTCString();
    const others = 'content-type'.length + 'text/plain'.length + 'date'.length + date.length + 'connection'.length + 'keep-alive'.length + 'keep-alive'.length + 'timeout=5'.length + 'content-length'.length + 1;
    res.sendDate = false;
    res.writeHead(200, { 'content-type': 'text/plain', date, 'x-big': bigValue(req.url, others), 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  const service = (port: number, http2: boolean): Record<string, unknown> => ({
    upstreams: [{ name: http2 ? 'h2' : 'h1', address: '127.0.0.1', port }],
    http2,
    retries: 0,
  });
  gw = await startInProcess({
    services: { h2: service((h2.address() as AddressInfo).port, true), h1: service((h1.address() as AddressInfo).port, false) },
    routes: [
      { name: 'h2', match: { path_prefix: '/h2' }, service: 'h2', auth: 'off' },
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1', auth: 'off' },
    ],
  });
});

after(async () => {
  await gw?.close();
  h1?.closeAllConnections();
  await new Promise<void>((resolve) => (h1 ? h1.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (h2 ? h2.close(() => resolve()) : resolve()));
});

async function get(path: string): Promise<{ status: number; code: string | undefined; big: number }> {
  const res = await fetch(`${gw.url}${path}`);
  const text = await res.text();
  const code = res.status === 502 ? (JSON.parse(text) as { code: string }).code : undefined;
  return { status: res.status, code, big: res.headers.get('x-big')?.length ?? 0 };
}

for (const upstream of ['h2', 'h1'] as const) {
  test(`${upstream} upstream: a 20 KB response head is 502 upstream_protocol, never relayed`, async () => {
    const res = await get(`/${upstream}/x?head=20000`);
    assert.equal(res.status, 502);
    assert.equal(res.code, 'upstream_protocol');
    assert.equal(res.big, 0);
  });

  test(`${upstream} upstream: a head of 15 KB is relayed`, async () => {
    const res = await get(`/${upstream}/x?head=15000`);
    assert.equal(res.status, 200);
    assert.ok(res.big > 14_000, `x-big relayed (${res.big} bytes)`);
  });
}

test('the h2 refusal is logged as the HTTP/1 one is: upstream_protocol, with the overflow named', async () => {
  await get('/h2/logged?head=20000');
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/h2/logged');
  assert.ok(line !== undefined);
  assert.equal(line.status, 502);
  assert.equal(line.error, 'UPSTREAM_PROTOCOL');
  assert.equal(line.cause, 'HeadersOverflowError(UND_ERR_HEADERS_OVERFLOW)');
});
