// The one error type of the gateway and the catalogue of its codes: every failure a client can see is listed here.
import { PluginError } from './plugins/plugin-error.js';

/** Where a failure came from; used for metrics labels and to decide who is at fault. */
export type ErrorSource = 'client' | 'upstream' | 'store' | 'kv' | 'config' | 'internal';

interface CodeSpec {
  readonly status: number;
  /** The safe, client-facing message. Never includes user input, tokens, SQL or stack traces. */
  readonly message: string;
  readonly source: ErrorSource;
}

/**
 * Every error code with its HTTP status and public message. The README's errors table is written from this list;
 * a new failure mode gets a new row here rather than an ad-hoc string somewhere else.
 */
export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, message: 'Bad Request', source: 'client' },
  /** undici refused the request as given (an argument or framing it cannot send): the client's fault, not the upstream's. */
  REQUEST_NOT_FORWARDABLE: { status: 400, message: 'Bad Request', source: 'client' },
  INVALID_BODY: { status: 400, message: 'Invalid request body', source: 'client' },
  UNAUTHORIZED: { status: 401, message: 'Unauthorized', source: 'client' },
  INVALID_CREDENTIALS: { status: 401, message: 'Invalid email or password', source: 'client' },
  INVALID_REFRESH_TOKEN: { status: 401, message: 'Invalid refresh token', source: 'client' },
  NOT_FOUND: { status: 404, message: 'Not Found', source: 'client' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No route matches this request', source: 'client' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method Not Allowed', source: 'client' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request Timeout', source: 'client' },
  /** No request-body bytes for `server.timeouts.request_body_chunk` while the gateway was reading the body. */
  REQUEST_BODY_TIMEOUT: { status: 408, message: 'Request Timeout', source: 'client' },
  EMAIL_TAKEN: { status: 409, message: 'Email already registered', source: 'client' },
  /**
   * A TLS request for a host whose certificate is not the one its connection's SNI chose (RFC 9110 §15.5.20): the
   * client checked another name's certificate. The client may retry on a connection of its own for the host.
   */
  MISDIRECTED_REQUEST: { status: 421, message: 'Misdirected Request', source: 'client' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Payload Too Large', source: 'client' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Content-Type must be application/json', source: 'client' },
  /** An Expect other than 100-continue (RFC 9110 §10.1.1): the gateway meets no other expectation. */
  EXPECTATION_FAILED: { status: 417, message: 'Expectation Failed', source: 'client' },
  RATE_LIMITED: { status: 429, message: 'Too Many Requests', source: 'client' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request Header Fields Too Large', source: 'client' },
  /** More open connections from one address than `server.max_connections_per_client` (answered, then closed). */
  TOO_MANY_CONNECTIONS: { status: 429, message: 'Too Many Connections', source: 'client' },
  INTERNAL: { status: 500, message: 'Internal Server Error', source: 'internal' },
  /**
   * A request the gateway cannot pass on as sent (RFC 9110 §15.6.2): a transfer coding other than chunked (RFC 9112
   * §6.1), or a method name node's HTTP/1 parser does not know.
   */
  NOT_IMPLEMENTED: { status: 501, message: 'Not Implemented', source: 'client' },
  /** An unexpected failure while proxying that says nothing about the upstream (not counted against its health). */
  PROXY_ERROR: { status: 502, message: 'Bad Gateway', source: 'internal' },
  /** A plugin hook threw or rejected (the log line names the plugin and the error class). */
  PLUGIN_FAILED: { status: 500, message: 'Internal Server Error', source: 'internal' },
  NO_HEALTHY_UPSTREAM: { status: 502, message: 'No healthy upstream', source: 'upstream' },
  UPSTREAM_UNREACHABLE: { status: 502, message: 'Bad Gateway', source: 'upstream' },
  UPSTREAM_RESET: { status: 502, message: 'Bad Gateway', source: 'upstream' },
  UPSTREAM_PROTOCOL: { status: 502, message: 'Bad Gateway', source: 'upstream' },
  /** The upstream's certificate failed verification (name, CA, expiry), or it refused our TLS handshake. */
  UPSTREAM_TLS: { status: 502, message: 'Bad Gateway', source: 'upstream' },
  /**
   * Never sent as an answer: the upstream refused the request unprocessed (HTTP/2 REFUSED_STREAM, or a GOAWAY below
   * its stream) and it was not retried, so the HTTP/2 client's stream was reset with REFUSED_STREAM (which tells the
   * client it may retry it). Logged with the 502 an HTTP/1.1 client gets for it (as upstream_reset).
   */
  UPSTREAM_REFUSED_STREAM: { status: 502, message: 'Bad Gateway', source: 'upstream' },
  STORE_UNAVAILABLE: { status: 503, message: 'Service Unavailable', source: 'store' },
  KV_UNAVAILABLE: { status: 503, message: 'Service Unavailable', source: 'kv' },
  /**
   * Connecting to an upstream failed in the gateway itself: its descriptors (EMFILE, ENFILE) or kernel buffers
   * (ENOBUFS, ENOMEM) ran out. Never held against the upstream. (EADDRNOTAVAIL is the upstream's UPSTREAM_UNREACHABLE.)
   */
  GATEWAY_RESOURCES_EXHAUSTED: { status: 503, message: 'Service Unavailable', source: 'internal' },
  /** The upstream's queue is full, or a request waited `load_balancing.queue_timeout` in it (Retry-After). */
  UPSTREAM_BUSY: { status: 503, message: 'Service Unavailable', source: 'upstream' },
  SHUTTING_DOWN: { status: 503, message: 'Service Unavailable', source: 'internal' },
  /** The argon2 queue (`middleware.auth.argon2.queue_limit`) is full (a login or register flood), or a hash took over `argon2.timeout`. */
  PASSWORD_HASHER_BUSY: { status: 503, message: 'Service Unavailable', source: 'internal' },
  UPSTREAM_CONNECT_TIMEOUT: { status: 504, message: 'Gateway Timeout', source: 'upstream' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'Gateway Timeout', source: 'upstream' },
  /** A plugin's request hook ran longer than middleware.plugin_timeout and was abandoned. */
  PLUGIN_TIMEOUT: { status: 504, message: 'Gateway Timeout', source: 'internal' },
  /** An HTTP/1 request line naming HTTP/2.0: an HTTP/2 request only ever comes as an HTTP/2 stream (RFC 9110 §15.6.6). */
  HTTP_VERSION_NOT_SUPPORTED: { status: 505, message: 'HTTP Version Not Supported', source: 'client' },
  /**
   * Never sent (the response has begun): the client took no response bytes for `server.timeouts.request_body_chunk`
   * while the upstream waited on it, and its connection (HTTP/2: stream) was closed. Logged, never the upstream's fault.
   */
  CLIENT_SEND_TIMEOUT: { status: 408, message: 'Request Timeout', source: 'client' },
  /** Not sent (the client is gone): the status nginx logs for a request whose client closed the connection. */
  CLIENT_CLOSED: { status: 499, message: 'Client Closed Request', source: 'client' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatewayErrorOptions {
  /** Safe detail for the client (e.g. validation messages). Must not contain secrets. */
  details?: unknown;
  /** True when the same request may be sent to another upstream. Only the proxy's retry loop reads it. */
  retryable?: boolean;
  /** The underlying error, for logs only (its message is logged, never sent to the client). */
  cause?: unknown;
  /** Extra response headers, e.g. Retry-After or WWW-Authenticate. */
  headers?: Record<string, string>;
  /** Overrides the catalogue message (still client-safe). */
  message?: string;
  /** Extra top-level fields of the JSON body (e.g. `retry_after` on a 429). Client-safe values only. */
  body?: Record<string, unknown>;
}

/** A failure with a stable code, an HTTP status and a message that is safe to show a client. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly source: ErrorSource;
  readonly retryable: boolean;
  readonly details: unknown;
  readonly headers: Record<string, string> | undefined;
  readonly body: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: GatewayErrorOptions = {}) {
    const spec: CodeSpec = ERROR_CODES[code];
    super(options.message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.source = spec.source;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.headers = options.headers;
    this.body = options.body;
  }

  /** The stable, machine-readable name of the code in error bodies: the catalogue name in lower case. */
  get publicCode(): string {
    return publicCodeOf(this.code);
  }
}

const PUBLIC_CODES = new Map<string, string>();

/** "ROUTE_NOT_FOUND" → "route_not_found": the `code` field of every gateway-made error body. */
export function publicCodeOf(code: ErrorCode): string {
  let lower = PUBLIC_CODES.get(code);
  if (lower === undefined) PUBLIC_CODES.set(code, (lower = code.toLowerCase()));
  return lower;
}

/** Turns anything thrown into a GatewayError; unknown errors become INTERNAL so their text never reaches a client. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('INTERNAL', { cause: err });
}

/**
 * A short, secret-free description of an error's cause for log lines: its class and code, never a message. A wrapper
 * without a code of its own (StoreUnavailableError, KvUnavailableError) names what it wraps, up to three levels:
 * "StoreUnavailableError <- SqliteError(SQLITE_READONLY)" says why, where the class alone did not. A PluginError
 * is "PluginError <- <the class the plugin threw>".
 */
export function describeCause(err: unknown, depth = 0): string | undefined {
  if (err === undefined || err === null) return undefined;
  // Plugin code's failures are reduced to their class at the boundary (plugins/plugin-error.ts): a plugin's `code`
  // and `name` are its own words, and may carry data.
  if (err instanceof PluginError) return `PluginError <- ${err.errorClass}`;
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (typeof code === 'string') return `${err.name}(${code})`;
    if (err.cause instanceof Error && depth < 3) return `${err.name} <- ${describeCause(err.cause, depth + 1)!}`;
    return err.name;
  }
  return typeof err;
}
