// Maps undici and socket errors to the gateway's codes: which status the client sees, whether to retry, and whether
// the upstream is to blame (only then does the failure feed the passive health check).
import { GatewayError } from '../errors.js';
import { h2CodeName } from './h2-codes.js';
import { localResourceCode } from '../observability/resource-episodes.js';
import { tlsFailureReason } from './upstream-tls.js';

/** No connection could be made: the request never reached the upstream, so any request may go elsewhere. */
const CONNECT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * A failure of the connection's set-up, whatever its code: node's system errors of the name lookup (`getaddrinfo`)
 * or of the connect() call (`connect`), or, for a name with several addresses (node's autoSelectFamily), the
 * AggregateError of one such failure per address. No request byte was written. CONNECT_CODES named a few codes only:
 * a name the DNS server refused to resolve (EAI_FAIL: its REFUSED, FORMERR or NOTIMP), ENETDOWN or a
 * firewall's EPERM were a 502 proxy_error, never retried on another upstream and never taking the upstream out of
 * rotation; and a name whose first address timed out (ETIMEDOUT, the aggregate's code) passed for a broken
 * connection, so a POST was not retried though nothing had been sent. nginx counts any connect() failure as an error.
 * The gateway's own shortages (EMFILE, ENFILE, ENOBUFS, ENOMEM) are told apart before this (localFailure);
 * EADDRNOTAVAIL is not one of them: it is said for a destination this host cannot reach (an IPv6 upstream with IPv6
 * disabled) as for one whose local ports ran out, the upstream's to answer for either way.
 */
function failedToConnect(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const syscall = (err as { syscall?: unknown }).syscall;
  if (syscall === 'getaddrinfo' || syscall === 'connect') return true;
  if (depth > 0 || !(err instanceof AggregateError) || !Array.isArray(err.errors) || err.errors.length === 0) return false;
  // node's per-address attempt timeout (ERR_SOCKET_CONNECTION_TIMEOUT in some versions) is a connect failure too.
  return err.errors.every((e: unknown) => failedToConnect(e, depth + 1) || (e as { code?: unknown } | null)?.code === 'ERR_SOCKET_CONNECTION_TIMEOUT');
}

/** The connection broke after the request may have been sent: only an idempotent request may go elsewhere. */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET']);

/** The upstream answered something undici cannot accept. */
const PROTOCOL_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'HTTP2_CONNECTION_ERROR',
  // node's NghttpError: nghttp2 refused what the upstream's HTTP/2 connection sent (a fatal error of its read).
  'ERR_HTTP2_ERROR',
]);

/**
 * An HTTP/2 upstream broke the protocol on its connection (a connection error, RFC 9113 §5.4.1: a malformed or
 * misplaced frame): the gateway's side answered GOAWAY and the connection is dropped, failing the requests on it
 * (balancer/connection-watch.ts). Each may have been processed: UPSTREAM_PROTOCOL, not retried. A fixed message.
 */
export class Http2ConnectionError extends Error {
  readonly code = 'HTTP2_CONNECTION_ERROR';
  constructor() {
    super('HTTP/2 connection error: the upstream broke the protocol, GOAWAY sent');
    this.name = 'Http2ConnectionError';
  }
}

/**
 * undici's SocketError messages (code UND_ERR_SOCKET, like a reset's) for a response it refuses rather than a
 * connection that broke: an answer with no request in flight, a 100 Continue (client-h1.js: RFC 9110 §15.2 says a
 * client must accept even an unasked-for 1xx, undici destroys the socket), a switch of protocols nobody asked for.
 */
const BAD_RESPONSE_MESSAGES: ReadonlySet<string> = new Set(['bad response', 'bad upgrade']);

/**
 * undici refused the request itself (InvalidArgumentError and friends, Node's argument errors): nothing was sent,
 * and another upstream would refuse it the same way.
 */
const REQUEST_SIDE_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_INVALID_RETURN_VALUE',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
]);

/**
 * Errors of pooled HTTP/1 connections that had already carried a response when they failed (marked by the pool's
 * connection watch, balancer/connection-watch.ts, before undici hands the error to the request). A WeakSet, so the
 * errors of undici and node are not written to.
 */
const REUSED_CONNECTION_ERRORS = new WeakSet<object>();

/** Marks `err` as the failure of a keep-alive connection that was being reused (it had read earlier responses). */
export function markReusedConnectionError(err: unknown): void {
  if (typeof err === 'object' && err !== null) REUSED_CONNECTION_ERRORS.add(err);
}

