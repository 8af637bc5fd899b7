// The one configuration schema: every key, its type, default and range. The TypeScript type is inferred from it.
import { isIP } from 'node:net';
import * as z from 'zod';
import { MAX_TIMER_MS, parseDuration } from './duration.js';
import { parseSize } from './size.js';
import { parsePostgresUrl, postgresUrlProblem } from './postgres-url.js';
import { isLoopbackAddress } from '../admin/admin-auth.js';
import { DEFAULT_TLS12_CIPHERS } from '../tls/ciphers.js';
import {
  addPrefixProblem,
  matchHeaderValueProblem,
  matchHostKey,
  matchHostProblem,
  hostConditionProblem,
  originProblem,
  probeHostProblem,
  routeHostProblem,
  routeMethodProblem,
  routePathProblem,
  type RoutePathKey,
} from './route-values.js';

/** A listen address that only this machine can reach: a loopback literal or `localhost`. */
function isLoopbackListenHost(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

/**
 * The unit of a value users write in human form; `portcullis schema` turns a default in milliseconds (or bytes)
 * back into that form ("10s"), since the JSON Schema describes the file, not the parsed config.
 */
/**
 * The longest `middleware.auth.api_key_cache_ttl`: half of how long a revoked key stays in the revocation store
 * (identity/admin-service.ts), so a record read just before its revocation (a read in flight as it was revoked) has
 * run out of every cache before the revocation store forgets it.
 */
export const API_KEY_CACHE_TTL_MAX_MS = 5 * 60_000;

export const humanUnits = z.registry<{ unit: 'duration' | 'size' }>();

/** A duration: a number of seconds, or a string such as "500ms", "10s", "15m", "7d". Parsed to milliseconds, at most `max`. */
function durationUpTo(max: number) {
  return z
    .union([z.number(), z.string()])
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration like 500ms, 10s, 15m, 7d or a number of seconds' });
        return z.NEVER;
      }
      return Math.min(ms, max);
    })
    .register(humanUnits, { unit: 'duration' });
}

/**
 * A duration that becomes a timer (a timeout, an interval, a cooldown, a grace): capped at a Node.js timer's longest
 * delay, about 24.8 days, which means "never" to any of them. Past it, Node fires a timer after 1 ms: `30d` would have
 * timed out every Redis command and plugin hook, run the session janitor every millisecond, and so on.
 */
const duration = durationUpTo(MAX_TIMER_MS);
/**
 * A timer duration for which 0 cannot mean "off": an interval (0 runs its work back to back) or a bound every wait
 * must beat (0 fails them all).
 */
const positiveDuration = duration.refine((ms) => ms > 0, 'must be more than 0');
/**
 * A token's lifetime: compared with clocks, never a timer, and commonly longer than a timer can hold. Capped at 100
 * years, far inside what a Date can hold (a larger one made every expiry an Invalid Date, failing every login).
 */
const lifetime = durationUpTo(100 * 365.25 * 86_400_000);

/**
 * A host to listen on: an IP address (IPv6 without brackets, as node's listen() takes it) or a host name; empty is
 * node's default (every interface). Anything else passed check-config and failed at start-up with a bare
 * `getaddrinfo ENOTFOUND` (`[::1]`, `999.1.1.1`, a name with a space).
 */
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
function listenHostProblem(host: string): string | undefined {
  if (host === '' || isIP(host) !== 0) return undefined;
  if (host.startsWith('[') && host.endsWith(']') && isIP(host.slice(1, -1)) === 6) {
    return `an IPv6 address is written without brackets here (${host.slice(1, -1)})`;
  }
  // All digits and dots is an IPv4 address or nothing (999.1.1.1 would be looked up as a name).
  if (!HOST_NAME.test(host) || /^[\d.]+$/.test(host)) return 'must be an IP address or a host name';
  return undefined;
}
const listenHost = (fallback: string) =>
  z
    .string()
    .superRefine((host, ctx) => {
      const message = listenHostProblem(host);
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    })
    .default(fallback);

const port = z.number().int().min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535');
/** A port to listen on; 0 picks a free one (tests). */
const listenPort = z.number().int().min(0, 'must be between 0 and 65535').max(65535, 'must be between 0 and 65535');
const positiveInt = z.number().int().positive();

/**
 * A redis:// or rediss:// URL (`redis.url` and the topologies' node lists). The client would throw a TypeError at
 * start-up for another scheme, a URL it cannot parse, or a path that is not a database number (`/0`); refused here,
 * so check-config, start and reload all say which key. The message never repeats the URL (it may hold a password).
 */
const REDIS_URL_MESSAGE = 'must be a redis:// or rediss:// URL';
/**
 * The user and password are percent-decoded by the clients at start-up: a malformed escape ("%zz", a lone "%")
 * passed check-config and then stopped the start with a bare "URIError: URI malformed".
 */
const REDIS_CREDENTIALS_MESSAGE = 'has a user or password with a malformed percent-escape (write a literal % as %25)';
/**
 * The Redis client signs in only when the URL has a password: `redis://alice@host` connected as the `default` user,
 * with its rights instead of alice's ACL (or failed with NOAUTH when `default` is off). A nopass user accepts any
 * password, so one can always be written.
 */
const REDIS_USER_WITHOUT_PASSWORD_MESSAGE =
  'names a user without a password, and would sign in as the default user (write user:password@; a nopass user accepts any password)';
/**
 * Port 0 is no server's: the client connected to it and was refused, and every command failed (each rate-limited
 * request a 503 or let through uncounted, "KV Store Unavailable ... ECONNREFUSED") after a check-config and start
 * that said ok.
 */
const REDIS_PORT_ZERO_MESSAGE = 'names port 0, where no server listens (write the server\'s port, or none for 6379)';
const redisUrl = z
  .string()
  .refine((value) => redisUrlOk(value), REDIS_URL_MESSAGE)
  .refine((value) => !redisUrlOk(value) || credentialsDecode(value), REDIS_CREDENTIALS_MESSAGE)
  .refine((value) => !redisUrlOk(value) || !userWithoutPassword(value), REDIS_USER_WITHOUT_PASSWORD_MESSAGE)
  .refine((value) => !redisUrlOk(value) || new URL(value).port !== '0', REDIS_PORT_ZERO_MESSAGE);
