// Which headers a plugin may not set or delete: the gateway's one list (proxy/owned-headers.ts), plus the headers
// that frame the message or carry the gateway's own decisions, which a plugin must not rewrite either.
import type { Config } from '../config/schema.js';
import { ownedHeadersOf } from '../config/route-checks.js';
import { isOwnedResponseHeader as isGatewayResponseHeader, type OwnedHeaders } from '../proxy/owned-headers.js';

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

/** What one config makes the gateway's: the plugin guards of a generation share it. */
export interface OwnedByConfig {
  /**
   * The config's owned request headers, the list the gateway drops from clients by (server.ts): the identity and
   * consumer header names as configured (middleware.auth.*_header), and traceparent/tracestate while tracing is on,
   * since the tracing phase writes them after the plugins and would silently replace a plugin's value.
   */
  readonly request: OwnedHeaders;
  /** `tracing.response_header` while tracing is on (the tracing phase writes it after onResponse), else ''. */
  readonly traceHeader: string;
  /**
   * True while the gateway writes Strict-Transport-Security (TLS on, `server.tls.hsts` set): its phase runs after
   * onResponse (tls/setup.ts) and replaced a plugin's value without a word.
   */
  readonly hsts?: boolean;
}

/** Whether `config` has the gateway write Strict-Transport-Security on every response (tls/setup.ts hstsValue). */
export function writesHsts(config: Config): boolean {
  const tls = config.server.tls;
  return tls.cert_file !== '' && tls.key_file !== '' && tls.hsts !== '';
}

/** The owned headers of `config`, as the gateway itself treats them. */
export function ownedByConfig(config: Config): OwnedByConfig {
  return {
    request: ownedHeadersOf(config),
    traceHeader: config.tracing.otlp_endpoint === '' ? '' : config.tracing.response_header,
    hsts: writesHsts(config),
  };
}

/** True when the gateway owns header `name` (lower-case) in that direction under `owned`. */
export function isOwnedHeader(name: string, direction: HeaderDirection, owned: OwnedByConfig): boolean {
  if (direction === 'request') return owned.request.isOwned(name) || REQUEST_EXTRA.has(name);
  return (
    isGatewayResponseHeader(name, owned.traceHeader) ||
    RESPONSE_EXTRA.has(name) ||
    name.startsWith('access-control-') ||
    (owned.hsts === true && name === 'strict-transport-security')
  );
}
