// Which failures blame the upstream: only its own (connect, reset, timeout); request-side, protocol and unknown errors never do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errors } from 'undici';
import { describeCause } from '../errors.js';
import {
  UnprocessedGoaway,
  UnsentStream,
  classifyUpstreamError,
  failedBeforeSending,
  isStaleConnection,
  isUpstreamHealthFailure,
  markBodyWriteError,
  markConnectError,
  markRefusedStream,
  markReusedConnectionError,
  refusedByUpstream,
  sparesUpstream,
} from './upstream-error.js';

function withCode(message: string, code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code, ...extra });
}

test('undici refusing the request itself is a 400 that never counts against the upstream', () => {
  for (const err of [
    new errors.InvalidArgumentError('invalid request path'),
    new errors.NotSupportedError('expect header not supported'),
    new errors.RequestContentLengthMismatchError(),
    withCode('bad header', 'ERR_INVALID_CHAR'),
    withCode('bad token', 'ERR_INVALID_HTTP_TOKEN'),
  ]) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'REQUEST_NOT_FORWARDABLE', err.message);
    assert.equal(error.status, 400);
    assert.equal(isUpstreamHealthFailure(error), false, err.message);
    assert.equal(error.retryable, false);
  }
});

test('the client leaving mid-upload is CLIENT_CLOSED, not an upstream reset', () => {
  for (const err of [new errors.RequestAbortedError(), withCode('aborted', 'ECONNRESET')]) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'CLIENT_CLOSED');
    assert.equal(isUpstreamHealthFailure(error), false);
  }
});

test('unknown errors and closed pools are PROXY_ERROR (502) and leave health alone', () => {
  for (const err of [new Error('boom'), 'a string', null, new errors.ClientDestroyedError(), new errors.ClientClosedError(), withCode('x', 'EWHATEVER')]) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'PROXY_ERROR');
    assert.equal(error.status, 502);
    assert.equal(isUpstreamHealthFailure(error), false);
  }
});

test('failures of the upstream itself still count', () => {
  const cases: Array<[unknown, string]> = [
    [withCode('connect ECONNREFUSED', 'ECONNREFUSED', { syscall: 'connect' }), 'UPSTREAM_UNREACHABLE'],
    [new errors.ConnectTimeoutError(), 'UPSTREAM_CONNECT_TIMEOUT'],
    [new errors.HeadersTimeoutError(), 'UPSTREAM_TIMEOUT'],
    [new errors.SocketError('other side closed'), 'UPSTREAM_RESET'],
    [withCode('read ECONNRESET', 'ECONNRESET', { syscall: 'read' }), 'UPSTREAM_RESET'],
  ];
  for (const [err, code] of cases) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, code);
    assert.equal(isUpstreamHealthFailure(error), true, code);
  }
  assert.equal(classifyUpstreamError(new errors.ResponseContentLengthMismatchError()).code, 'UPSTREAM_PROTOCOL');
});

test('an upstream that speaks broken HTTP is UPSTREAM_PROTOCOL: a 502 that leaves health alone, the reason logged', () => {
  // As undici's parser builds it: constants.ERROR[ret] looks a number up in a name→number map, so no code.
  const parserError = (message: string): Error => {
    const err = new errors.HTTPParserError(message);
    assert.equal(err.code, undefined);
    return err;
  };
  const cases: Array<[Error, string]> = [
    [parserError('Response does not match the HTTP/1.1 protocol (Invalid header value char)'), 'HTTPParserError(Invalid header value char)'],
    [parserError(''), 'HTTPParserError(no reason given)'],
    [new errors.SocketError('bad response'), 'SocketError(bad response)'], // e.g. an unasked-for 100 Continue
    [new errors.SocketError('bad upgrade'), 'SocketError(bad upgrade)'],
  ];
  for (const [err, cause] of cases) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_PROTOCOL', err.message);
    assert.equal(error.status, 502);
    assert.equal(error.retryable, false);
    assert.equal(isUpstreamHealthFailure(error), false, err.message);
    assert.equal(describeCause(error.cause), cause);
    assert.equal((error.cause as Error).cause, err, 'the original error is kept');
    assert.equal(error.message, 'Bad Gateway', 'nothing of the parser reaches the client');
  }
});

test('a reused keep-alive connection that broke (marked by the connection watch) is retryable and spares the upstream', () => {
  for (const err of [new errors.SocketError('other side closed'), withCode('read ECONNRESET', 'ECONNRESET', { syscall: 'read' }), withCode('write EPIPE', 'EPIPE', { syscall: 'write' })]) {
    markReusedConnectionError(err);
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_RESET');
    assert.equal(error.retryable, true);
    assert.equal(isStaleConnection(error), true);
    assert.equal(isUpstreamHealthFailure(error), false);
    assert.equal(sparesUpstream(error), true);
    assert.equal(failedBeforeSending(error), false, 'the request may have reached it: RFC 9110 rules');
  }
  // An unreachable upstream stays one, reused connection or not.
  const timedOut = withCode('read ETIMEDOUT', 'ETIMEDOUT', { syscall: 'read' });
  markReusedConnectionError(timedOut);
  assert.equal(isUpstreamHealthFailure(classifyUpstreamError(timedOut)), true);
});