/** `redis.url`: the same, or empty for no single server. */
const redisUrlOrEmpty = z
  .string()
  .refine((value) => value === '' || redisUrlOk(value), REDIS_URL_MESSAGE)
  .refine((value) => value === '' || !redisUrlOk(value) || credentialsDecode(value), REDIS_CREDENTIALS_MESSAGE)
  .refine((value) => value === '' || !redisUrlOk(value) || !userWithoutPassword(value), REDIS_USER_WITHOUT_PASSWORD_MESSAGE)
  .refine((value) => value === '' || !redisUrlOk(value) || new URL(value).port !== '0', REDIS_PORT_ZERO_MESSAGE);

function userWithoutPassword(value: string): boolean {
  const { username, password } = new URL(value);
  return username !== '' && password === '';
}

function credentialsDecode(value: string): boolean {
  const { username, password } = new URL(value);
  try {
    decodeURIComponent(username);
    decodeURIComponent(password);
    return true;
  } catch {
    return false;
  }
}

/**
 * Any case of the scheme (RFC 3986 §3.1: schemes are case-insensitive): `REDIS://host` is redis:// to node-redis and
 * to every check below, which read the scheme through `new URL()` (it lower-cases it).
 */
function redisUrlOk(value: string): boolean {
  if (!/^rediss?:\/\/[^/\s]+/i.test(value) || !URL.canParse(value)) return false;
  const { pathname } = new URL(value);
  return pathname === '' || pathname === '/' || /^\/\d+$/.test(pathname);
}

/**
 * `database.url`: empty (SQLite) or a URL the PostgreSQL driver takes. Any other scheme (mysql://) used to reach the
 * driver and fail as an unreachable store; refused here with the key's name, never the URL (it holds a password).
 */
const databaseUrl = z
  .string()
  .refine((value) => value === '' || isPostgresUrl(value), 'must be empty (SQLite in the data dir) or a postgres:// or postgresql:// URL')
  // Its parameters and escapes as the driver reads them (postgres-url.ts): a value it reads otherwise, or throws on
  // at start-up, is refused by check-config, start and every command that opens the store alike.
  .superRefine((value, ctx) => {
    if (value === '' || !isPostgresUrl(value)) return;
    const problem = postgresUrlProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
// Credentials before an empty host, with the socket directory in the query (`postgres://user:pass@/db?host=/cloudsql/
// p:r:i`), are refused by the WHATWG parser and read by the driver (pg-connection-string parses again with a
// placeholder host, then takes the query's): taken as the driver takes them, with that placeholder alone. Not the
// driver's encodeURI of a whole value with a space: a host "h h" would pass and be looked up at start.
function isPostgresUrl(value: string): boolean {
  if (!/^postgres(?:ql)?:\/\//i.test(value)) return false;
  return URL.canParse(value) || (value.includes('@/') && URL.canParse(value.replace('@/', '@___DUMMY___/')) && parsePostgresUrl(value) !== undefined);
}

/**
 * A `server.trusted_proxies` entry: an IP address, or a CIDR whose prefix fits its family. Checked here rather than
 * when the list is built at start-up (node's BlockList threw a RangeError there, which check-config never saw), and
 * strictly: `10.0.0.0/` or `10.0.0.0/8/9` would otherwise be read as /0 or /8.
 */
const trustedProxy = z.string().refine((entry) => {
  const slash = entry.indexOf('/');
  const family = isIP(slash === -1 ? entry : entry.slice(0, slash));
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = entry.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}, 'must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8');

/**
 * An http:// or https:// URL with a host, as the OTLP exporter parses it (WHATWG URL). A pattern alone passed a port
 * beyond 65535, a blank or a stray `%` in the host: check-config said ok, and start stopped with the exporter's
 * "Could not parse user-provided export URL", naming no key.
 */
function isHttpUrl(text: string): boolean {
  if (!/^https?:\/\/[^/\s]+/.test(text)) return false;
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** RFC 7518 section 3.2: an HS256 key is at least as long as the hash output (src/auth/keys.ts checks it again). */
const MIN_JWT_SECRET_BYTES = 32;

/**
 * `admin.token`: compared with what `Authorization: Bearer <token>` carries, which is one run of visible ASCII (the
 * admin listener reads `Bearer (\S+)`), so a token with a space, a control or a non-ASCII character could never be
 * sent and matched. 16 characters at least: the token guards /reload and the users API, and 16 is what
 * `openssl rand -hex 8` (64 bits) or `-base64 12` gives, while a word someone picks by hand is refused.
 */
const ADMIN_TOKEN_MIN_LENGTH = 16;
const adminToken = z
  .string()
  .refine((token) => token === '' || /^[\x21-\x7e]+$/.test(token), 'must be visible ASCII characters with no spaces (it is sent as "Authorization: Bearer <token>")')
  .refine((token) => token === '' || token.length >= ADMIN_TOKEN_MIN_LENGTH, `must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters (or empty for no token)`);

/** `redis`: at most one topology; a sentinel needs both its name and nodes; a cluster's hash tags need a brace-free prefix. */
function checkRedisTopology(
  redis: { url: string; key_prefix: string; cluster: string[]; sentinel: { name: string; nodes: string[] } },
  ctx: z.RefinementCtx,
): void {
  const sentinelSet = redis.sentinel.name !== '' || redis.sentinel.nodes.length > 0;
  const set = [redis.url !== '' && 'url', redis.cluster.length > 0 && 'cluster', sentinelSet && 'sentinel'].filter(Boolean);
  if (set.length > 1) ctx.addIssue({ code: 'custom', path: [], message: `set only one of url, cluster, sentinel (got ${set.join(' and ')})` });
  if (sentinelSet && redis.sentinel.name === '') ctx.addIssue({ code: 'custom', path: ['sentinel', 'name'], message: 'is required with sentinel.nodes' });
  if (sentinelSet && redis.sentinel.nodes.length === 0) ctx.addIssue({ code: 'custom', path: ['sentinel', 'nodes'], message: 'needs at least one sentinel URL' });
  if (redis.cluster.length > 0 && /[{}]/.test(redis.key_prefix)) {
    ctx.addIssue({ code: 'custom', path: ['key_prefix'], message: 'must not contain { or } with a cluster (the keys carry their own hash tags)' });
  }
  checkClusterSeeds(redis.cluster, ctx);
}

/** A URL's username or password as the Redis client decodes it; as written when it is not valid percent-encoding. */
function decodedUserinfo(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * `redis.cluster`: the seeds only tell the slot map; every node is then reached with the first seed's scheme and
 * credentials, and a Redis Cluster has database 0 alone (SELECT is refused). A seed naming another database, or
 * seeds that disagree on TLS or credentials, left the store never connecting, with nothing but a connection error
 * class in the log. The messages name the seed by index, never its URL (it may hold a password).
 */
function checkClusterSeeds(seeds: readonly string[], ctx: z.RefinementCtx): void {
  const parsed = seeds.filter((seed) => redisUrlOk(seed)).map((seed) => new URL(seed));
  parsed.forEach((url, i) => {
    if (!['', '/', '/0'].includes(url.pathname)) {
      ctx.addIssue({ code: 'custom', path: ['cluster', i], message: 'names a database: a Redis Cluster has database 0 only (drop the /N)' });
    }
  });
  const first = parsed[0];
  if (first === undefined) return;
  if (parsed.some((url) => url.protocol !== first.protocol)) {
    ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'mixes redis:// and rediss:// seeds (every node is reached as the first seed says)' });
  }
  // Compared as the store uses them, decoded (redis-cluster.ts credentialsOf): `p%41ss` and `pAss`, or `%2f` and
  // `%2F`, are one password. No user is Redis's `default` user (AUTH pw is AUTH default pw), so `:pw@` and
  // `default:pw@` are one set of credentials too.
  const user = (url: URL): string => decodedUserinfo(url.username) || 'default';
  const pass = (url: URL): string => decodedUserinfo(url.password);
  if (parsed.some((url) => user(url) !== user(first) || pass(url) !== pass(first))) {
    ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'seeds carry different credentials (the first seed\'s are used for every node): write the same user and password in each' });
  }
}

/**
 * An upstream's address: an IP address (IPv6 without brackets) or a host name, as the upstream's URL is built from it
 * and `port`. Anything else passed check-config and failed at start-up (or a reload) with `TypeError:
 * ERR_INVALID_URL Invalid URL`, naming no key: a scheme (`http://10.0.0.1`), a port (`10.0.0.1:3000`), brackets.
 */
function upstreamAddressProblem(address: string): string | undefined {
  if (address === '') return undefined; // min(1) says so
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) return 'must be an IP address or a host name, without a scheme (TLS is tls.enabled)';
  if (isIP(address) === 0 && /^[^:]+:\d+$/.test(address)) return 'must be an IP address or a host name, without a port (that is the port key)';
  return listenHostProblem(address);
}

