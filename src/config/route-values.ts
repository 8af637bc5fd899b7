// Route and CORS values that parse but can never work, refused at load (check-config, start-up, reload) instead of
// leaving a route that silently protects or rewrites nothing. Each function gives the reason (the schema prefixes the
// key path) or undefined for a value that works.
//
// Why here and not in the schema's regexes: the rules are the gateway's own request checks (path-check.ts for
// targets, host-check.ts for authorities), reused so that config and requests can never disagree on what is canonical.
import { targetProblem } from '../pipeline/path-check.js';
import { authorityProblem } from '../pipeline/host-check.js';
import { METHODS } from 'node:http';
import { isIPv6 } from 'node:net';

/** The route path keys: an exact `path`, or a `path_prefix`. */
export type RoutePathKey = 'path' | 'path_prefix';

/** `/admin/*` → `/admin`, `/*` → `/`, else undefined: what a trailing "/*" most likely meant. */
function meantPrefix(value: string): string | undefined {
  if (!/^[^*]*\/\*+$/.test(value)) return undefined;
  return value.replace(/\/\*+$/, '') || '/';
}

/** Why a `*` in a route path never works: it is a literal character, so `/admin/*` matches only `/admin/*` itself. */
function wildcardProblem(value: string, key: RoutePathKey): string {
  const meant = meantPrefix(value);
  if (meant === undefined) return 'must not contain "*": there are no wildcards in route paths ("*" only matches itself)';
  return key === 'path_prefix'
    ? `must not contain "*": there are no wildcards, and path_prefix already matches everything under it: use ${meant}`
    : `must not contain "*": there are no wildcards, and path is one exact path: for everything under it use path_prefix: ${meant}`;
}

/**
 * Why a route's `path` or `path_prefix` can never match, or undefined. A route only ever sees canonical paths (the
 * gateway answers any other target 400 before routing, path-check.ts), never a query, and never expands `*`.
 */
export function routePathProblem(value: string, key: RoutePathKey): string | undefined {
  if (!value.startsWith('/')) return undefined; // the schema's startsWith rule reports it
  if (value.includes('*')) return wildcardProblem(value, key);
  if (value.includes('?')) return 'must not contain "?": routes match the path only, never the query';
  const problem = targetProblem(value);
  if (problem !== undefined) {
    return `is not a canonical path: ${problem}; the gateway refuses such request targets with 400 before routing, so this route could never match`;
  }
  return undefined;
}

/**
 * Why a route's `add_prefix` would break every request it rewrites, or undefined. The rewritten target must still be
 * canonical (the gateway forwards nothing else), and a `?` would make the rest of the path part of a query.
 */
export function addPrefixProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return undefined; // the schema's startsWith rule reports it
  if (value.includes('?')) return 'must not contain "?": the request path is appended to it, so it would become part of a query';
  const problem = targetProblem(value);
  if (problem !== undefined) return `is not a canonical path: ${problem}; the gateway never forwards a non-canonical target, so every request would fail`;
  return undefined;
}

/** Methods the gateway answers 405 before routing (pipeline/protocol-check.ts): no forward proxy, no TRACE echo. */
const REFUSED_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE']);

/** Methods node's parsers know (HTTP/1 and, as the driver checks, HTTP/2): any other request is answered 501. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

/**
 * Why a route's `methods` entry (upper case) can never be matched, if it cannot: a route listing TRACE or FOO loaded,
 * while every such request got 405 or 501 before routing, with nothing saying why the route never served them.
 */
export function routeMethodProblem(method: string): string | undefined {
  if (REFUSED_METHODS.has(method)) return `${method} never reaches a route: the gateway answers it 405 before routing`;
  if (!KNOWN_METHODS.has(method)) return `${method} is not a method the gateway forwards (it answers 501 to it): see http.METHODS of Node.js`;
  return undefined;
}

/** The route `host` keywords; any other value is a literal Host. */
const HOST_KEYWORDS = ['preserve', 'upstream'] as const;

