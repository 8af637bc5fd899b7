// Maps undici and socket errors to the gateway's codes: which status the client sees, whether to retry, and whether
// the upstream is to blame (only then does the failure feed the passive health check).
import { GatewayError } from '../errors.js';
import { tlsFailureReason } from './upstream-tls.js';

/** No connection could be made: the request never reached the upstream, so any request may go elsewhere. */
const CONNECT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The connection broke after the request may have been sent: only an idempotent request may go elsewhere. */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET']);

/** The upstream answered something undici cannot accept. */
const PROTOCOL_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
]);

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
 * The GatewayError for a failed attempt. Connect failures (UPSTREAM_UNREACHABLE, UPSTREAM_CONNECT_TIMEOUT) and
 * broken connections (UPSTREAM_RESET) are retryable; the driver still asks `canRetry` whether this request may be
 * repeated. A response timeout is not retryable: the upstream may be working on the request. Errors of the request
 * itself (REQUEST_NOT_FORWARDABLE, CLIENT_CLOSED) and unknown ones (PROXY_ERROR) never blame the upstream.
 */
export function classifyUpstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  // A certificate the gateway refused, or a handshake the upstream refused: the request was never sent, so another
  // upstream may take it (the retry loop never picks the same one again).
  if (tlsFailureReason(err) !== undefined) return new GatewayError('UPSTREAM_TLS', { retryable: true, cause: err });
  const violation = protocolViolation(err, code);
  if (violation !== undefined) return new GatewayError('UPSTREAM_PROTOCOL', { cause: violation });
  if (typeof code !== 'string') return new GatewayError('PROXY_ERROR', { cause: err });
  if (isClientBodyAbort(err, code)) return CLIENT_CLOSED;
  if (REQUEST_SIDE_CODES.has(code)) return new GatewayError('REQUEST_NOT_FORWARDABLE', { cause: err });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayError('UPSTREAM_CONNECT_TIMEOUT', { retryable: true, cause: err });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
  if (CONNECT_CODES.has(code)) return new GatewayError('UPSTREAM_UNREACHABLE', { retryable: true, cause: err });
  if (RESET_CODES.has(code)) return new GatewayError('UPSTREAM_RESET', { retryable: true, cause: err });
  if (PROTOCOL_CODES.has(code) || code.startsWith('HPE_')) return new GatewayError('UPSTREAM_PROTOCOL', { cause: err });
  // UND_ERR_CLOSED / UND_ERR_DESTROYED (a pool closed by a reload or shutdown) and anything unforeseen.
  return new GatewayError('PROXY_ERROR', { cause: err });
}

/**
 * Failures that say the upstream itself is in trouble, and so feed the passive health check. An allow-list: any
 * code not named here (a refused request, a client that left, a full queue, an unknown error) leaves health alone.
 */
export function isUpstreamHealthFailure(error: GatewayError): boolean {
  const code = error.code;
  return (
    code === 'UPSTREAM_UNREACHABLE' ||
    code === 'UPSTREAM_CONNECT_TIMEOUT' ||
    code === 'UPSTREAM_RESET' ||
    code === 'UPSTREAM_TIMEOUT' ||
    code === 'UPSTREAM_TLS'
  );
}

/** The request never reached the upstream: repeating it elsewhere is safe whatever its method. */
export function failedBeforeSending(error: GatewayError): boolean {
  return error.code === 'UPSTREAM_UNREACHABLE' || error.code === 'UPSTREAM_CONNECT_TIMEOUT' || error.code === 'UPSTREAM_TLS';
}