/**
 * Errors of HTTP/1 connections that broke while the request body was still being written (marked by the connection
 * watch from undici's own state): the upstream refused the upload early (a 413 or 401 and a close, without reading
 * the body: node:http, Go's net/http past 256 KB), or went away mid-upload. Whatever its cause, a failure any client
 * can bring about by sending a large body, so it never feeds passive health. A WeakSet, as above.
 */
const BODY_WRITE_ERRORS = new WeakSet<object>();

/** Marks `err` as the failure of a connection that was still sending the request body. */
export function markBodyWriteError(err: unknown): void {
  if (typeof err === 'object' && err !== null) BODY_WRITE_ERRORS.add(err);
}

/**
 * Errors of connections that failed before they were established: reported by the TLS connector (upstream-tls.ts),
 * which calls back once the handshake is done, before undici writes any request byte. A WeakSet, as above.
 */
const CONNECT_ERRORS = new WeakSet<object>();

/** Marks `err` as the failure of a connection still being established (no request byte was sent on it). */
export function markConnectError(err: unknown): void {
  if (typeof err === 'object' && err !== null) CONNECT_ERRORS.add(err);
}

/** Whether `err` was marked by markConnectError: it ended a connection before any request byte was written. */
export function isConnectError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && CONNECT_ERRORS.has(err);
}

/**
 * An HTTP/2 GOAWAY whose last stream id is below every stream open on the connection (RFC 9113 §6.8, §8.7: the
 * server processed none of them). undici drops the last stream id and fails the oldest open request with its own
 * "GOAWAY frame received" SocketError whatever it was; the connection watch puts this one in its place when the
 * frame proves that nothing was processed. Its message and code are fixed strings, safe to log.
 */
export class UnprocessedGoaway extends Error {
  readonly code = 'HTTP2_GOAWAY_UNPROCESSED';

  constructor(
    readonly http2Code: number,
    readonly lastStreamId: number,
  ) {
    super(`HTTP/2 GOAWAY (code ${http2Code}, last stream ${lastStreamId}) before the request's stream`);
    this.name = 'UnprocessedGoaway';
  }
}

/**
 * An HTTP/2 request whose stream never left the gateway by its response timeout: nghttp2 holds a stream's HEADERS
 * while the upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows no more (0, or that many streams open), and undici opens
 * streams without looking at it. The request was a 504 after upstream_response that counted against the upstream and
 * was not retried, though no byte of it was sent. The connection watch destroys such a stream with this error in
 * place of the timeout (its HEADERS are then dropped, never sent): it is retried as a REFUSED_STREAM is, and still
 * counted against the upstream as the timeout was. A fixed message.
 */
export class UnsentStream extends Error {
  readonly code = 'HTTP2_STREAM_NOT_SENT';
  constructor() {
    super('HTTP/2 stream never sent: the upstream allowed no more concurrent streams until the response timeout');
    this.name = 'UnsentStream';
  }
}

/**
 * Errors that ended an HTTP/2 upstream stream the upstream had reset with REFUSED_STREAM while the request body was
 * still being written (marked by the connection watch, balancer/connection-watch.ts). undici pipes a streamed body
 * into its stream, and node's pipeline reports that reset as its own ERR_STREAM_PREMATURE_CLOSE, which undici fails
 * the request with: the REFUSED_STREAM was lost, and the failure was a 502 proxy_error. A WeakSet, as above.
 */
const REFUSED_STREAM_ERRORS = new WeakSet<object>();

/** Marks `err` as the failure of an upstream stream the upstream reset with REFUSED_STREAM. */
export function markRefusedStream(err: unknown): void {
  if (typeof err === 'object' && err !== null) REFUSED_STREAM_ERRORS.add(err);
}

/**
 * The same premature close for a reset with any other code (INTERNAL_ERROR, PROTOCOL_ERROR, …) while the body was
 * being written: by the error undici fails the request with, the code the upstream reset the stream with. Without it
 * the failure was a 502 proxy_error, "of no known kind", where the same reset after the upload is upstream_reset.
 */
const STREAM_RESET_CODES = new WeakMap<object, number>();

/** Marks `err` as the failure of an upstream stream the upstream reset with `rstCode` mid-upload. */
export function markStreamReset(err: unknown, rstCode: number): void {
  if (typeof err === 'object' && err !== null) STREAM_RESET_CODES.set(err, rstCode);
}