test('a connection that broke while the request body was still going out (marked by the watch) spares the upstream', () => {
  for (const err of [withCode('write EPIPE', 'EPIPE', { syscall: 'write' }), withCode('write ECONNRESET', 'ECONNRESET', { syscall: 'write' }), withCode('read ECONNRESET', 'ECONNRESET', { syscall: 'read' }), new errors.SocketError('other side closed')]) {
    markBodyWriteError(err);
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_RESET', err.message);
    assert.equal(error.status, 502);
    assert.equal(isUpstreamHealthFailure(error), false, 'any client can cause it with a large upload');
    assert.equal(isStaleConnection(error), false, 'no free retry');
    assert.equal(failedBeforeSending(error), false, 'the request may have reached it: only canRetry decides a retry');
  }
  // Unmarked, the same errors still blame the upstream; an unanswered connection is unreachable, writing or not.
  assert.equal(isUpstreamHealthFailure(classifyUpstreamError(withCode('write EPIPE', 'EPIPE', { syscall: 'write' }))), true);
  const timedOut = withCode('write ETIMEDOUT', 'ETIMEDOUT', { syscall: 'write' });
  markBodyWriteError(timedOut);
  assert.equal(isUpstreamHealthFailure(classifyUpstreamError(timedOut)), true);
});

test('HTTP/2 REFUSED_STREAM and a GOAWAY below the stream: not processed, so any method may be retried; health untouched', () => {
  const refused = withCode('Stream closed with error code NGHTTP2_REFUSED_STREAM', 'ERR_HTTP2_STREAM_ERROR');
  const informational = new errors.InformationalError('HTTP/2: "stream error" received - code 7');
  for (const err of [refused, informational, new UnprocessedGoaway(0, 1)]) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_RESET', String(err));
    assert.equal(failedBeforeSending(error), true);
    assert.equal(isUpstreamHealthFailure(error), false);
    assert.equal(describeCause(error.cause)?.includes('NGHTTP2') ?? false, false, 'logged by class and code only');
  }
  // A GOAWAY with an error code still blames the upstream; undici's own GOAWAY error may cover a processed stream.
  assert.equal(isUpstreamHealthFailure(classifyUpstreamError(new UnprocessedGoaway(2, 1))), true);
  const maybe = classifyUpstreamError(new errors.SocketError('HTTP/2: "GOAWAY" frame received with code 0'));
  assert.equal(failedBeforeSending(maybe), false);
  assert.equal(isUpstreamHealthFailure(maybe), false);
  assert.equal(isUpstreamHealthFailure(classifyUpstreamError(new errors.SocketError('HTTP/2: "GOAWAY" frame received with code 11'))), true);
});

test("an upstream's RST_STREAM with another code: UPSTREAM_RESET, not processed for sure, health untouched", () => {
  for (const [message, logged] of [
    ['Stream closed with error code NGHTTP2_INTERNAL_ERROR', 'UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)'],
    ['Stream closed with error code NGHTTP2_PROTOCOL_ERROR', 'UpstreamStreamReset(HTTP2_RST_STREAM_PROTOCOL_ERROR)'],
    ['Stream closed with error code NGHTTP2_ENHANCE_YOUR_CALM', 'UpstreamStreamReset(HTTP2_RST_STREAM_ENHANCE_YOUR_CALM)'],
    ['Stream closed with error code NGHTTP2_FLOW_CONTROL_ERROR', 'UpstreamStreamReset(HTTP2_RST_STREAM_FLOW_CONTROL_ERROR)'],
    ['Stream closed with error code 4660', 'UpstreamStreamReset(HTTP2_RST_STREAM_4660)'],
  ] as const) {
    const err = withCode(message, 'ERR_HTTP2_STREAM_ERROR');
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_RESET', message);
    assert.equal(error.status, 502);
    assert.equal(failedBeforeSending(error), false, 'it may have been processed');
    assert.equal(refusedByUpstream(error), false);
    assert.equal(isUpstreamHealthFailure(error), false, 'one stream: its answer to one request');
    assert.equal(describeCause(error.cause), logged);
    assert.equal((error.cause as Error).cause, err, 'the original error is kept');
  }
  // Anything else with those codes is still of no known kind.
  assert.equal(classifyUpstreamError(withCode('something else', 'ERR_HTTP2_STREAM_ERROR')).code, 'PROXY_ERROR');
  assert.equal(classifyUpstreamError(new errors.InformationalError('HTTP/2: stream half-closed (remote)')).code, 'PROXY_ERROR');
});