/** An upstream group's `tls.servername`: empty (the address), or a host name or IP address alone. */
function servernameProblem(name: string): string | undefined {
  if (name === '') return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) return 'must be a host name or an IP address, without a scheme';
  if (isIP(name) === 0 && /^[^:]+:\d+$/.test(name)) return "must be a host name or an IP address, without a port (the upstream's port is its own key)";
  // A certificate's wildcard name as written (`*.svc.test`): node verifies it against the identical SAN and SNI routing
  // by suffix takes it, so such a config served; refused as not a host name, it stopped check-config and start. A
  // whole leading `*` label before a name of at least two labels, as a wildcard SAN is written; no other `*`.
  const wildcard = /^\*\.(.+\..+)$/.exec(name);
  if (wildcard !== null && isIP(wildcard[1]!) === 0 && listenHostProblem(wildcard[1]!) === undefined) return undefined;
  return listenHostProblem(name);
}

const upstream = z
  .object({
    name: z.string().min(1),
    address: z
      .string()
      .min(1)
      .superRefine((address, ctx) => {
        const message = upstreamAddressProblem(address);
        if (message !== undefined) ctx.addIssue({ code: 'custom', message });
      }),
    port,
    weight: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

const healthCheck = z
  .object({
    enabled: z.boolean().default(true),
    /** Path of the active HTTP GET probe. Any status below 500 counts as healthy (the server answered). */
    path: z.string().startsWith('/').default('/'),
    /** The probe's Host; empty: the service's tls.servername, else the upstream's address:port. */
    host: z.string().superRefine(refusing(probeHostProblem)).default(''),
    // 0 is never "off" here (enabled is): an interval of 0 probed without pause, and a timeout of 0 aborted every
    // probe at once, taking healthy upstreams out of rotation.
    interval: duration
      .refine((ms) => ms > 0, 'must be more than 0 (0 would probe without pause; to stop probing, set health_check.enabled: false)')
      .default(5_000),
    timeout: duration
      .refine((ms) => ms > 0, 'must be more than 0 (a probe given no time always fails; to stop probing, set health_check.enabled: false)')
      .default(2_000),
    healthy_threshold: positiveInt.default(2),
    unhealthy_threshold: positiveInt.default(2),
    /** How long a connection failure or timeout keeps an upstream out of rotation (passive check). */
    passive_cooldown: duration.default(10_000),
  })
  .strict();

const timeouts = z
  .object({
    /** Time a client has to send the request headers (slowloris guard). */
    header: duration.default(10_000),
    /** Time a client has to send the whole request, body included; 0 disables. */
    request: duration.default(300_000),
    /** Keep-alive idle time of a client connection. */
    idle: duration.default(5_000),
    /** Time to open a TCP connection to an upstream. */
    upstream_connect: duration.default(5_000),
    /** Time an upstream has to send its response headers; exceeding it gives 504. */
    upstream_response: duration.default(30_000),
    /** Longest silence between two body chunks of an upstream response. */
    upstream_body: duration.default(60_000),
    /** How long a shutdown waits for in-flight requests before closing their connections. */
    shutdown_drain: duration.default(10_000),
    /** Longest silence between two chunks of a request body being forwarded; then 408 and the connection closes. */
    request_body_chunk: duration.default(30_000),
    /**
     * Longest silence of a WebSocket tunnel, both ways together, before both its connections are closed (nginx's
     * proxy_read_timeout, Envoy's idle_timeout on an upgraded stream); 0 (the default): none. A route may set its own.
     */
    tunnel_idle: duration.default(0),
  })
  .strict()
  // The whole request includes its head. Node's HTTP/1 server, given a request bound below the head's, stopped
  // enforcing the request bound: a body trickled under `request: 1s` (header at its default 10 s) was not cut.
  .refine((t) => t.request === 0 || t.header === 0 || t.request >= t.header, {
    message: 'must be at least server.timeouts.header (the whole request includes its head), or 0: off',
    path: ['request'],
  });

// --- TLS and HTTP/2 (issue 11) ---
/** One certificate chain and its key, PEM files. */
const certificatePair = z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict();

/**
 * TLS on the proxy listener: on when cert_file and key_file are both set (there is no `enabled` key). More
 * certificates are chosen by SNI from each certificate's own SAN names; the first one answers clients without SNI.
 */
const serverTls = z
  .object({
    cert_file: z.string().default(''),
    key_file: z.string().default(''),
    certificates: z.array(certificatePair).default([]),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /**
     * OpenSSL cipher list (TLS 1.2 suites, and TLS_* names for TLS 1.3's, which keep OpenSSL's default when none is
     * named). Checked against OpenSSL when the certificates load: tls/certificate.ts cipherListProblem.
     */
    ciphers: z.string().default(DEFAULT_TLS12_CIPHERS),
    /** ALPN h2 and http/1.1; only read when TLS is on. */
    http2: z.boolean().default(true),
    /**
     * Strict-Transport-Security value on every TLS response; empty: none. Node's header rule at load time (tab,
     * visible ASCII, Latin-1): a value it refuses (a newline from a quoted `${VAR}`) would fail every TLS response.
     */
    hsts: z
      .string()
      .refine((value) => !/[^\t\x20-\x7e\x80-\xff]/.test(value), 'has a character a header cannot carry (a control character, or one beyond Latin-1)')
      .default(''),
  })
  .strict()
  .refine((t) => (t.cert_file === '') === (t.key_file === ''), { message: 'cert_file and key_file must be set together' })
  .refine((t) => t.certificates.length === 0 || t.cert_file !== '', { message: 'certificates needs cert_file and key_file too' });

/** The optional cleartext listener that answers 308 to https. */
const httpRedirect = z.object({ listen_port: listenPort.optional() }).strict();

/**
 * The redirect listener sends every client to https on server.listen_port: with TLS off that port speaks plain HTTP
 * and each redirected client would fail its handshake. A reload is read by the same schema, so it is refused too.
 */
function checkRedirectHasTls(
  server: { tls: { cert_file: string }; http_redirect: { listen_port?: number | undefined } },
  ctx: z.RefinementCtx,
): void {
  // cert_file alone is enough: serverTls already refuses a cert_file without its key_file (and the reverse).
  if (server.http_redirect.listen_port !== undefined && server.tls.cert_file === '') {
    ctx.addIssue({ code: 'custom', path: ['http_redirect'], message: 'needs server.tls.cert_file and key_file (it redirects to https on server.listen_port)' });
  }
}

/**
 * TLS to an upstream group (load_balancing, and each service). Reused by the services schema, so both stay one
 * definition. Verification is on by default; `verify: false` is allowed but logged loudly at start-up.
 */
export const upstreamTls = z
  .object({
    enabled: z.boolean().default(false),
    /** PEM bundle of CAs to trust; empty: the system's CAs. */
    ca_file: z.string().default(''),
    /**
     * SNI and the name to verify; empty: the upstream's address. A name or an IP address as `address` takes it: with a
     * port or a scheme (`api.internal:443`), it was sent as SNI and checked against the certificate as written, and
     * every request was a 502 upstream_tls "name mismatch" after a check-config, start and reload that said ok.
     */
    servername: z
      .string()
      .superRefine((name, ctx) => {
        const message = servernameProblem(name);
        if (message !== undefined) ctx.addIssue({ code: 'custom', message });
      })
      .default(''),
    verify: z.boolean().default(true),
    /** Client certificate and key for mutual TLS; both or neither. */
    cert_file: z.string().default(''),
    key_file: z.string().default(''),
  })
  .strict()
  .refine((t) => (t.cert_file === '') === (t.key_file === ''), { message: 'cert_file and key_file must be set together' });
// --- end TLS and HTTP/2 ---

/**
 * The longest a token bucket may take to refill from empty (burst_size / requests_per_minute minutes): 100 years, the
 * longest expiry the plugin API's store allows too. The Redis store gives each bucket that expiry; past about 1e12
 * minutes Redis refused it, and every request of the rule was a store error (503 or let through uncounted).
 */
const MAX_REFILL_MINUTES = 100 * 365 * 24 * 60;
const REFILL_BOUND = {
  message: `with requests_per_minute, refills from empty in more than 100 years (burst_size / requests_per_minute must be at most ${MAX_REFILL_MINUTES} minutes)`,
  path: ['burst_size'],
};
function refillsInTime(rule: { readonly requests_per_minute: number; readonly burst_size: number }): boolean {
  return rule.burst_size / rule.requests_per_minute <= MAX_REFILL_MINUTES;
}

const rateLimitRule = z
  .object({
    requests_per_minute: positiveInt,
    burst_size: positiveInt,
  })
  .strict()
  .refine(refillsInTime, REFILL_BOUND);

/**
 * middleware.rate_limit.auth: the /auth/* bucket (per client address), the login buckets, and their own store-error
 * policy. Login also takes a strict bucket per email + address (429) and a looser one per email across all addresses
 * that only delays, so nobody can lock an account's owner out from another address (OWASP's advice).
 */
const authRateLimit = z
  .object({
    /**
     * These brute-force protections (and the failed-authentication penalty) are on whenever auth is, whatever
     * middleware.rate_limit.enabled says (that one governs proxied traffic only); false is for load tests.
     */
    enabled: z.boolean().default(true),
    requests_per_minute: positiveInt.default(20),
    burst_size: positiveInt.default(5),
    /** Per email from one address (login only): when empty, 429. Guessing one account from one address is slow. */
    per_email_address: z
      .object({ requests_per_minute: positiveInt.default(1), burst_size: positiveInt.default(5) })
      .strict()
      .refine(refillsInTime, REFILL_BOUND)
      .prefault({}),
    /**
     * Per email, any address: when empty, a login takes its token on credit and waits until it would have refilled;
     * when that wait would pass max_delay, 429 at once.
     */
    per_email: z
      .object({
        requests_per_minute: positiveInt.default(10),
        burst_size: positiveInt.default(10),
        max_delay: duration.default(3_000),
      })
      .strict()
      .refine(refillsInTime, REFILL_BOUND)
      .prefault({}),
    /** Bucket store (Redis) unreachable on /auth/* and login: deny (503) by default, so brute-force limits never vanish. */
    on_store_error: z.enum(['allow', 'deny']).default('deny'),
  })
  .strict()
  .refine(refillsInTime, REFILL_BOUND);


/** A size: a number of bytes, or a string such as "512KB", "10MB", "1GB" (powers of 1024). */
const size = z
  .union([z.number().nonnegative(), z.string()])
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a size like 512KB, 10MB, 1GB or a number of bytes' });
      return z.NEVER;
    }
    return bytes;
  })
  .register(humanUnits, { unit: 'size' });

