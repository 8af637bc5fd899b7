// Unit tests of the gRPC status mapping of gateway-made errors and of grpc-message encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRPC, encodeGrpcMessage, grpcErrorContentType, grpcStatusFor } from './grpc-status.js';

test('HTTP statuses map as gRPC documents them', () => {
  assert.equal(grpcStatusFor(400, 'BAD_REQUEST'), GRPC.INTERNAL);
  assert.equal(grpcStatusFor(401, 'UNAUTHORIZED'), GRPC.UNAUTHENTICATED);
  assert.equal(grpcStatusFor(403, undefined), GRPC.PERMISSION_DENIED);
  assert.equal(grpcStatusFor(404, 'NOT_FOUND'), GRPC.UNIMPLEMENTED);
  for (const status of [429, 502, 503, 504]) assert.equal(grpcStatusFor(status, undefined), GRPC.UNAVAILABLE, String(status));
  for (const status of [405, 500]) assert.equal(grpcStatusFor(status, undefined), GRPC.UNKNOWN, String(status));
  // A request over a limit is what gRPC servers answer RESOURCE_EXHAUSTED for (a message over the receive size).
  assert.equal(grpcStatusFor(413, 'PAYLOAD_TOO_LARGE'), GRPC.RESOURCE_EXHAUSTED);
  assert.equal(grpcStatusFor(431, 'HEADERS_TOO_LARGE'), GRPC.RESOURCE_EXHAUSTED);
});

test("the gateway's own upstream timeouts are DEADLINE_EXCEEDED, other 504s UNAVAILABLE", () => {
  assert.equal(grpcStatusFor(504, 'UPSTREAM_TIMEOUT'), GRPC.DEADLINE_EXCEEDED);
  assert.equal(grpcStatusFor(504, 'UPSTREAM_CONNECT_TIMEOUT'), GRPC.DEADLINE_EXCEEDED);
  assert.equal(grpcStatusFor(502, 'UPSTREAM_RESET'), GRPC.UNAVAILABLE);
});

test('grpc-message is percent-encoded outside printable ASCII, and % itself', () => {
  assert.equal(encodeGrpcMessage('Too Many Requests'), 'Too Many Requests');
  assert.equal(encodeGrpcMessage('100% sûr\n'), '100%25 s%C3%BBr%0A');
});

test("a gRPC-Web call's error keeps the call's own type; native gRPC gets application/grpc", () => {
  for (const type of ['application/grpc-web', 'application/grpc-web+proto', 'application/grpc-web-text', 'application/grpc-web-text+proto', 'application/grpc-web+json']) {
    assert.equal(grpcErrorContentType(type), type);
  }
  assert.equal(grpcErrorContentType('application/grpc-web+proto; charset=utf-8'), 'application/grpc-web+proto');
  assert.equal(grpcErrorContentType('application/grpc-WEB-text'), 'application/grpc-web-text');
  for (const type of ['application/grpc', 'application/grpc+proto', 'application/grpc; x=1', undefined]) {
    assert.equal(grpcErrorContentType(type), 'application/grpc', String(type));
  }
  // A type of no known shape is never echoed into the answer's head.
  assert.equal(grpcErrorContentType('application/grpc-web+pr oto\r\nx: y'), 'application/grpc-web+proto');
  assert.equal(grpcErrorContentType('application/grpc-web-textual'), 'application/grpc-web-text+proto');
});
