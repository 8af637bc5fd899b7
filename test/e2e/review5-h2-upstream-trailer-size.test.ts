// What was wrong: 0b96a7d holds an HTTP/2 upstream's response head to the 16 KB that undici holds an HTTP/1 head to,
// but not its trailers. undici counts an HTTP/1 trailer section on its own against the same 16,384 bytes and cuts
// the response past it; an HTTP/2 upstream's 20 KB trailers were relayed, so the same service still answered
// differently by protocol (an HTTP/1 client of the gateway then failed on them with "Header overflow").
// What is right now: an HTTP/2 upstream's trailers are counted as its head is: past the bound the response is cut as
// for an HTTP/1 upstream (an HTTP/1 client's connection closed before the end; a gRPC call ends with trailers of the
// gateway's own status), logged upstream_protocol with the overflow named; trailers under it are relayed.
// An h2c upstream (node:http2) and an HTTP/1 upstream behind an in-process gateway; node:http and node:http2 clients.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** The trailer value's length asked for by `?trailer=N`. */
function trailerLength(url: string | undefined): number {
  return Number(new URL(url ?? '/', 'http://x').searchParams.get('trailer') ?? '1');
}

let h2: Http2Server;
let h1: Server;
let gw: InProcessGateway;
const pki = pkiDir();
let ca: TestCa;
/** The gateway's TLS address (gw.url names http:). */
let base: string;

before(async () => {
  h2 = createH2Server();
  h2.on('stream', (stream, headers) => {
    const grpc = headers['content-type'] === 'application/grpc';
    stream.respond({ ':status': 200, 'content-type': grpc ? 'application/grpc' : 'text/plain' }, { waitForTrailers: true });
    const trailers: Record<string, string> = { 'x-trail': 't'.repeat(trailerLength(headers[':path'])) };
    if (grpc) trailers['grpc-status'] = '0';
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    // gRPC: one empty message (flag 0, length 0).
    stream.end(grpc ? Buffer.alloc(5) : 'ok');
  });
  h1 = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-trail' });
    res.write('ok');
    res.addTrailers({ 'x-trail': 't'.repeat(trailerLength(req.url)) });
    res.end();
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  const service = (port: number, http2: boolean): Record<string, unknown> => ({
    upstreams: [{ name: http2 ? 'h2' : 'h1', address: '127.0.0.1', port }],
    http2,
    retries: 0,
  });
  ca = createTestCa('trailer size CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    services: { h2: service((h2.address() as AddressInfo).port, true), h1: service((h1.address() as AddressInfo).port, false) },
    routes: [
      { name: 'h2', match: { path_prefix: '/h2' }, service: 'h2', auth: 'off' },
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1', auth: 'off' },
    ],
  });
  base = `https://127.0.0.1:${gw.gateway.port}`;
});

after(async () => {
  await gw?.close();
  h1?.closeAllConnections();
  await new Promise<void>((resolve) => (h1 ? h1.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (h2 ? h2.close(() => resolve()) : resolve()));
  pki.remove();
});

/**
 * An HTTP/1.1 GET over TLS: how it ended (complete, cut before its end, or refused by the client's own parser for a
 * trailer section over its 16 KB, i.e. relayed) and the x-trail trailer's length when complete.
 */
function get(path: string): Promise<{ status: number; outcome: 'complete' | 'cut' | 'client refused the trailers'; trailer: number }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const req = httpsRequest(`${base}${path}`, { headers: { te: 'trailers' }, ca: ca.ca, servername: 'a.test' }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => resolve({ status, outcome: 'complete', trailer: res.trailers['x-trail']?.length ?? 0 }));
      res.on('aborted', () => resolve({ status, outcome: 'cut', trailer: 0 }));
      res.on('error', () => resolve({ status, outcome: 'cut', trailer: 0 }));
    });
    req.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'HPE_HEADER_OVERFLOW') resolve({ status, outcome: 'client refused the trailers', trailer: 0 });
      else reject(err);
    });
    req.end();
  });
}

for (const upstream of ['h2', 'h1'] as const) {
  test(`${upstream} upstream: 20 KB of trailers cut the response, never relayed`, async () => {
    const res = await get(`/${upstream}/x?trailer=20000`);
    assert.deepEqual(res, { status: 200, outcome: 'cut', trailer: 0 });
  });

  test(`${upstream} upstream: 15 KB of trailers are relayed`, async () => {
    const res = await get(`/${upstream}/x?trailer=15000`);
    assert.deepEqual(res, { status: 200, outcome: 'complete', trailer: 15000 });
  });
}

test('the h2 trailer refusal is logged as the head one: upstream_protocol, the overflow named', async () => {
  await get('/h2/logged?trailer=20000');
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/h2/logged');
  assert.ok(line !== undefined);
  assert.equal(line.error, 'UPSTREAM_PROTOCOL');
  assert.equal(line.cause, 'HeadersOverflowError(UND_ERR_HEADERS_OVERFLOW)');
});

test('a gRPC call whose upstream trailers are over the bound ends with the gateway status, not the 20 KB trailer', async () => {
  const session = connect(base, { ca: ca.ca, servername: 'a.test' });
  try {
    const got = await new Promise<{ status: string | undefined; trailer: number }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/h2/pkg.Svc/Call?trailer=20000', 'content-type': 'application/grpc', te: 'trailers' });
      let trailers: Record<string, unknown> = {};
      stream.on('trailers', (t) => (trailers = t));
      stream.on('error', reject);
      stream.resume();
      stream.on('close', () => resolve({ status: trailers['grpc-status'] as string | undefined, trailer: String(trailers['x-trail'] ?? '').length }));
      stream.end(Buffer.alloc(5));
    });
    assert.equal(got.trailer, 0, 'the oversized trailer is not relayed');
    assert.equal(got.status, '14', 'UNAVAILABLE, as for a 502 after the response began');
  } finally {
    session.close();
  }
});
