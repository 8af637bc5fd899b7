// Which headers a plugin may not set or delete: the gateway's one list (proxy/owned-headers.ts), plus the headers
// that frame the message or carry the gateway's own decisions, which a plugin must not rewrite either.
import { isOwnedHeader as isGatewayRequestHeader, isOwnedResponseHeader as isGatewayResponseHeader } from '../proxy/owned-headers.js';

/**
 * Connection-level and framing headers: node and undici write these, an edit would corrupt the message. Node's
 * HTTP/2 layer throws for the connection-specific ones (HTTP2-Settings among them) when the head is written.
 */
const FRAMING = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'http2-settings', 'content-length'];

/** Request headers beyond the shared list: framing, and what the route's `host` mode and node decide. */
const REQUEST_EXTRA: ReadonlySet<string> = new Set([...FRAMING, 'host', 'proxy-authorization', 'expect']);

/** Response headers beyond the shared list: framing, the limiter's RateLimit-* and CORS (access-control-*). */
const RESPONSE_EXTRA: ReadonlySet<string> = new Set([...FRAMING, 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy']);

/** Which way a header travels. */
export type HeaderDirection = 'request' | 'response';

/**
 * True when the gateway owns header `name` (lower-case) in that direction. `identity` holds the configured
 * identity header names (middleware.auth.user_id_header / user_email_header, lower-cased): only the gateway may
 * say who the caller is.
 */
export function isOwnedHeader(name: string, direction: HeaderDirection, identity: ReadonlySet<string>): boolean {
  if (direction === 'request') return isGatewayRequestHeader(name) || REQUEST_EXTRA.has(name) || identity.has(name);
  return isGatewayResponseHeader(name) || RESPONSE_EXTRA.has(name) || name.startsWith('access-control-');
}
