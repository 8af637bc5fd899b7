// A gRPC-Web call (content-type application/grpc-web, +proto, -text...) that the gateway itself answered with an
// error (502 upstream down, 429 rate limited) got the trailers-only answer of native gRPC: HTTP 200 with grpc-status,
// but `content-type: application/grpc`, which gRPC-Web clients do not take for one of theirs (grpc-web's JS client and
// Envoy's grpc_web filter expect the grpc-web type back). The answer now echoes the request's gRPC-Web type, as
// Envoy's grpc_web filter answers: HTTP 200, no body, grpc-status and grpc-message in the head. Native gRPC keeps
// application/grpc.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';

/** A unary call's request over HTTP/1.1, with `type` as its content type: one empty message (5-byte frame header). */
function call(type: string, path = '/echo.Echo/Say'): string {
  const body = type.includes('-text') ? 'AAAAAAA=' : '\0\0\0\0\0';
  return (
    `POST ${path} HTTP/1.1\r\nHost: a.test\r\nContent-Type: ${type}\r\nX-Grpc-Web: 1\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** The trailers-only answer a gRPC-Web client reads: 200, no body, the status in the head, the given content type. */
function assertTrailersOnly(res: RawResponse, contentType: string, grpcStatus: string, what: string): void {
  assert.equal(res.status, 200, what);
  assert.equal(res.headers['content-type'], contentType, what);
  assert.equal(res.headers['grpc-status'], grpcStatus, what);
  assert.ok((res.headers['grpc-message'] ?? '') !== '', `${what}: a grpc-message`);
  assert.equal(res.headers['content-length'], '0', what);
  assert.equal(res.body, '', what);
}

describe('gateway-made errors to gRPC-Web calls over HTTP/1.1', () => {
  let gw: InProcessGateway;
  let port: number;

  before(async () => {
    gw = await startInProcess({
      // Nothing listens on port 9: every call that gets past the limiter is a 502.
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }], retries: 0 },
      routes: [
        { name: 'limited', match: { path_prefix: '/limited.Echo' }, service: 'default', rate_limit: 'one' },
        { name: 'grpc', match: { path_prefix: '/' }, service: 'default' },
      ],
      middleware: { rate_limit: { enabled: false, policies: { one: { requests_per_minute: 1, burst_size: 1 } } } },
    });
    port = gw.gateway.port;
  });
  after(async () => {
    await gw?.close();
  });

  for (const type of ['application/grpc-web', 'application/grpc-web+proto', 'application/grpc-web-text', 'application/grpc-web-text+proto']) {
    test(`${type}: a 502 is answered trailers-only with the same content type, grpc-status 14`, async () => {
      assertTrailersOnly(await rawRequest(port, call(type)), type, '14', type);
    });
  }

  test('the type is echoed without its parameters, in lower case', async () => {
    const res = await rawRequest(port, call('application/grpc-web+proto; charset=utf-8'));
    assertTrailersOnly(res, 'application/grpc-web+proto', '14', 'with a parameter');
  });

  test('a 429 of the rate limit: trailers-only, the gRPC-Web type, grpc-status 14, Retry-After kept', async () => {
    await rawRequest(port, call('application/grpc-web+proto', '/limited.Echo/Say'));
    const res = await rawRequest(port, call('application/grpc-web+proto', '/limited.Echo/Say'));
    assertTrailersOnly(res, 'application/grpc-web+proto', '14', 'the 429');
    assert.equal(res.headers['grpc-message'], 'Too Many Requests');
    assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
  });

  test('native gRPC (application/grpc) keeps application/grpc', async () => {
    const res = await rawRequest(port, call('application/grpc'));
    assertTrailersOnly(res, 'application/grpc', '14', 'application/grpc');
  });
});
