// Maps undici and socket errors to the gateway's codes: which status the client sees, and whether to retry.
import { GatewayError } from '../errors.js';

/** Failures of the connection itself (nothing reached the upstream's application, or the socket broke). */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/**
 * The GatewayError for an upstream failure. Connection failures and connect timeouts are retryable (the driver
 * still checks that the request can safely be repeated); a response timeout is not, since the upstream may be
 * working on the request.
 */
export function classifyUpstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayError('UPSTREAM_TIMEOUT', { retryable: true, cause: err });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
  }
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new GatewayError('UPSTREAM_UNREACHABLE', { retryable: true, cause: err });
  }
  if (typeof code === 'string' && code.startsWith('HPE_')) return new GatewayError('UPSTREAM_PROTOCOL', { cause: err });
  return new GatewayError('UPSTREAM_UNREACHABLE', { cause: err });
}

/** Failures that say the upstream itself is in trouble, and so feed the passive health check. */
export function isUpstreamHealthFailure(error: GatewayError): boolean {
  return error.code === 'UPSTREAM_UNREACHABLE' || error.code === 'UPSTREAM_TIMEOUT';
}
