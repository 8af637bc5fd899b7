// The four identity header names (middleware.auth.user_id_header, user_email_header, consumer_id_header,
// consumer_name_header): the gateway deletes each from every request and writes it for a verified caller, so a name
// that HTTP or the gateway itself uses would be taken over (Content-Length: every authenticated request refused 400;
// X-Request-ID or X-Forwarded-For: the backend lost them, and got the user's id or email in their place), and two
// names one backend reads alike would let a user and an API key consumer pass for each other.
import type { Config } from './schema.js';
import { CLIENT_ADDRESS_HEADERS, FORWARDING_HEADERS, GATEWAY_HEADERS, TRACING_HEADERS, headerKey } from '../proxy/owned-headers.js';

/** Headers that frame, route or authenticate a request, or describe its connection: never an identity header. */
const HTTP_HEADERS: readonly string[] = [
  'host', 'content-length', 'content-type', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'te',
  'trailer', 'upgrade', 'expect', 'proxy-connection', 'proxy-authorization', 'http2-settings', 'authorization', 'cookie',
  'x-api-key',
];

const TAKEN: ReadonlySet<string> = new Set([...HTTP_HEADERS, ...GATEWAY_HEADERS, ...FORWARDING_HEADERS, ...CLIENT_ADDRESS_HEADERS, ...TRACING_HEADERS]);

const KEYS = ['user_id_header', 'user_email_header', 'consumer_id_header', 'consumer_name_header'] as const;

/** The first problem as "key.path: reason", or undefined. Names compare in any case, with "_" read as "-". */
export function identityHeaderProblem(config: Config): string | undefined {
  const auth = config.middleware.auth;
  const seen = new Map<string, string>();
  for (const key of KEYS) {
    const name = auth[key];
    const canonical = headerKey(name);
    const at = `middleware.auth.${key}`;
    if (TAKEN.has(canonical) || canonical.startsWith('x-forwarded-')) {
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