/**
 * The logged cause of an upstream's REFUSED_STREAM, whichever error carried it (node's ERR_HTTP2_STREAM_ERROR, which
 * names the code in its message only; undici's InformationalError; a pipeline's premature close): a fixed message,
 * the original error kept as its cause.
 */
export class RefusedStream extends Error {
  readonly code = 'HTTP2_REFUSED_STREAM';

  constructor(source: unknown) {
    super('HTTP/2 RST_STREAM REFUSED_STREAM from the upstream', { cause: source });
    this.name = 'RefusedStream';
  }
}

/**
 * A broken connection or stream whose meaning the plain UPSTREAM_RESET misses; the client still sees upstream_reset
 * (502) when it is not retried. `unprocessed`: the upstream said it did not process the request (REFUSED_STREAM, or
 * above a GOAWAY's last stream), so any method may be repeated. `refused`: that, said by the upstream itself (its
 * REFUSED_STREAM or GOAWAY; not a TLS handshake it cut), which an HTTP/2 client is told the same way when the request
 * is not retried (pipeline/h2-refused.ts). `staleConnection`: a pooled keep-alive connection
 * the upstream closed as the request went out (nginx's failure "on a cached connection"): the request may have
 * reached it, so only one that is safe to repeat (an idempotent method with its body whole) is retried, and this
 * retry does not count against `retries`, once per request. `blamesUpstream`: whether
 * it feeds passive health.
 */
export class ConnectionFailure extends GatewayError {
  readonly unprocessed: boolean;
  readonly staleConnection: boolean;
  readonly blamesUpstream: boolean;
  readonly refused: boolean;

  constructor(flags: { unprocessed: boolean; staleConnection: boolean; blamesUpstream: boolean; refused?: boolean }, cause: unknown) {
    super('UPSTREAM_RESET', { retryable: true, cause });
    this.unprocessed = flags.unprocessed;
    this.staleConnection = flags.staleConnection;
    this.blamesUpstream = flags.blamesUpstream;
    this.refused = flags.refused === true;
  }
}

/** undici's own GOAWAY error message: the server's error code is in it, the last stream id is not. */
const GOAWAY_MESSAGE = /^HTTP\/2: "GOAWAY" frame received with code (\d+)$/;

/**
 * node's ERR_HTTP2_STREAM_ERROR message: the stream was closed with this code and no error of ours. node names the
 * code (NGHTTP2_INTERNAL_ERROR), or gives its number when it has no name for it.
 */
const STREAM_ERROR_MESSAGE = /^Stream closed with error code (?:NGHTTP2_)?([A-Z][A-Z0-9_]*|\d+)$/;

/**
 * The logged cause of an upstream's RST_STREAM with an error code other than REFUSED_STREAM (INTERNAL_ERROR,
 * PROTOCOL_ERROR, ENHANCE_YOUR_CALM, ...), or nghttp2's own reset of a stream over what the upstream sent on it. node
 * reports it as ERR_HTTP2_STREAM_ERROR with the code's name in its message only, which fell through to PROXY_ERROR.
 * It is never one of the gateway's own cancellations: undici fails an aborted request with the gateway's reason
 * and resets its stream with NO_ERROR (or CANCEL, balancer/connection-watch.ts), and node reports no error for a
 * CANCEL, whoever sent it (so the upstream's CANCEL is not one of these: a known limit). The code says which reset it
 * was (HTTP2_RST_STREAM_INTERNAL_ERROR); the message is a fixed string; the original error is kept as the cause.
 */
class UpstreamStreamReset extends Error {
  readonly code: string;

  constructor(http2Code: string, source: unknown) {
    super(`HTTP/2 RST_STREAM ${http2Code} on the upstream stream`, { cause: source });
    this.name = 'UpstreamStreamReset';
    this.code = `HTTP2_RST_STREAM_${http2Code}`;
  }
}

/** The upstream's reset of this request's stream (not REFUSED_STREAM, told apart before), or undefined. */
function upstreamStreamReset(err: unknown, code: string, message: string): UpstreamStreamReset | undefined {
  const marked = STREAM_RESET_CODES.get(err as object);
  if (marked !== undefined) return new UpstreamStreamReset(h2CodeName(marked), err);
  if (code !== 'ERR_HTTP2_STREAM_ERROR') return undefined;
  const reset = STREAM_ERROR_MESSAGE.exec(message);
  return reset === null ? undefined : new UpstreamStreamReset(reset[1]!, err);
}

