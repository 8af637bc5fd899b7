// The four identity header names (middleware.auth.user_id_header, user_email_header, consumer_id_header,
// consumer_name_header): the gateway deletes each from every request and writes it for a verified caller, so a name
// that HTTP or the gateway itself uses would be taken over (Content-Length: every authenticated request refused 400;
// X-Request-ID or X-Forwarded-For: the backend lost them, and got the user's id or email in their place), and two
// names one backend reads alike would let a user and an API key consumer pass for each other.
import type { Config } from './schema.js';
import { CLIENT_ADDRESS_HEADERS, FORWARDING_HEADERS, GATEWAY_HEADERS, TRACING_HEADERS, headerKey } from '../proxy/owned-headers.js';

/**
 * Headers that frame, route, authenticate or condition a request, describe its connection, or that browsers set
 * themselves (the Fetch standard's forbidden request headers): never an identity header. With `Sec-WebSocket-Key` as
 * one, every authenticated WebSocket handshake failed (the backend's accept key answered the consumer id).
 */
const HTTP_HEADERS: readonly string[] = [
  'host', 'content-length', 'content-type', 'content-encoding', 'content-range', 'transfer-encoding', 'connection',
  'keep-alive', 'te', 'trailer', 'upgrade', 'expect', 'proxy-connection', 'proxy-authorization', 'http2-settings',
  'authorization', 'cookie', 'cookie2', 'set-cookie', 'x-api-key', 'origin', 'referer', 'via', 'max-forwards', 'date',
  'dnt', 'range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'accept',
  'accept-charset', 'accept-encoding', 'accept-language', 'cache-control', 'pragma', 'user-agent',
  'access-control-request-headers', 'access-control-request-method',
];

const TAKEN: ReadonlySet<string> = new Set([...HTTP_HEADERS, ...GATEWAY_HEADERS, ...FORWARDING_HEADERS, ...CLIENT_ADDRESS_HEADERS, ...TRACING_HEADERS]);

/** Prefixes of names no identity header may take: forwarding headers, and the names browsers own (Sec-*, Proxy-*). */
const TAKEN_PREFIXES: readonly string[] = ['x-forwarded-', 'sec-', 'proxy-'];

const KEYS = ['user_id_header', 'user_email_header', 'consumer_id_header', 'consumer_name_header'] as const;

/** The first problem as "key.path: reason", or undefined. Names compare in any case, with "_" read as "-". */
export function identityHeaderProblem(config: Config): string | undefined {
  const auth = config.middleware.auth;
  const seen = new Map<string, string>();
  for (const key of KEYS) {
    const name = auth[key];
    const canonical = headerKey(name);
    const at = `middleware.auth.${key}`;
    if (TAKEN.has(canonical) || TAKEN_PREFIXES.some((prefix) => canonical.startsWith(prefix))) {
      return `${at}: "${name}" is a header HTTP or the gateway itself uses; name a header of its own (the default is ${DEFAULTS[key]})`;
    }
    const other = seen.get(canonical);
    if (other !== undefined) {
      return `${at}: "${name}" names the same header as middleware.auth.${other} (names compare in any case, "_" as "-"): a backend could not tell the two apart`;
    }
    seen.set(canonical, key);
  }
  return undefined;
}

const DEFAULTS: Readonly<Record<(typeof KEYS)[number], string>> = {
  user_id_header: 'X-User-Id',
  user_email_header: 'X-User-Email',
  consumer_id_header: 'X-Consumer-Id',
  consumer_name_header: 'X-Consumer-Name',
};
