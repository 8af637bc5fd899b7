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