/**
 * The HTTP/2 failures that say whether the request was processed, or undefined. REFUSED_STREAM arrives as node's
 * ERR_HTTP2_STREAM_ERROR (its code name only in the message), or, on undici's upgrade path, as an InformationalError
 * (UND_ERR_INFO) naming code 7. It is load shedding (RFC 9113 §8.7: nothing was processed), not a sick upstream: it
 * never feeds passive health. A GOAWAY with NO_ERROR is a graceful close (a restart, a connection that served its
 * quota) and does not either; one with an error code does.
 */
function http2Failure(err: unknown, code: string): ConnectionFailure | undefined {
  const message = (err as Error).message;
  if (err instanceof UnprocessedGoaway) {
    return new ConnectionFailure({ unprocessed: true, staleConnection: false, blamesUpstream: err.http2Code !== 0, refused: true }, err);
  }
  // Its SETTINGS refused the stream as REFUSED_STREAM would: nothing was processed. But where a REFUSED_STREAM costs a
  // round trip, this cost the request its whole upstream_response (30 s by default), and an upstream stuck at 0 (or
  // with every stream it allows held) would cost every request sent to it as much, and a lone one each retry on
  // itself, on the same connection: it counts against the upstream as the timeout it replaces did, out of rotation for
  // the cooldown, never retried on itself (test/e2e/review9-upstream-h2-unsent-counted).
  if (err instanceof UnsentStream) return new ConnectionFailure({ unprocessed: true, staleConnection: false, blamesUpstream: true, refused: true }, err);
  if (
    REFUSED_STREAM_ERRORS.has(err as object) ||
    (code === 'ERR_HTTP2_STREAM_ERROR' && message.endsWith('NGHTTP2_REFUSED_STREAM')) ||
    (code === 'UND_ERR_INFO' && message === 'HTTP/2: "stream error" received - code 7')
  ) {
    return new ConnectionFailure({ unprocessed: true, staleConnection: false, blamesUpstream: false, refused: true }, new RefusedStream(err));
  }
  if (code === 'UND_ERR_SOCKET') {
    const goaway = GOAWAY_MESSAGE.exec(message);
    // The request's stream may be at or below the last stream id: it may have been processed (RFC 9110 rules).
    if (goaway !== null) return new ConnectionFailure({ unprocessed: false, staleConnection: false, blamesUpstream: goaway[1] !== '0' }, err);
  }
  // One stream reset: the upstream's answer to this request (as a 5xx would be), which any client may bring about
  // with what it sends, so it is not held against the upstream's health; its connection goes on serving others. It
  // may have been processed: only an idempotent request is retried, and only before its response began.
  const reset = upstreamStreamReset(err, code, message);
  if (reset !== undefined) return new ConnectionFailure({ unprocessed: false, staleConnection: false, blamesUpstream: false }, reset);
  return undefined;
}

/** Shared: an abort carries no per-request detail, so one instance (and one stack capture) serves them all. */
export const CLIENT_CLOSED = new GatewayError('CLIENT_CLOSED');

/**
 * The client's own request body broke off (it left mid-upload): node's IncomingMessage errors with a bare
 * "aborted" ECONNRESET (no syscall, unlike a socket's), and undici reports a body stream closed early as
 * UND_ERR_ABORTED. Neither says anything about the upstream.
 */
function isClientBodyAbort(err: unknown, code: unknown): boolean {
  if (code === 'UND_ERR_ABORTED') return true;
  return code === 'ECONNRESET' && (err as Error).message === 'aborted' && (err as { syscall?: unknown }).syscall === undefined;
}

/**
 * The logged cause of an answer the upstream got wrong. describeCause logs a cause as name(code), and neither error
 * says what was wrong in its code: undici builds an HTTPParserError with llhttp's error number looked up in a
 * name→number map, so `code` is undefined, and a SocketError's code is the UND_ERR_SOCKET of any broken connection.
 * Their messages are fixed strings (llhttp's reason, "bad response"), never response bytes (those are in `data`,
 * which is not logged); the reason is capped all the same. The original error stays the cause of this one.
 */
class UpstreamProtocolViolation extends Error {
  readonly code: string;

  constructor(source: Error, reason: string) {
    super(reason, { cause: source });
    this.name = source.name;
    this.code = reason.slice(0, 100);
  }
}

/** llhttp's reason inside undici's "Response does not match the HTTP/1.1 protocol (Invalid header value char)". */
function parserReason(message: string): string {
  return /\(([^()]+)\)$/.exec(message)?.[1] ?? 'no reason given';
}

