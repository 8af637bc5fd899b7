// server.timeouts.request over HTTP/2 exempts gRPC calls (client-streaming and bidirectional calls stay open while
// used). The exemption went by the request's content type alone, which is the client's to claim: any HTTP/2 upload
// that said application/grpc escaped the bound, to any route, also to a service that cannot serve gRPC (an HTTP/1.1
// upstream). A call is now let go only once it is sent to an HTTP/2 upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH1Server, type Server } from 'node:http';
import { connect, createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { closedPort } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const REQUEST_MS = 1_500;
/** A trickled upload: one byte every 300 ms (never silent for request_body_chunk), for this long. */
const TRICKLE_MS = 5_000;

let h1: Server;
let h2: Http2Server;
let gw: InProcessGateway;
const pki = pkiDir();
const ca = createTestCa('gRPC Request Bound CA', pki.path);
const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });

before(async () => {
  // Both answer once the upload has ended.
  h1 = createH1Server((req, res) => {
    req.resume();
    req.on('end', () => res.end('done'));
  });
  h2 = createH2Server((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: '1s', request: `${REQUEST_MS}ms`, request_body_chunk: '1s' } },
    services: {
      plain: { upstreams: [{ name: 'h1', address: '127.0.0.1', port: (h1.address() as AddressInfo).port }] },
      grpc: { http2: true, upstreams: [{ name: 'h2', address: '127.0.0.1', port: (h2.address() as AddressInfo).port }] },
    },
    routes: [
      { name: 'plain', match: { path_prefix: '/plain' }, service: 'plain' },
      { name: 'grpc', match: { path_prefix: '/grpc' }, service: 'grpc' },
    ],
  });
});
after(async () => {
  await gw?.close();
  pki.remove();
  await new Promise<void>((resolve) => h1.close(() => resolve()));
  await new Promise<void>((resolve) => h2.close(() => resolve()));
});

/** An HTTP/2 upload trickled for TRICKLE_MS; resolves with when its stream closed (ms) and how it ended. */
function trickle(path: string, contentType: string, port = gw.gateway.port): Promise<{ closedAtMs: number; status: string; grpcStatus: string | undefined }> {
  const session = connect(`https://127.0.0.1:${port}`, { ca: ca.ca, servername: 'a.test' });
  session.on('error', () => undefined);
  const started = Date.now();
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers' });
    let status = 'none';
    let grpcStatus: string | undefined;
    req.on('response', (h) => {
      status = String(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])));
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    const writer = setInterval(() => {
      if (Date.now() - started >= TRICKLE_MS) {
        clearInterval(writer);
        if (!req.closed) req.end();
      } else if (!req.closed) req.write('x');
    }, 300);
    req.on('close', () => {
      clearInterval(writer);
      session.close();
      resolve({ closedAtMs: Date.now() - started, status, grpcStatus });
    });
  });
}

test('an HTTP/2 upload claiming application/grpc to an HTTP/1.1 service is held to timeouts.request', async () => {
  const result = await trickle('/plain/upload', 'application/grpc');
  assert.ok(result.closedAtMs < TRICKLE_MS - 1_000, `cut by the bound, not at the upload's end: ${JSON.stringify(result)}`);
  assert.notEqual(result.grpcStatus, '0', JSON.stringify(result));
});

test('the same upload as text/plain is held to it too', async () => {
  const result = await trickle('/plain/upload', 'text/plain');
  assert.ok(result.closedAtMs < TRICKLE_MS - 1_000, JSON.stringify(result));
});

test('a gRPC call to an HTTP/2 service stays open while used, past timeouts.request', async () => {
  const result = await trickle('/grpc/p.S/ClientStream', 'application/grpc');
  assert.ok(result.closedAtMs >= TRICKLE_MS, JSON.stringify(result));
  assert.deepEqual([result.status, result.grpcStatus], ['200', '0'], JSON.stringify(result));
});

test('a non-gRPC upload to the HTTP/2 service is held to the bound', async () => {
  const result = await trickle('/grpc/upload', 'application/octet-stream');
  assert.ok(result.closedAtMs < TRICKLE_MS - 1_000, JSON.stringify(result));
});

// From the fix's review: the release outlived its attempt. A call whose HTTP/2 service failed before sending
// (connection refused) was retried to the next service of a split, an HTTP/1.1 one, and stayed exempt there.
test('a gRPC call retried from a failed HTTP/2 service to an HTTP/1.1 one is held to timeouts.request again', async () => {
  const dead = await closedPort();
  const split = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: '1s', request: `${REQUEST_MS}ms`, request_body_chunk: '1s' } },
    services: {
      grpc: { http2: true, upstreams: [{ name: 'down', address: '127.0.0.1', port: dead }] },
      plain: { upstreams: [{ name: 'h1', address: '127.0.0.1', port: (h1.address() as AddressInfo).port }] },
    },
    routes: [{ name: 'r', match: { path_prefix: '/' }, split: [{ service: 'grpc', weight: 1 }, { service: 'plain', weight: 1 }] }],
  });
  try {
    const result = await trickle('/svc/Method', 'application/grpc', split.gateway.port);
    const upstreams = split.logs.filter((l) => l.msg === 'Select Upstream').map((l) => l.upstream);
    assert.deepEqual(upstreams.slice(0, 2), [`127.0.0.1:${dead}`, `127.0.0.1:${(h1.address() as AddressInfo).port}`], 'the HTTP/2 service first, then the retry');
    assert.ok(result.closedAtMs < TRICKLE_MS - 1_000, `cut by the bound: ${JSON.stringify(result)}`);
  } finally {
    await split.close();
  }
});
