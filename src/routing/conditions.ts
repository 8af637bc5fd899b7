// What a route asks of a request, and how one request is seen by the matcher. Pure data, no HTTP objects.

/** A route's match conditions, normalised at compile time (lower-case hosts and header names, upper-case methods). */
export interface RouteConditions {
  /** Exact names, or "*.example.com" (any name ending in ".example.com", never example.com itself). */
  readonly hosts?: readonly string[];
  /** Exact path; compared ASCII case-insensitively (pathKey). */
  readonly path?: string;
  /** Prefix on segment boundaries ("/users" matches /users and /users/1, never /usersx); case as for `path`. */
  readonly pathPrefix?: string;
  /** Upper-case methods; GET also takes HEAD (see methodMatches). */
  readonly methods?: readonly string[];
  /** Exact values by lower-case header name. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * How much the route guards what it takes (its auth: 2 required, 1 optional, 0 off; absent 0). An exact path
   * takes its trailing-slash twin only from a route that guards it no more (see the matcher's HostBucket.match).
   */
  readonly guard?: number;
}

/** The parts of a request the matcher reads. `host` is lower case without a port; `path` is canonical, no query. */
export interface MatchInput {
  readonly host: string;
  readonly path: string;
  readonly method: string;
  /** A request header by lower-case name (several values joined with ", "), or undefined. */
  header(name: string): string | undefined;
}

/** The host part of a Host header or :authority: lower case, without the port (IPv6 literals keep their brackets). */
export function hostOf(authority: string | undefined): string {
  if (authority === undefined || authority === '') return '';
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end === -1 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1); // "example.com." is the same name
  return host.toLowerCase();
}

/**
 * Escapes of the characters a canonical path may also hold raw: the sub-delimiters but ";" and ":" and "@" (RFC 3986
 * pchar). Any other escape has one spelling only: the path check (pipeline/path-check.ts) refuses an escaped
 * unreserved character, "/", a backslash, "%" or ";", and the raw form of the rest (space, non-ASCII, ...). Upper-case hex
 * only, as that check requires.
 */
const TWO_SPELLINGS = /%(2[146789ABC]|3[AD]|40)/g;

function decodeEscape(_match: string, hex: string): string {
  return String.fromCharCode(parseInt(hex, 16));
}

/**
 * A path as routes compare it, so that the spellings a backend reads as one path take one route:
 * - ASCII letters in lower case: Express (by default), ASP.NET Core and IIS serve /Admin as /admin, so a route that
 *   compared case-sensitively let /Admin/x past the route protecting /admin (to a catch-all with auth off, say) and
 *   still reach the protected handler. A canonical path holds ASCII only, so this folds the hex of escapes too;
 * - the escapes of ":", "@" and the sub-delimiters decoded: Spring, Tomcat, Jetty, nginx, Go's ServeMux, Django and
 *   Flask decode them before routing, so /v1/things%3Apurge is /v1/things:purge to them. None decodes to "/".
 * Applied to both sides of every comparison (route paths at compile time, request paths per match).
 */
export function pathKey(path: string): string {
  // Most paths are already their key (lower case, no escape): one scan, no new string.
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || (c >= 0x41 && c <= 0x5a)) return path.replace(TWO_SPELLINGS, decodeEscape).toLowerCase();
  }
  return path;
}

/** A path prefix without its trailing slash ("/users/" → "/users"); "/" stays "/". */
export function normalisePrefix(prefix: string): string {
  let p = prefix;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** True when `path` starts with `prefix` on a segment boundary, in any case (pathKey). `prefix` is normalised. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  // Both in key form: a decoded escape is shorter than its spelling, so the boundary is found in the key, never at
  // the prefix's length in the path as sent ("/users/%40me/x" is under "/users/@me"). No escape decodes to "/".
  const want = pathKey(prefix);
  const got = pathKey(path);
  return got.startsWith(want) && (got.length === want.length || got.charCodeAt(want.length) === 47); // '/'
}

/** True when `host` matches the pattern: an exact name, or "*.suffix" with at least one label before the suffix. */
export function hostMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host;
  const suffix = pattern.slice(1); // ".example.com"
  return host.length > suffix.length && host.endsWith(suffix);
}

/**
 * An exact `path` condition: the path itself, or the same path with or without one trailing slash ("/admin" and
 * "/admin/", whichever the route names), in any case (pathKey). "/" is only itself.
 */
export function exactPathMatches(path: string, requestPath: string): boolean {
  const want = pathKey(path);
  const got = pathKey(requestPath);
  return got === want || exactPathSlashed(want, got);
}

/**
 * True when `got` is `want` (both keys) with a trailing slash added, when `want` has none, or with its trailing slash
 * taken away.
 */
export function exactPathSlashed(want: string, got: string): boolean {
  if (want === '/' || got === '/') return false;
  if (!want.endsWith('/')) return got.length === want.length + 1 && got.endsWith('/') && got.startsWith(want);
  return want.length === got.length + 1 && want.startsWith(got);
}

/** How a `methods` condition takes a request's method: not at all, by name, or a HEAD through the route's GET. */
export type MethodMatch = 'no' | 'listed' | 'head-as-get';

/**
 * Whether `methods` takes `method`. HEAD is GET without the body (RFC 9110 §9.3.2) and backends answer it with their
 * GET handler, so a route that takes GET takes HEAD too (as nginx's limit_except does): else a HEAD fell through to
 * another route (a catch-all with auth off) and reached the GET handler past the GET route's auth and limits.
 */
export function methodMatch(methods: readonly string[], method: string): MethodMatch {
  if (methods.includes(method)) return 'listed';
  return method === 'HEAD' && methods.includes('GET') ? 'head-as-get' : 'no';
}

/**
 * True when a HEAD request reaches this route without the route naming HEAD (through its GET, or with no `methods`):
 * a route naming HEAD goes first, and the others keep file order among themselves, so a HEAD lands where its GET would.
 */
export function takesHeadAsGet(c: RouteConditions, method: string): boolean {
  return method === 'HEAD' && !(c.methods?.includes('HEAD') ?? false);
}
