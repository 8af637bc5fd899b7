// A gRPC response that ends without grpc-status did not complete: relayed as it came, the client got END_STREAM
// without a status. That is what an HTTP/2 upstream reset mid-response looks like from here: node's http2 server
// sends END_STREAM before the RST_STREAM of stream.close(code), and nghttp2 drops a RST_STREAM for a stream it has
// already closed, so undici reports a clean end. The gateway now treats it as an upstream failure mid-response:
// the client's stream is reset with INTERNAL_ERROR and the access log has the error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createServer, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** One length-prefixed gRPC message of 2 bytes. */
const MESSAGE = Buffer.from([0, 0, 0, 0, 2, 8, 1]);
const pki = pkiDir();
let ca: TestCa;
let upstream: Http2Server;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Reset CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = createServer();
  upstream.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = headers[':path'];
    if (path === '/echo.Echo/Ok') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
      stream.end(MESSAGE);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': path === '/plain' ? 'application/octet-stream' : 'application/grpc' });
    stream.write(MESSAGE);
    // A reset in the middle of the call: node sends END_STREAM, then RST_STREAM(INTERNAL_ERROR).
    setTimeout(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR), 30);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    load_balancing: { http2: true, retries: 0, health_check: { enabled: false }, upstreams: upstreams([(upstream.address() as AddressInfo).port]) },
  });
});

after(async () => {
  await gw?.close();
  upstream?.close();
  pki.remove();
});

interface Call {
  readonly status: number;
  readonly data: number;
  readonly trailers: IncomingHttpHeaders | undefined;
  readonly rstCode: number | undefined;
}

async function call(path: string, contentType = 'application/grpc'): Promise<Call> {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers' });
    let status = 0;
    let data = 0;
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (d: Buffer) => (data += d.length));
    stream.on('error', () => undefined);
    stream.end(MESSAGE);
    await new Promise((resolve) => stream.once('close', resolve));
    return { status, data, trailers, rstCode: stream.rstCode };
  } finally {
    session.close();
  }
}

function completed(path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

test('a gRPC call that ends with its status passes through whole (trailers, NO_ERROR)', async () => {
  const res = await call('/echo.Echo/Ok');
  assert.equal(res.status, 200);
  assert.equal(res.data, MESSAGE.length);
  assert.equal(res.trailers?.['grpc-status'], '0');
  assert.equal(res.rstCode, constants.NGHTTP2_NO_ERROR);
  await waitFor(() => completed('/echo.Echo/Ok') !== undefined, 'the access log line');
  assert.equal(completed('/echo.Echo/Ok')?.error, undefined);
});

test('a gRPC call its upstream resets mid-response is reset with INTERNAL_ERROR, never ended without a status', async () => {
  const res = await call('/echo.Echo/RstMid');
  assert.equal(res.status, 200);
  assert.equal(res.data, MESSAGE.length, 'the message that came is relayed');
  assert.equal(res.trailers?.['grpc-status'], undefined);
  assert.equal(res.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
  await waitFor(() => completed('/echo.Echo/RstMid') !== undefined, 'the access log line');
  assert.equal(completed('/echo.Echo/RstMid')?.error, 'UPSTREAM_PROTOCOL');
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Upstream Down'), []);
});