/** The keys shared by `load_balancing` (the service named "default") and every entry of `services`. */
const upstreamGroupShape = {
  strategy: z.enum(['round_robin', 'random', 'least_conn']).default('round_robin'),
  // A name is how logs, metrics and the dashboard tell upstreams apart: two of one name were counted as one there.
  // An address:port is how the balancer does (its pool, health, in-flight count and a reload's carry-over): two
  // entries of one were merged by every reload, which closed the pool's connections, moved one entry's in-flight
  // count onto the other and restarted the rotation. A weight says what listing it twice meant.
  upstreams: z
    .array(upstream)
    .min(1, 'at least one upstream is required')
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      const byAddress = new Map<string, string>();
      list.forEach((u, i) => {
        if (seen.has(u.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate upstream name "${u.name}" in this service` });
        seen.add(u.name);
        const at = `${u.address}:${u.port}`;
        const first = byAddress.get(at);
        if (first !== undefined) {
          ctx.addIssue({ code: 'custom', path: [i, 'port'], message: `${at} is already upstream "${first}" of this service (to send it more, raise its weight)` });
        } else byAddress.set(at, u.name);
      });
    }),
  /** Extra attempts on another upstream when a connection fails before any response byte. */
  retries: z.number().int().min(0).max(5).default(1),
  /** Keep-alive connections per upstream. */
  connections_per_upstream: positiveInt.default(128),
  /** Requests per upstream that may wait for a free connection; more get 503 with Retry-After at once. */
  queue_limit: z.number().int().min(0).default(1024),
  /** Longest wait for a free upstream connection; then 503 with Retry-After. */
  queue_timeout: duration.default(5_000),
  health_check: healthCheck.prefault({}),
  tls: upstreamTls.prefault({}),
  /** HTTP/2 to the upstreams (needed for gRPC): over TLS by ALPN, else cleartext with prior knowledge (h2c). */
  http2: z.boolean().default(false),
};

/** Upstream timeouts a service (all three) or a route (response and body, applied per request) may override. */
const upstreamTimeouts = z
  .object({
    upstream_connect: duration.optional(),
    upstream_response: duration.optional(),
    upstream_body: duration.optional(),
  })
  .strict();

/** The seed's `load_balancing` block: one upstream group, the service named "default". */
const upstreamGroup = z.object(upstreamGroupShape).strict();

/** A named upstream group (Kong's service, Envoy's cluster); `timeouts` override server.timeouts.upstream_*. */
const service = z.object({ ...upstreamGroupShape, timeouts: upstreamTimeouts.prefault({}) }).strict();

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const serviceName = z.string().regex(NAME_PATTERN, 'must be 1-64 letters, digits, ".", "_" or "-"');
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headerName = z
  .string()
  .regex(HEADER_NAME, 'must be a valid header name')
  .transform((name) => name.toLowerCase());
/** A header name the gateway sets upstream, kept as spelled (its readers compare it case-insensitively). */
const identityHeaderName = z
  .string()
  .min(1)
  .refine((name) => HEADER_NAME.test(name), 'must be a valid header name (letters, digits and !#$%&\'*+.^_`|~-)');

/**
 * Header name → value, names lower-cased. Two spellings of one name (`X-Tag` and `x-tag`) are refused: lower-casing
 * the keys made one of the two overwrite the other without a word.
 */
function headerMap<V extends z.ZodType<string, string>>(value: V) {
  return z
    .record(z.string().regex(HEADER_NAME, 'must be a valid header name'), value)
    .superRefine((map, ctx) => {
      const seen = new Map<string, string>();
      for (const name of Object.keys(map)) {
        const first = seen.get(name.toLowerCase());
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: `"${first}" and "${name}" name the same header: keep one` });
        seen.set(name.toLowerCase(), name);
      }
    })
    .transform((map) => Object.fromEntries(Object.entries(map).map(([name, v]) => [name.toLowerCase(), v])));
}
const httpMethod = z
  .string()
  .regex(/^[A-Za-z]+$/, 'must be an HTTP method')
  .transform((m) => m.toUpperCase());

/** A refinement from a "why not" function of route-values.ts: its reason becomes the key's error. */
function refusing<T>(problemOf: (value: T) => string | undefined): (value: T, ctx: z.RefinementCtx) => void {
  return (value, ctx) => {
    const message = problemOf(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  };
}

/** A route's `path` or `path_prefix`: a canonical path the gateway can route (no "*", no "?"). */
const routePath = (key: RoutePathKey) =>
  z
    .string()
    .startsWith('/')
    .superRefine(refusing((value: string) => routePathProblem(value, key)));

/**
 * An `allowed_origins` entry: "*" or a serialized origin, lower-cased (scheme and host compare case-insensitively,
 * and browsers send them in lower case), so the parsed config holds the one spelling a browser's Origin can equal.
 * A refinement, not an issue raised in the transform: a route's `cors` is a union with "off", and zod reports a
 * branch's own message only when its issues are refinements; else the user would read "Invalid input".
 */
const allowedOrigin = z
  .string()
  .min(1)
  .superRefine(refusing((value: string) => originProblem(value.toLowerCase())))
  .transform((value) => value.toLowerCase());

/** `middleware.cors`, and a route's own `cors`. */
const cors = z
  .object({
    /** Exact origins ("https://app.example.com", no path or trailing slash, no wildcard), or "*" (only without credentials). */
    allowed_origins: z.array(allowedOrigin).min(1),
    allowed_methods: z.array(httpMethod).default(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
    allowed_headers: z.array(headerName).default(['authorization', 'content-type']),
    expose_headers: z.array(headerName).default([]),
    allow_credentials: z.boolean().default(false),
    /** Seconds a browser may cache a preflight answer. */
    max_age: z.number().int().min(0).default(600),
  })
  .strict()
  .refine((c) => !(c.allow_credentials && c.allowed_origins.includes('*')), {
    message: '"*" in allowed_origins cannot be combined with allow_credentials',
    path: ['allowed_origins'],
  })
  // For a credentialed request browsers read "*" in Access-Control-Allow-Headers / -Expose-Headers as a header named
  // "*" (Fetch, CORS-preflight fetch): every preflight asking for a header then failed, and nothing was exposed.
  .refine((c) => !(c.allow_credentials && c.allowed_headers.includes('*')), {
    message: '"*" in allowed_headers cannot be combined with allow_credentials (browsers then read it as a header named "*"): list the headers',
    path: ['allowed_headers'],
  })
  .refine((c) => !(c.allow_credentials && c.expose_headers.includes('*')), {
    message: '"*" in expose_headers cannot be combined with allow_credentials (browsers then read it as a header named "*"): list the headers',
    path: ['expose_headers'],
  });

/** Header edits of a route: `set` (name → value) then `remove` (names). */
const headerRewrite = z
  .object({
    set: headerMap(z.string()).default({}),
    remove: z.array(headerName).default([]),
  })
  .strict();

const routeMatch = z
  .object({
    /**
     * Exact host names, or "*.example.com" (one or more labels before .example.com), or IP literals (1.2.3.4, [::1]).
     * Case-insensitive, port ignored, one trailing dot the same name (as on the request). Labels may hold "_", as the
     * request's Host check accepts (container and compose service names). Kept as the matcher compares them.
     */
    hosts: z.array(z.string().superRefine(refusing(matchHostProblem)).transform(matchHostKey)).min(1).optional(),
    /** Prefix on segment boundaries: /users matches /users and /users/1, never /usersx. Canonical, no "*" or "?". */
    path_prefix: routePath('path_prefix').optional(),
    /** Exact path. Canonical, no "*" or "?". */
    path: routePath('path').optional(),
    /** Methods that can reach a route: not TRACE or CONNECT (405 before routing), none node's parsers do not know. */
    methods: z.array(httpMethod.superRefine(refusing(routeMethodProblem))).min(1).optional(),
    /**
     * Exact header values; names case-insensitive. A value no request can carry is refused. `host` is compared as a
     * host, as `hosts` entries are (case, port and one trailing dot ignored): compared as spelt, `ADMIN.example.com` or
     * `admin.example.com:443` skipped a route that `admin.example.com` took, and its auth with it.
     */
    headers: headerMap(z.string().superRefine(refusing(matchHeaderValueProblem)))
      .superRefine((map, ctx) => {
        const problem = map.host === undefined ? undefined : hostConditionProblem(map.host);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['host'], message: problem });
      })
      .transform((map) => (map.host === undefined ? map : { ...map, host: matchHostKey(map.host) }))
      .optional(),
  })
  .strict()
  .refine((m) => !(m.path !== undefined && m.path_prefix !== undefined), {
    message: 'set either path or path_prefix, not both',
    path: ['path'],
  });

const splitEntry = z.object({ service: serviceName, weight: z.number().int().min(1).max(1000) }).strict();

const route = z
  .object({
    name: serviceName,
    match: routeMatch.prefault({}),
    service: serviceName.optional(),
    /** Weighted traffic split across services (smooth weighted round robin: exact over time). */
    split: z.array(splitEntry).min(1).optional(),
    /** Remove the matched path_prefix before forwarding (then X-Forwarded-Prefix is set). */
    strip_prefix: z.boolean().default(false),
    /** Prepended after stripping, joined with one slash. Canonical, no "?": the result is forwarded as is. */
    add_prefix: z.string().startsWith('/').superRefine(refusing(addPrefixProblem)).optional(),
    /** Host sent upstream: preserve (the client's), upstream (address:port of the chosen upstream), or a literal host[:port]. */
    host: z.string().min(1).superRefine(refusing(routeHostProblem)).default('preserve'),
    /** Default: required when middleware.auth.enabled, else off. */
    auth: z.enum(['required', 'optional', 'off']).optional(),
    /** Credentials the route accepts when auth is on; default middleware.auth.auth_methods. */
    auth_methods: z.array(z.enum(['jwt', 'api_key'])).min(1).optional(),
    /** default | off | the name of a policy in middleware.rate_limit.policies. */
    rate_limit: z.string().min(1).default('default'),
    request_headers: headerRewrite.optional(),
    response_headers: headerRewrite.optional(),
    timeouts: z
      .object({ upstream_response: duration.optional(), upstream_body: duration.optional(), tunnel_idle: duration.optional() })
      .strict()
      .optional(),
    /** 413 above it; default unlimited (streamed). */
    max_body_size: size.optional(),
    /** The route's own CORS policy, or "off"; default: middleware.cors. */
    cors: z.union([z.literal('off'), cors]).optional(),
    /** Plugin instances for this route, in order; replaces middleware.plugins for it. */
    plugins: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .refine((r) => (r.service === undefined) !== (r.split === undefined), {
    message: 'set exactly one of service or split',
    path: ['service'],
  });

export const configSchema = z
  .object({
    server: z
      .object({
        listen_host: listenHost('0.0.0.0'),
        listen_port: listenPort.default(8080),
        max_connections: positiveInt.default(1000),
        /**
         * Worker processes sharing the port: a number, or "auto" for one per core. At most 256 (HAProxy's nbthread
         * bound is 64): each is a whole Node process of about 55 MB, and a slip such as 4000 for 4 forked until the
         * machine ran out of memory.
         */
        workers: z.union([positiveInt.max(256, 'must be at most 256, or "auto" (one per core)'), z.literal('auto')]).default(1),
        /**
         * Value of the X-Proxy-By response header. Visible ASCII with inner blanks: the listener's own answers (node's
         * 400 to a malformed head, 408, 431, 429) write it into the head as is, where a newline would add a header of
         * its own, and node refuses a control byte in every other answer, which then became a 500. Not Latin-1 either:
         * those raw answers write UTF-8 and node Latin-1, so one value would reach clients as two.
         */
        proxy_by: z
          .string()
          .min(1)
          .refine((value) => /^[\x21-\x7e]([\t\x20-\x7e]*[\x21-\x7e])?$/.test(value), 'must be visible ASCII (inner spaces and tabs allowed): it is a header value')
          .default('Portcullis'),
        /** Peers (IPs or CIDRs) whose X-Forwarded-* headers are believed. Empty: trust no one. */
        trusted_proxies: z.array(trustedProxy).default([]),
        /**
         * Which header of a trusted proxy names the client: auto (X-Forwarded-For, else Forwarded, else X-Real-IP), or
         * that one header alone, as nginx's and Kong's real_ip_header (a proxy that sets only X-Real-IP passes the
         * client's own X-Forwarded-For on).
         */
        client_address_header: z.enum(['auto', 'x-forwarded-for', 'forwarded', 'x-real-ip']).default('auto'),
        /** Open connections per client address; more are answered 429 and closed. Trusted proxies are exempt. */
        max_connections_per_client: positiveInt.default(256),
        timeouts: timeouts.prefault({}),
        tls: serverTls.prefault({}),
        http_redirect: httpRedirect.prefault({}),
        /** HTTP/2: concurrent streams one client connection may open (SETTINGS_MAX_CONCURRENT_STREAMS). */
        http2_max_concurrent_streams: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .superRefine(checkRedirectHasTls)
      .prefault({}),
    database: z
      .object({
        /** Empty: embedded SQLite in the data dir. Otherwise a postgres:// (or postgresql://) URL. */
        url: databaseUrl.default(''),
        pool_size: positiveInt.default(10),
      })
      .strict()
      .prefault({}),
    redis: z
      .object({
        /** Empty: in-process memory store. Otherwise a redis:// or rediss:// URL. */
        url: redisUrlOrEmpty.default(''),
        /** Longest wait for one Redis command before the store-error policy applies. */
        command_timeout: duration.default(500),
        /** Prepended to every Redis key, so several deployments (or test runs) can share one Redis. */
        key_prefix: z.string().min(1).max(128).default('portcullis:'),
        // Redis topologies (issue 14): at most one of url, cluster and sentinel is set; all empty = memory store.
        /** Seed node URLs of a Redis Cluster (a few are enough; the client discovers the rest). */
        cluster: z.array(redisUrl).default([]),
        /** A Sentinel-managed master: its name and some sentinels' URLs. */
        sentinel: z
          .object({ name: z.string().default(''), nodes: z.array(redisUrl).default([]) })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine(checkRedisTopology)
      .prefault({}),
    jwt: z
      .object({
        /** HS256 secret, at least 32 bytes. Empty with HS256: one is generated once and kept in the data dir. */
        secret: z.string().default(''),
        algorithm: z.enum(['HS256', 'EdDSA', 'RS256']).default('HS256'),
        /** PEM files for EdDSA or RS256; the public key is published at /.well-known/jwks.json. */
        private_key_file: z.string().default(''),
        public_key_file: z.string().default(''),
        issuer: z.string().min(1).default('portcullis'),
        audience: z.string().min(1).default('portcullis'),
        access_token_expiration: lifetime.default(900_000),
        refresh_token_expiration: lifetime.default(604_800_000),
        /**
         * How long a session lasts from its login whatever its refreshes (Keycloak's SSO Session Max, Auth0's absolute
         * lifetime): refresh_token_expiration slides with every refresh. 0: no limit. Unset: 30 days, or
         * refresh_token_expiration when that is longer (a config written before this key keeps its sessions' length).
         */
        refresh_token_absolute_expiration: lifetime.optional(),
        /** How long a just-rotated refresh token may be presented again (lost response) without revoking its family. */
        refresh_reuse_grace: duration.default(10_000),
      })
      .strict()
      // Static, so check-config and reload see it too, not only the key loader at start-up (same message as it).
      .superRefine((jwt, ctx) => {
        if (jwt.algorithm === 'HS256' && jwt.secret !== '' && Buffer.byteLength(jwt.secret, 'utf8') < MIN_JWT_SECRET_BYTES) {
          ctx.addIssue({ code: 'custom', path: ['secret'], message: `must be at least ${MIN_JWT_SECRET_BYTES} bytes` });
        }
      })
      .prefault({}),
    load_balancing: upstreamGroup.optional(),
    services: z.record(serviceName, service).default({}),
    routes: z.array(route).default([]),
    middleware: z
      .object({
        auth: z
          .object({
            enabled: z.boolean().default(false),
            auth_type: z.literal('jwt').default('jwt'),
            /** Paths reachable without a token (exact, or a prefix when ending in "*"). /health is always public. */
            public_paths: z.array(z.string().startsWith('/')).default([]),
            // The four identity header names: a name with a space or another non-token character (accepted before)
            // made every authenticated request a 400 request_not_forwardable, the upstream request being unsendable.
            user_id_header: identityHeaderName.default('X-User-Id'),
            user_email_header: identityHeaderName.default('X-User-Email'),
            password_min_length: z.number().int().min(8).max(128).default(8),
            /** Optional composition rule, off by default (NIST SP 800-63B). */
            password_require_mixed: z.boolean().default(false),
            /** argon2id cost; OWASP's recommended minimum by default. */
            argon2: z
              .object({
                memory_kib: z.number().int().min(1024).default(19_456),
                iterations: z.number().int().min(1).default(2),
                parallelism: z.number().int().min(1).default(1),
                /** Logins waiting for a hashing slot; beyond this, 503 with Retry-After instead of an unbounded queue. */
                queue_limit: z.number().int().min(1).max(100_000).default(256),
                /**
                 * The longest a login, registration or password change may wait for its hash, queue included, before
                 * 503 with Retry-After: a saturated host starves the nice-19 hashing process first.
                 */
                timeout: positiveDuration.default(30_000),
              })
              .strict()
              .default({ memory_kib: 19_456, iterations: 2, parallelism: 1, queue_limit: 256, timeout: 30_000 }),
            /** When the revocation list cannot be read: deny (refuse the token) or allow. */
            on_store_error: z.enum(['allow', 'deny']).default('deny'),
            /** How often expired sessions are deleted. */
            session_cleanup_interval: positiveDuration.default(3_600_000),
            /**
             * How long a known API key's store record is used before the store is asked again (an unknown key's
             * answer: at most 30 s). A revocation reaches the gateway apart from it (the revocation store, the change
             * log); an expiry is checked against the cached record.
             */
            api_key_cache_ttl: positiveDuration
              .refine((ms) => ms <= API_KEY_CACHE_TTL_MAX_MS, 'must be at most 5m')
              .default(30_000),
            // Identity (issue 12): which credentials a protected route accepts, and the API-key caller's headers.
            /** Credentials accepted on protected paths: user access tokens (jwt) and API keys (api_key). */
            auth_methods: z.array(z.enum(['jwt', 'api_key'])).min(1).default(['jwt', 'api_key']),
            consumer_id_header: identityHeaderName.default('X-Consumer-Id'),
            consumer_name_header: identityHeaderName.default('X-Consumer-Name'),
          })
          .strict()
          .prefault({}),
        rate_limit: z
          .object({
            enabled: z.boolean().default(false),
            requests_per_minute: positiveInt.default(100),
            burst_size: positiveInt.default(10),
            /** When the bucket store (Redis) cannot be reached: allow the request, or deny it with 503. */
            on_store_error: z.enum(['allow', 'deny']).default('allow'),
            /** The stricter bucket for /auth/* (keyed by client address, and by email + address on login). */
            auth: authRateLimit.prefault({}),
            /** Named policies a route can choose with `rate_limit: <name>`; keyed like the default one. */
            policies: z.record(serviceName, rateLimitRule).default({}),
            /** IPv6 clients are keyed by this many leading bits of their address: one /64 is one client. */
            ipv6_prefix: z.number().int().min(1).max(128).default(64),
          })
          .strict()
          .refine(refillsInTime, REFILL_BOUND)
          .prefault({}),
        /** The default CORS policy of every route; unset: the gateway adds no CORS headers and answers no preflight. */
        cors: cors.optional(),
        // Plugins (src/plugins/): the instances run on every proxied request, in this order, and their hooks' time limit
        // (per request hook; not create() or close(), which have plugin_load_timeout).
        plugins: z.array(z.string().min(1)).default([]),
        plugin_timeout: positiveDuration.default(5_000),
        /**
         * How long each one-time step of a plugin may take: its module's import (start-up, check-config, reload; a
         * module whose top-level await never settles is a config error after it), an instance's create() (a config
         * error after it) and its close(). Apart from plugin_timeout, the per-hook budget, which may be far shorter
         * than a cold import, a connection a create() opens or a buffer a close() flushes on a busy machine.
         */
        plugin_load_timeout: positiveDuration.default(30_000),
      })
      .strict()
      .prefault({}),
    // Plugins (src/plugins/): declared instances; `module` is a path relative to the config file, or a package name.
    plugins: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, 'must be letters, digits, "-" or "_"'),
            module: z.string().min(1),
            config: z.unknown().optional(),
          })
          .strict(),
      )
      .default([]),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** auto: readable on a terminal, JSON otherwise. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
        /** The per-request events (Request Start, Select Upstream, Request Completed), like nginx's access_log. */
        access_log: z.boolean().default(true),
        /** Empty: the access events go to stdout with every other line. Else this file (JSON lines), reopened on SIGUSR1. */
        access_log_file: z.string().default(''),
        /** events: the seed's three lines per request; single: one line per request holding all their fields. */
        access_log_format: z.enum(['events', 'single']).default('events'),
      })
      .strict()
      .prefault({}),
    tracing: z
      .object({
        /** OTLP/HTTP traces URL, /v1/traces included. Empty: tracing off (nothing loaded, nothing generated). */
        otlp_endpoint: z
          .string()
          .default('')
          .refine((url) => url === '' || isHttpUrl(url), 'must be an http:// or https:// URL')
          // Port 0 is no collector's: every export failed, and the spans were dropped, after an ok check and start.
          .refine((url) => url === '' || !isHttpUrl(url) || new URL(url).port !== '0', "names port 0, where no collector listens (write the collector's port, or none for the scheme's)"),
        /** Share of new traces recorded (0 to 1); a continued trace follows its caller's sampling decision. */
        sample_ratio: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(1),
        /** Continue a valid incoming traceparent; false: every request starts its own trace. */
        trust_incoming: z.boolean().default(true),
        /** Response header carrying the trace id; empty: none. */
        response_header: z
          .string()
          .default('')
          .refine((name) => name === '' || /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name), 'must be an HTTP header name'),
        /** service.name of the gateway's spans. */
        service_name: z.string().min(1).default('portcullis'),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        enabled: z.boolean().default(true),
        listen_host: listenHost('127.0.0.1'),
        listen_port: listenPort.default(9090),
        /** Bearer token every admin endpoint except /ready and the dashboard page requires; empty: none (loopback only). */
        token: adminToken.default(''),
      })
      .strict()
      // Off loopback, /reload and the users API would be open to anyone who can reach the port.
      .superRefine((admin, ctx) => {
        if (admin.enabled && admin.token === '' && !isLoopbackListenHost(admin.listen_host)) {
          ctx.addIssue({ code: 'custom', path: ['token'], message: 'is required when admin.listen_host is not a loopback address' });
        }
      })
      .prefault({}),
  })
  .strict();

/** The validated configuration, durations in milliseconds. */
export type Config = z.infer<typeof configSchema>;
export type ServiceConfig = z.infer<typeof service>;
export type UpstreamGroupConfig = z.infer<typeof upstreamGroup>;
export type UpstreamConfig = ServiceConfig['upstreams'][number];
export type StrategyName = ServiceConfig['strategy'];
export type RouteConfig = Config['routes'][number];
export type CorsConfig = z.infer<typeof cors>;
export type HeaderRewriteConfig = z.infer<typeof headerRewrite>;
export type UpstreamTlsConfig = z.infer<typeof upstreamTls>;
export type ServerTlsConfig = Config['server']['tls'];