/**
 * The upstream's answer was not HTTP undici accepts, told apart from a broken connection, or undefined. It says
 * nothing about whether the upstream will answer the next request, so it must not count against its health.
 */
function protocolViolation(err: unknown, code: unknown): Error | undefined {
  if (!(err instanceof Error)) return undefined;
  // By the name undici gives it: no need to load undici's errors module here for an instanceof (the gateway loads
  // undici file by file, see src/balancer/undici.ts).
  if (err.name === 'HTTPParserError') return new UpstreamProtocolViolation(err, parserReason(err.message));
  if (code === 'UND_ERR_SOCKET' && BAD_RESPONSE_MESSAGES.has(err.message)) return new UpstreamProtocolViolation(err, err.message);
  return undefined;
}

/**
 * The gateway could not open a connection for want of its own resources (socket(): EMFILE, ENFILE, ENOBUFS, ENOMEM):
 * no byte was sent, and the upstream is not to blame. Counted against it (as an unreachable upstream it was), one
 * descriptor spike took every upstream out of rotation, which stayed out after the spike. Never retried: with no
 * descriptor left, every other upstream fails the same way.
 */
function localFailure(err: unknown): GatewayError {
  return new GatewayError('GATEWAY_RESOURCES_EXHAUSTED', { retryable: false, cause: err, headers: { 'retry-after': '1' } });
}

/**
 * The GatewayError for a failed attempt. Connect failures (UPSTREAM_UNREACHABLE, UPSTREAM_CONNECT_TIMEOUT) and
 * broken connections (UPSTREAM_RESET) are retryable; the driver still asks `canRetry` whether this request may be
 * repeated. A response timeout is not retryable: the upstream may be working on the request. Errors of the request
 * itself (REQUEST_NOT_FORWARDABLE, CLIENT_CLOSED) and unknown ones (PROXY_ERROR) never blame the upstream.
 */
export function classifyUpstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (localResourceCode(err) !== undefined) return localFailure(err);
  // A certificate the gateway refused, or a handshake the upstream refused: the request was never sent, so another
  // upstream may take it (the retry loop never picks the same one again).
  // A TLS alert on a connection already established (the upstream ended it over a renegotiation the gateway refused,
  // or any alert after the handshake) may have come after the request was sent, even processed: UPSTREAM_TLS all the
  // same, still the upstream's fault, but retried only as a broken connection is (failedBeforeSending: connect
  // errors only).
  if (tlsFailureReason(err) !== undefined) return new GatewayError('UPSTREAM_TLS', { retryable: true, cause: err });
  const violation = protocolViolation(err, code);
  if (violation !== undefined) return new GatewayError('UPSTREAM_PROTOCOL', { cause: violation });
  if (failedToConnect(err)) return new GatewayError('UPSTREAM_UNREACHABLE', { retryable: true, cause: err });
  if (typeof code !== 'string') return new GatewayError('PROXY_ERROR', { cause: err });
  const h2 = http2Failure(err, code);
  if (h2 !== undefined) return h2;
  if (isClientBodyAbort(err, code)) return CLIENT_CLOSED;
  if (REQUEST_SIDE_CODES.has(code)) return new GatewayError('REQUEST_NOT_FORWARDABLE', { cause: err });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayError('UPSTREAM_CONNECT_TIMEOUT', { retryable: true, cause: err });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
  if (CONNECT_CODES.has(code)) return new GatewayError('UPSTREAM_UNREACHABLE', { retryable: true, cause: err });
  if (RESET_CODES.has(code)) {
    // Cut during the TLS handshake (an upstream that accepts and closes, at its connection limit or going down): no
    // byte of the request was sent, so any method may go elsewhere; the upstream is still to blame.
    if (CONNECT_ERRORS.has(err as object)) return new ConnectionFailure({ unprocessed: true, staleConnection: false, blamesUpstream: true }, err);
    // A reused keep-alive connection the upstream closed (FIN: undici's "other side closed"; RST: ECONNRESET, EPIPE)
    // says nothing about the upstream, only that the connection had aged out as the request went out.
    // ETIMEDOUT (keep-alive probes unanswered) is an unreachable upstream, reused connection or not.
    if (code !== 'ETIMEDOUT' && REUSED_CONNECTION_ERRORS.has(err as object)) return new ConnectionFailure({ unprocessed: false, staleConnection: true, blamesUpstream: false }, err);
    // Broken while the request body was still going out (EPIPE or ECONNRESET on the write, a reset or close read
    // meanwhile): the upstream may have refused the upload early. Not the upstream's health; a retry is still
    // decided by canRetry (never once part of the body has been taken: it cannot be sent again).
    if (code !== 'ETIMEDOUT' && BODY_WRITE_ERRORS.has(err as object)) return new ConnectionFailure({ unprocessed: false, staleConnection: false, blamesUpstream: false }, err);
    return new GatewayError('UPSTREAM_RESET', { retryable: true, cause: err });
  }
  if (PROTOCOL_CODES.has(code) || code.startsWith('HPE_')) return new GatewayError('UPSTREAM_PROTOCOL', { cause: err });
  // UND_ERR_CLOSED / UND_ERR_DESTROYED (a pool closed by a reload or shutdown) and anything unforeseen.
  return new GatewayError('PROXY_ERROR', { cause: err });
}

