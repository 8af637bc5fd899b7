// Headers the gateway owns, which plugins may not set or delete. A stand-in until the one shared list (from the
// hardening work, src/proxy/owned-headers.ts) is on main; the plugin facade calls only `isOwnedHeader`.

/** Connection-level and framing headers: node and undici write these, an edit would corrupt the message. */
const FRAMING = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'content-length'];

/** Sent upstream by the gateway itself (proxy/headers.ts), or refused from clients (proxy-authorization, expect). */
const REQUEST_OWNED: ReadonlySet<string> = new Set([
  ...FRAMING,
  'host',
  'proxy-authorization',
  'http2-settings',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-prefix',
  'x-request-id',
]);

/** Sent to clients by the gateway itself (the driver's decorator, the limiter). */
const RESPONSE_OWNED: ReadonlySet<string> = new Set([
  ...FRAMING,
  'x-proxy-by',
  'x-request-id',
  'x-response-time',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'ratelimit-policy',
]);

/** Which way a header travels. */
export type HeaderDirection = 'request' | 'response';

/**
 * True when the gateway owns header `name` (lower-case) in that direction. `identity` holds the configured
 * identity header names (middleware.auth.user_id_header / user_email_header, lower-cased): only the gateway may
 * say who the caller is.
 */
export function isOwnedHeader(name: string, direction: HeaderDirection, identity: ReadonlySet<string>): boolean {
  if (direction === 'request') return REQUEST_OWNED.has(name) || identity.has(name);
  return RESPONSE_OWNED.has(name) || name.startsWith('access-control-');
}