/** Why a route's `host` is neither keyword nor an authority a backend reads as one host, or undefined. */
export function routeHostProblem(value: string): string | undefined {
  if ((HOST_KEYWORDS as readonly string[]).includes(value)) return undefined;
  // "Preserve" would otherwise be sent as a literal Host: almost certainly not what was meant.
  const keyword = HOST_KEYWORDS.find((k) => k === value.toLowerCase());
  if (keyword !== undefined) return `must be "${keyword}" in lower case (any other spelling is sent as a literal Host)`;
  const problem = value === '' ? 'empty host' : authorityProblem(value);
  if (problem === undefined) return undefined;
  return `must be preserve, upstream, or a literal host[:port] (a name, dotted-quad IPv4 or [IPv6]): ${problem}`;
}

/** A host name of a `match.hosts` entry: letters, digits, "_" and "-" inside labels (the form the schema always took). */
const MATCH_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/i;

/** The last label of a name is a number, decimal or hex, as the WHATWG URL host parser tells IPv4 from a name. */
const ENDS_IN_A_NUMBER = /(^|\.)(\d+|0x[0-9a-f]*)$/i;

const MATCH_HOST_FORM = 'must be a host name, "*." followed by one, a dotted-quad IPv4 address or a bracketed IPv6 address like [::1]';

/**
 * Why a `match.hosts` entry can never equal a request's host, or undefined. A request's host is its Host (or
 * :authority) without the port, in lower case, one trailing dot dropped (conditions.ts hostOf), after the Host check
 * (pipeline/host-check.ts) let it through: so a trailing dot in the entry is the same name (`api.example.com.` is the
 * fully qualified spelling clients may send), a bracketed IPv6 literal is a host like any other, and what that check
 * refuses (`127.1`, `[0:0::1]`) or a port the matcher never sees could never match.
 */
export function matchHostProblem(value: string): string | undefined {
  if (value.startsWith('[')) return matchIpv6Problem(value);
  const colon = value.indexOf(':');
  if (colon !== -1) return /^\d*$/.test(value.slice(colon + 1)) ? `${MATCH_HOST_FORM}, without a port (routes match the host in any port)` : MATCH_HOST_FORM;
  const wildcard = value.startsWith('*.');
  const name = withoutTrailingDot(wildcard ? value.slice(2) : value);
  if (!MATCH_NAME.test(name)) return MATCH_HOST_FORM;
  // A wildcard's suffix is no host of its own, but it names a domain: one ending in a number (`*.0.0.1`) is an IPv4
  // address's tail (URL parsers read a host whose last label is a number as IPv4), and matched every address ending
  // so. An exact name must be one the request check lets through.
  if (wildcard && ENDS_IN_A_NUMBER.test(name)) return `${MATCH_HOST_FORM}: "*." must be followed by a domain name, and one ending in a number is an IPv4 address's tail (list the addresses themselves)`;
  const problem = wildcard ? undefined : authorityProblem(name);
  if (problem !== undefined) return `${MATCH_HOST_FORM}: ${problem}, which the gateway refuses with 400 before routing, so this could never match`;
  return undefined;
}

/**
 * Why a `match.headers.host` value can never hold, or undefined: it names one host as a `match.hosts` entry does
 * (and is compared as one: conditions.ts hostOf), so no wildcard, which only `hosts` reads as one.
 */
export function hostConditionProblem(value: string): string | undefined {
  if (value.startsWith('*.')) return 'names one host: for "*." and a domain use match.hosts, which reads it as a wildcard';
  const problem = matchHostProblem(value);
  return problem === undefined ? undefined : `${problem} (a host condition is compared as a host; match.hosts does the same)`;
}

/** A bracketed IPv6 `match.hosts` entry: the one spelling requests may carry, with no port. */
function matchIpv6Problem(value: string): string | undefined {
  const close = value.indexOf(']');
  if (close !== -1 && close < value.length - 1) {
    return value.charCodeAt(close + 1) === 0x3a ? `${MATCH_HOST_FORM}, without a port (routes match the host in any port)` : MATCH_HOST_FORM;
  }
  const problem = authorityProblem(value);
  if (problem === undefined) return undefined;
  const inner = value.slice(1, close === -1 ? undefined : close);
  // A valid address in another spelling: name the one requests carry (the form URL parsers produce, RFC 5952).
  if (close !== -1 && isIPv6(inner) && !inner.includes('%')) {
    return `${problem}: write ${new URL(`http://[${inner}]/`).hostname} (the gateway refuses any other spelling with 400 before routing)`;
  }
  return `${MATCH_HOST_FORM}: ${problem}`;
}

function withoutTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * A `match.hosts` entry (one matchHostProblem accepts) as the matcher compares it with a request's host: lower case,
 * without its trailing dot (hostOf drops the request's), so `API.example.com.` and `api.example.com` are one host.
 */
export function matchHostKey(value: string): string {
  return withoutTrailingDot(value.toLowerCase());
}

/**
 * `health_check.host`: empty, or a literal host[:port] by the request checks' rules. A backend serving several names
 * is judged by the name its probe sends, so the value must be one a request could carry.
 */
export function probeHostProblem(value: string): string | undefined {
  if (value === '') return undefined;
  const problem = authorityProblem(value);
  if (problem === undefined) return undefined;
  return `must be empty (the service's tls.servername, else the upstream's address:port) or a host[:port] (a name, dotted-quad IPv4 or [IPv6]): ${problem}`;
}

/** The port browsers leave out of an origin's serialization, by scheme. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

const ORIGIN_FORM = 'an origin: a scheme and ://, a host, an optional port, nothing after (like https://app.example.com)';

/**
 * Why a CORS `allowed_origins` entry can never equal a browser's Origin header, or undefined. `entry` is already in
 * lower case (scheme and host compare case-insensitively; the schema lower-cases them). Browsers serialize an origin
 * as scheme "://" host, then ":" port unless it is the scheme's default: no path, no trailing slash, no wildcard.
 */
export function originProblem(entry: string): string | undefined {
  if (entry === '*') return undefined;
  if (entry.includes('*')) return 'must not contain a wildcard: origins compare exactly, so list each origin (or use "*" alone)';
  if (entry === 'null') return 'must not be "null": sandboxed and file: documents send it, so it would trust any of them';
  // Any scheme (RFC 3986): webviews and extensions send capacitor://localhost, tauri://localhost,
  // chrome-extension://<id> and the like, and compare as exactly as http(s) origins.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(entry)?.[1];
  if (scheme === undefined) return `must be "*" or ${ORIGIN_FORM}`;
  const rest = entry.slice(scheme.length + 3);
  const end = rest.search(/[/?#]/);
  if (end !== -1) return `must be an origin, with no path or trailing slash: use ${scheme}://${rest.slice(0, end)}`;
  if (rest === '') return `must be ${ORIGIN_FORM}: no host after ${scheme}://`;
  const problem = authorityProblem(rest);
  if (problem !== undefined) return `must be an origin whose host is a name, dotted-quad IPv4 or [IPv6] with an optional port: ${problem}`;
  return originPortProblem(scheme, rest);
}

/** Why the port of an origin's authority (already checked by authorityProblem) is not the form browsers send. */
function originPortProblem(scheme: string, authority: string): string | undefined {
  const hostEnd = authority.startsWith('[') ? authority.indexOf(']') + 1 : authority.indexOf(':');
  if (hostEnd === -1 || hostEnd === authority.length) return undefined;
  const port = authority.slice(hostEnd + 1);
  const host = authority.slice(0, hostEnd);
  if (port === '') return `must be an origin without an empty port: use ${scheme}://${host}`;
  if (port.length > 1 && port.startsWith('0')) return 'must be an origin whose port has no leading zero (browsers never send one)';
  if (DEFAULT_PORTS[scheme] === port) return `must be an origin without its default port (browsers leave it out): use ${scheme}://${host}`;
  return undefined;
}

/**
 * Why a header value a route matches on (`match.headers`) is one no request can carry, or undefined. Node hands the
 * router a value without the blanks at its ends (HTTP strips them), with no control character but tab (CR, LF and
 * NUL cannot be sent), each byte read as one Latin-1 character: a value outside that was compared and never equal.
 * The value is never quoted (a header to match may be a shared secret).
 */
export function matchHeaderValueProblem(value: string): string | undefined {
  const never = 'so this route could never match';
  if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
    return `has a character a request header cannot carry (a control character, or one beyond Latin-1), ${never}`;
  }
  if (/^[ \t]|[ \t]$/.test(value)) return `starts or ends with a blank, which HTTP strips from a header's value, ${never}`;
  return undefined;
}