test("the upstream's own refusal (refusedByUpstream): REFUSED_STREAM in any form, a GOAWAY below the stream; not a cut handshake", () => {
  // A body still streaming when the upstream refused: node's pipeline fails undici's request with its own premature
  // close, which the connection watch marks (the REFUSED_STREAM is in the stream's rstCode only).
  const premature = withCode('Premature close', 'ERR_STREAM_PREMATURE_CLOSE');
  assert.equal(classifyUpstreamError(premature).code, 'PROXY_ERROR', 'unmarked: says nothing about the upstream');
  markRefusedStream(premature);
  const refused = withCode('Stream closed with error code NGHTTP2_REFUSED_STREAM', 'ERR_HTTP2_STREAM_ERROR');
  const informational = new errors.InformationalError('HTTP/2: "stream error" received - code 7');
  for (const err of [premature, refused, informational]) {
    const error = classifyUpstreamError(err);
    assert.equal(error.code, 'UPSTREAM_RESET', String(err));
    assert.equal(refusedByUpstream(error), true);
    assert.equal(failedBeforeSending(error), true);
    assert.equal(isUpstreamHealthFailure(error), false);
    assert.equal(describeCause(error.cause), 'RefusedStream(HTTP2_REFUSED_STREAM)');
    assert.equal((error.cause as Error).cause, err, 'the original error is kept');
  }
  assert.equal(refusedByUpstream(classifyUpstreamError(new UnprocessedGoaway(0, 0))), true);
  // Unprocessed, but the upstream never saw it: not its refusal.
  const cut = withCode('socket hang up', 'ECONNRESET');
  markConnectError(cut);
  const handshake = classifyUpstreamError(cut);
  assert.equal(failedBeforeSending(handshake), true);
  assert.equal(refusedByUpstream(handshake), false);
  assert.equal(refusedByUpstream(classifyUpstreamError(withCode('connect ECONNREFUSED', 'ECONNREFUSED', { syscall: 'connect' }))), false);
  assert.equal(refusedByUpstream(classifyUpstreamError(new errors.SocketError('HTTP/2: "GOAWAY" frame received with code 0'))), false);
});

test('a TLS alert after the handshake is UPSTREAM_TLS that may have been processed; at the handshake, never sent', () => {
  // An OpenSSL upstream's answer to the no_renegotiation alert (proxy/upstream-tls.ts) comes on an established
  // connection, after the request went out: only an idempotent request may go elsewhere.
  const late = classifyUpstreamError(withCode('sslv3 alert handshake failure', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'));
  assert.equal(late.code, 'UPSTREAM_TLS');
  assert.equal(failedBeforeSending(late), false);
  assert.equal(isUpstreamHealthFailure(late), true, 'the upstream ended the connection');
  const refused = withCode('sslv3 alert handshake failure', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
  markConnectError(refused);
  const atHandshake = classifyUpstreamError(refused);
  assert.equal(atHandshake.code, 'UPSTREAM_TLS');
  assert.equal(failedBeforeSending(atHandshake), true);
});

test('an HTTP/2 stream never sent (the upstream allowed no more streams) is refused as REFUSED_STREAM is, counted as the timeout it replaces', () => {
  const error = classifyUpstreamError(new UnsentStream());
  assert.equal(error.code, 'UPSTREAM_RESET');
  assert.equal(error.retryable, true);
  assert.equal(failedBeforeSending(error), true, 'any method may go elsewhere');
  assert.equal(refusedByUpstream(error), true);
  assert.equal(isUpstreamHealthFailure(error), true, 'it held the request for upstream_response: out of rotation');
  assert.equal(describeCause(error.cause), 'UnsentStream(HTTP2_STREAM_NOT_SENT)');
});

test("a connect that failed for the gateway's own limits is a 503 of the gateway, never the upstream's health", () => {
  for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']) {
    const err = withCode(`connect ${code} 127.0.0.1:3000`, code, { syscall: 'connect' });
    const classified = classifyUpstreamError(err);
    assert.equal(classified.code, 'GATEWAY_RESOURCES_EXHAUSTED', code);
    assert.equal(classified.status, 503);
    assert.equal(isUpstreamHealthFailure(classified), false, code);
    assert.equal(failedBeforeSending(classified), true, code);
    // With no descriptor left, every other upstream fails the same way.
    assert.equal(classified.retryable, false, code);
  }
  // An address this host cannot connect from (an IPv6 upstream with IPv6 disabled), or a destination whose local
  // ports ran out: that upstream cannot be reached from here, so out of rotation and retried elsewhere.
  const unavailable = classifyUpstreamError(withCode('connect EADDRNOTAVAIL ::1:3000', 'EADDRNOTAVAIL', { syscall: 'connect' }));
  assert.equal(unavailable.code, 'UPSTREAM_UNREACHABLE');
  assert.equal(isUpstreamHealthFailure(unavailable), true);
  assert.equal(unavailable.retryable, true);
  const both = new AggregateError([withCode('a', 'EMFILE', { syscall: 'connect' }), withCode('b', 'EMFILE', { syscall: 'connect' })]);
  assert.equal(classifyUpstreamError(both).code, 'GATEWAY_RESOURCES_EXHAUSTED');
  // One address refused, the other out of descriptors: the upstream was reached and refused.
  const mixed = new AggregateError([withCode('a', 'ECONNREFUSED', { syscall: 'connect' }), withCode('b', 'EMFILE', { syscall: 'connect' })]);
  assert.equal(classifyUpstreamError(mixed).code, 'UPSTREAM_UNREACHABLE');
});
