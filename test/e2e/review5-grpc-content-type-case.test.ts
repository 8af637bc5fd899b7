// Media types are case-insensitive (RFC 9110 §8.3.1), but the gateway told a gRPC call by `application/grpc` in
// lower case only. A call sent as `Content-Type: Application/GRPC` got the gateway's own errors (401, 502) as JSON,
// which no gRPC client reads, and an upstream's `Application/GRPC` response that ended without grpc-status was
// relayed as a clean end. The request and the response side now share one case-insensitive test
// (isGrpcContentType): gateway-made errors are trailers-only with grpc-status over HTTP/2, and in the call's own
// gRPC-Web type over HTTP/1.1; an upstream's statusless gRPC response is reset, whatever the case of its type.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createServer, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { connect as tlsConnect } from 'node:tls';
import { responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** One length-prefixed gRPC message of 2 bytes. */
const MESSAGE = Buffer.from([0, 0, 0, 0, 2, 8, 1]);

const pki = pkiDir();
let ca: TestCa;
let upstream: Http2Server;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Grpc Case CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  // An h2c gRPC upstream that answers in a mixed-case type, sends one message, then resets the call: node sends
  // END_STREAM before the RST_STREAM, so the gateway sees a gRPC response end without grpc-status.
  upstream = createServer();
  upstream.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'Application/GRPC+proto' });
    stream.write(MESSAGE);
    setTimeout(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR), 30);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const h2cPort = (upstream.address() as AddressInfo).port;
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    jwt: { secret: TEST_SECRET },
    services: {
      // Nothing listens on port 9: every call routed there is a gateway-made 502.
      down: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }], retries: 0, health_check: { enabled: false } },
      h2c: { upstreams: [{ name: 'h2c', address: '127.0.0.1', port: h2cPort }], http2: true, retries: 0, health_check: { enabled: false } },
    },
    routes: [
      { name: 'private', match: { path_prefix: '/private.Echo' }, service: 'down' },
      { name: 'reset', match: { path_prefix: '/reset.Echo' }, service: 'h2c', auth: 'off' },
      { name: 'down', match: { path_prefix: '/' }, service: 'down', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
});

after(async () => {
  await gw?.close();
  upstream?.close();
  pki.remove();
});

/** The trailers-only answer a gRPC client reads: HTTP 200, no body, the status in the one HEADERS frame. */
function assertTrailersOnly(status: number, headers: IncomingHttpHeaders, body: string, contentType: string, grpcStatus: string, what: string): void {
  assert.equal(status, 200, what);
  assert.equal(headers['content-type'], contentType, what);
  assert.equal(headers['grpc-status'], grpcStatus, what);
  assert.ok(String(headers['grpc-message'] ?? '') !== '', `${what}: a grpc-message`);
  assert.equal(body, '', what);
}

describe('a gRPC call whose content type is not in lower case, over HTTP/2', () => {
  async function call(path: string, type: string): Promise<Awaited<ReturnType<typeof h2request>>> {
    const session = await h2connect(gw.gateway.port, ca.ca);
    try {
      return await h2request(session, { ':method': 'POST', ':path': path, 'content-type': type, te: 'trailers' }, MESSAGE);
    } finally {
      session.close();
    }
  }

  for (const type of ['Application/GRPC', 'APPLICATION/grpc+proto']) {
    test(`${type}: a gateway-made 502 is trailers-only, grpc-status 14 UNAVAILABLE`, async () => {
      const res = await call('/echo.Echo/Say', type);
      assertTrailersOnly(res.status, res.headers, res.body.toString(), 'application/grpc', '14', type);
      assert.equal(res.trailers, undefined, 'the status is in the head, not in trailers after a body');
    });
  }

  test('Application/GRPC: a gateway-made 401 is trailers-only, grpc-status 16 UNAUTHENTICATED', async () => {
    const res = await call('/private.Echo/Say', 'Application/GRPC');
    assertTrailersOnly(res.status, res.headers, res.body.toString(), 'application/grpc', '16', 'the 401');
  });

  test('an upstream response typed Application/GRPC+proto that ends without grpc-status is reset, not ended clean', async () => {
    const session = await h2connect(gw.gateway.port, ca.ca);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/reset.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
      let data = 0;
      let trailers: IncomingHttpHeaders | undefined;
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (d: Buffer) => (data += d.length));
      stream.on('error', () => undefined);
      stream.end(MESSAGE);
      await new Promise((resolve) => stream.once('close', resolve));
      assert.equal(data, MESSAGE.length, 'the message that came is relayed');
      assert.equal(trailers?.['grpc-status'], undefined);
      assert.equal(stream.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      session.close();
    }
  });
});

describe('a gRPC-Web call whose content type is not in lower case, over HTTP/1.1', () => {
  function call(type: string, path = '/echo.Echo/Say'): string {
    return (
      `POST ${path} HTTP/1.1\r\nHost: a.test\r\nContent-Type: ${type}\r\nX-Grpc-Web: 1\r\n` +
      `Content-Length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0`
    );
  }

  /** `request` written on a TLS connection that offers HTTP/1.1 alone: a gRPC-Web client's. */
  async function send(request: string): Promise<RawResponse> {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(request);
    return responseUntilClose(socket);
  }

  for (const [type, echoed] of [
    ['Application/grpc-web', 'application/grpc-web'],
    ['application/GRPC-WEB-TEXT+proto', 'application/grpc-web-text+proto'],
  ] as const) {
    test(`${type}: a gateway-made 502 is trailers-only in ${echoed}, grpc-status 14`, async () => {
      const res = await send(call(type));
      assertTrailersOnly(res.status, res.headers, res.body, echoed, '14', type);
      assert.equal(res.headers['content-length'], '0');
    });
  }

  test('Application/grpc-web: a gateway-made 401 is trailers-only, grpc-status 16', async () => {
    const res = await send(call('Application/grpc-web', '/private.Echo/Say'));
    assertTrailersOnly(res.status, res.headers, res.body, 'application/grpc-web', '16', 'the 401');
  });
});
