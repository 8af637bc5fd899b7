// Maps undici and socket errors to the gateway's codes: which status the client sees, and whether to retry.
import { GatewayError } from '../errors.js';
import { tlsFailureReason } from './upstream-tls.js';

/** No connection could be made: the request never reached the upstream, so any request may go elsewhere. */
const CONNECT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The connection broke after the request may have been sent: only an idempotent request may go elsewhere. */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * The GatewayError for an upstream failure. Connect failures (UPSTREAM_UNREACHABLE, UPSTREAM_CONNECT_TIMEOUT) and
 * broken connections (UPSTREAM_RESET) are retryable; the driver still asks `canRetry` whether this request may be
 * repeated. A response timeout is not retryable: the upstream may be working on the request.
 */
export function classifyUpstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  // A certificate the gateway refused, or a handshake the upstream refused: the request was never sent, so another
  // upstream may take it (the retry loop never picks the same one again).
  if (tlsFailureReason(err) !== undefined) return new GatewayError('UPSTREAM_TLS', { retryable: true, cause: err });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayError('UPSTREAM_CONNECT_TIMEOUT', { retryable: true, cause: err });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
  }
  if (typeof code === 'string' && CONNECT_CODES.has(code)) {
    return new GatewayError('UPSTREAM_UNREACHABLE', { retryable: true, cause: err });
  }
  if (typeof code === 'string' && RESET_CODES.has(code)) {
    return new GatewayError('UPSTREAM_RESET', { retryable: true, cause: err });
  }
  if (typeof code === 'string' && code.startsWith('HPE_')) return new GatewayError('UPSTREAM_PROTOCOL', { cause: err });
  return new GatewayError('UPSTREAM_UNREACHABLE', { cause: err });
}

/** Failures that say the upstream itself is in trouble, and so feed the passive health check. */
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