/**
 * Failures of a WebSocket handshake sent over HTTP/1.1 to an upstream of an HTTP/2 group (balancer/backend.ts
 * upgradeDispatcher), which must not feed passive health. A WeakSet, as above.
 */
const SPARED_FAILURES = new WeakSet<GatewayError>();

/**
 * Marks the failure of a WebSocket handshake sent over HTTP/1.1 to an upstream of an HTTP/2 group: the group's
 * health is that of its HTTP/2 service. An upstream that speaks h2 alone refuses HTTP/1.1 (over TLS a
 * no_application_protocol alert, UPSTREAM_TLS; over cleartext a GOAWAY or a close, UPSTREAM_RESET), so counting that
 * let any client take a gRPC upstream out of rotation with one handshake per passive cooldown. A failure to connect at
 * all (unreachable, connect timeout) is the same whatever the protocol, and still counts. Errors classified per
 * attempt are fresh objects; a shared one never blames the upstream (CLIENT_CLOSED, the client timeouts).
 */
export function spareUpstreamUnlessUnreachable(error: GatewayError): void {
  if (error.code === 'UPSTREAM_UNREACHABLE' || error.code === 'UPSTREAM_CONNECT_TIMEOUT') return;
  if (isUpstreamHealthFailure(error)) SPARED_FAILURES.add(error);
}

/**
 * Failures that say the upstream itself is in trouble, and so feed the passive health check. An allow-list: any
 * code not named here (a refused request, a client that left, a full queue, an unknown error) leaves health alone.
 */
export function isUpstreamHealthFailure(error: GatewayError): boolean {
  if (SPARED_FAILURES.has(error)) return false;
  if (error instanceof ConnectionFailure) return error.blamesUpstream;
  const code = error.code;
  return (
    code === 'UPSTREAM_UNREACHABLE' ||
    code === 'UPSTREAM_CONNECT_TIMEOUT' ||
    code === 'UPSTREAM_RESET' ||
    code === 'UPSTREAM_TIMEOUT' ||
    code === 'UPSTREAM_TLS'
  );
}

/**
 * The request never reached the upstream (no connection, or its pool's queue refused it: UPSTREAM_BUSY), or the
 * upstream said it did not process it (REFUSED_STREAM, a GOAWAY below its stream): repeating it is safe whatever its
 * method.
 */
export function failedBeforeSending(error: GatewayError): boolean {
  if (error instanceof ConnectionFailure) return error.unprocessed;
  if (error.code === 'UPSTREAM_TLS') return isConnectError(error.cause);
  return (
    error.code === 'UPSTREAM_UNREACHABLE' ||
    error.code === 'UPSTREAM_CONNECT_TIMEOUT' ||
    error.code === 'UPSTREAM_BUSY' ||
    error.code === 'GATEWAY_RESOURCES_EXHAUSTED'
  );
}

/**
 * The upstream itself said it did not process the request: its RST_STREAM REFUSED_STREAM, or a GOAWAY whose last
 * stream id is below the request's (RFC 9113 §8.7). Not a failure to connect, which the upstream never saw.
 */
export function refusedByUpstream(error: GatewayError): boolean {
  return error instanceof ConnectionFailure && error.refused;
}

/** A reused keep-alive connection that failed before any response byte (see ConnectionFailure). */
export function isStaleConnection(error: GatewayError): boolean {
  return error instanceof ConnectionFailure && error.staleConnection;
}

/** Failures that do not blame the upstream and so may be retried on it again (another connection) when it is the only one. */
export function sparesUpstream(error: GatewayError): boolean {
  return error instanceof ConnectionFailure && !error.blamesUpstream;
}
