// Pure header rewriting for the proxy: hop-by-hop removal (RFC 9110 §7.6.1) and the X-Forwarded-* set.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { UpstreamHeaders } from '../pipeline/phase.js';
import { DEFAULT_OWNED_HEADERS, type OwnedHeaders } from './owned-headers.js';

/**
 * Headers that describe one connection, never forwarded. `expect` is the gateway's to answer (100-continue: sent when
 * the request is dispatched, pipeline/expect-continue.ts) and undici refuses it; `host` is kept (the backend sees
 * the name the client asked for, as with Traefik).
 */
const REQUEST_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authorization',
  'http2-settings',
  'expect',
]);

const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([
  // HTTP2-Settings belongs to an HTTP/1.1 upgrade to h2c, and node's HTTP/2 responses refuse it.
  'http2-settings',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);

/** What the forwarded headers need to know about the request (a RequestContext has all of it). */
export interface ForwardingFacts {
  /** The request id, sent as X-Request-ID. */
  readonly id: string;
  /** The socket peer (normalized). */
  readonly peerAddress: string;
  /** True when the peer is a trusted proxy: its X-Forwarded-* headers are kept and extended. */
  readonly peerTrusted: boolean;
  /** True when the client connected over TLS: X-Forwarded-Proto https. */
  readonly secure: boolean;
}

/** The media-type prefixes of gRPC and gRPC-Web in any case (media types are case-insensitive, RFC 9110 §8.3.1). */
const GRPC_TYPE = /^application\/grpc/i;
const GRPC_WEB_TYPE = /^application\/grpc-web/i;

/**
 * True for a gRPC or gRPC-Web content type (application/grpc, +proto, ;params, application/grpc-web, -text...), in
 * any case: `Application/GRPC` is a gRPC call. Runs on every request (isGrpc): no content type, and a lower-case gRPC
 * one, are answered without the regex; any other type pays an anchored test that fails within a dozen characters
 * and allocates nothing.
 */
export function isGrpcContentType(type: unknown): type is string {
  return typeof type === 'string' && (type.startsWith('application/grpc') || GRPC_TYPE.test(type));
}

/** isGrpcContentType but not gRPC-Web (which carries its status in the body, not in trailers): native gRPC alone. */
export function isNativeGrpcContentType(type: unknown): boolean {
  return isGrpcContentType(type) && !type.startsWith('application/grpc-web') && !GRPC_WEB_TYPE.test(type);
}

/** True for a gRPC or gRPC-Web request (its content type, isGrpcContentType). */
export function isGrpc(incoming: IncomingHttpHeaders): boolean {
  return isGrpcContentType(incoming['content-type']);
}

/**
 * Named in a request's Connection header and sent upstream all the same (upstreamRequestHeaders): Host, put back from
 * the request, and the forwarding headers it reads from the request itself (a trusted proxy's, extended).
 */
const SENT_THOUGH_NAMED: ReadonlySet<string> = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/**
 * True when a request header never reaches the upstream, for hop-by-hop reasons: one of the fixed set, or a name the
 * request's own Connection header lists (RFC 9110 §7.6.1; `tokens`, from connectionTokens) that the gateway does not
 * send anyway. Route header conditions read the headers as the upstream will (routing/from-config.ts), so such a
 * header is absent to them: else a client could take a route by a header its upstream then never saw. `upgrade` and
 * `te` are kept, as they reach the upstream where they mean something (an upgrade's handshake, gRPC's `te: trailers`);
 * so is Host named in Connection, which a client used to skip a `host` condition's route (with its auth) while the
 * upstream still got the Host.
 */
export function hopByHopForUpstream(name: string, tokens: readonly string[] | undefined): boolean {
  if (name === 'upgrade' || name === 'te') return false;
  if (REQUEST_HOP_BY_HOP.has(name)) return true;
  return tokens !== undefined && tokens.includes(name) && !SENT_THOUGH_NAMED.has(name);
}

/** A request header never sent upstream whatever the request (the fixed hop-by-hop set but Upgrade and TE). */
export function neverForwarded(name: string): boolean {
  return hopByHopForUpstream(name, undefined);
}

/** Names listed in a Connection header (lower-case), which are hop-by-hop for this message only. */
export function connectionTokens(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  if (joined.indexOf(',') === -1) {
    const token = joined.trim().toLowerCase();
    return token === 'close' || token === 'keep-alive' || token === 'upgrade' ? undefined : [token];
  }
  return joined.split(',').map((t) => t.trim().toLowerCase());
}

/**
 * True when a TE value lists the `trailers` token, in any case (tokens are case-insensitive, RFC 9110 §10.1.4) and
 * anywhere in a list (`trailers, deflate;q=0.5`; node joins several TE lines with ", "). Only the other codings of
 * the list are the client's hop alone. The exact lower-case value, what gRPC clients send, is answered first.
 */
function namesTrailers(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  if (value === 'trailers') return true;
  const joined = Array.isArray(value) ? value.join(',') : value;
  for (const part of joined.split(',')) {
    const semi = part.indexOf(';');
    if ((semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

/** A forwarding header's value (its lines joined, as node joins them), or undefined when it has none or only blanks. */
function said(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(', ') : value;
  return joined.trim() === '' ? undefined : joined;
}

/**
 * The headers to send upstream: every end-to-end request header the gateway does not own (owned-headers.ts), then
 * X-Forwarded-For/-Proto/-Host and X-Request-ID. Forwarding headers (X-Forwarded-*, Forwarded, X-Real-IP,
 * X-Original-URL, X-Rewrite-URL) pass only from a trusted proxy, whose X-Forwarded-For chain is extended; from
 * anyone else they are removed or replaced, since a client can write whatever it likes there.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  facts: ForwardingFacts,
  owned: OwnedHeaders = DEFAULT_OWNED_HEADERS,
): UpstreamHeaders {
  const out: UpstreamHeaders = {};
  const dropped = connectionTokens(incoming.connection);
  const trusted = facts.peerTrusted;
  for (const name in incoming) {
    // HTTP/2 pseudo-headers (":method", ":authority"...) describe the request line; undici builds its own.
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (REQUEST_HOP_BY_HOP.has(name)) {
      // gRPC requires "TE: trailers" (the one TE value HTTP/2 allows) to reach the server; undici relays trailers.
      if (name === 'te' && namesTrailers(incoming.te) && isGrpc(incoming)) out.te = 'trailers';
      continue;
    }
    if (dropped !== undefined && dropped.includes(name)) continue;
    if (owned.dropFromClient(name, trusted)) continue;
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  // A trusted proxy's empty header names nothing: passed on, it read as an empty first hop (", 10.0.0.1"), an empty
  // scheme or host, where the gateway's own are known.
  const xff = trusted ? said(incoming['x-forwarded-for']) : undefined;
  out['x-forwarded-for'] = xff !== undefined ? `${xff}, ${facts.peerAddress}` : facts.peerAddress;
  const proto = trusted ? said(incoming['x-forwarded-proto']) : undefined;
  out['x-forwarded-proto'] = proto ?? (facts.secure ? 'https' : 'http');
  const fwdHost = trusted ? said(incoming['x-forwarded-host']) : undefined;
  // HTTP/2 carries the host as ":authority" (a client may still send Host: the driver refused one that disagrees).
  const host = (incoming[':authority'] as string | undefined) ?? incoming.host;
  if (out.host === undefined && host !== undefined) out.host = host;
  if (fwdHost !== undefined) out['x-forwarded-host'] = fwdHost;
  else if (host !== undefined) out['x-forwarded-host'] = host;
  else delete out['x-forwarded-host'];
  out['x-request-id'] = facts.id;
  return out;
}

/**
 * Fields never relayed as trailers. RFC 9110 §6.5.1: a trailer may not carry what has to be known before the
 * content, "message framing, routing, authentication, request modifiers, response controls, or content format", and
 * a recipient must not merge such a field into the header section; §6.5.2 leaves discarding it to the recipient.
 * Relayed, they did harm: a Content-Length trailer made node cut a complete chunked response, and Connection,
 * Keep-Alive or Transfer-Encoding reached the client as if they described its connection.
 */
const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  // hop-by-hop (RFC 9110 §7.6.1), and HTTP/2's connection-specific fields
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  // framing and content format
  'content-length', 'content-range', 'content-type', 'content-encoding',
  // routing
  'host', 'location',
  // authentication and state
  'authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'authentication-info',
  'proxy-authentication-info', 'cookie', 'set-cookie',
  // request modifiers
  'expect', 'max-forwards', 'range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range',
  // response controls (caching, redirection, retry)
  'age', 'cache-control', 'expires', 'pragma', 'date', 'vary', 'retry-after',
]);

/**
 * True for a field whose meaning HTTP fixes (framing, content format, routing, authentication and state, request
 * modifiers, response controls; the FORBIDDEN_TRAILERS list): a name the gateway must never fill with a value of
 * its own choosing, such as `tracing.response_header`'s trace id.
 */
export function isSemanticField(name: string): boolean {
  return FORBIDDEN_TRAILERS.has(name.toLowerCase());
}

/**
 * The trailers of an upstream response that may go on to the client (FORBIDDEN_TRAILERS and pseudo-headers left
 * out), or undefined when none may. undici 7 hands an HTTP/2 upstream's trailers to new-style handlers as an empty
 * object (its unwrap handler parses the h2 trailer object as if it were a raw header array), while the controller
 * keeps the original in `rawTrailers`: taken from there when the parsed set is empty. Runs only at the end of a
 * response, and copies only when it has trailers.
 */
export function upstreamTrailers(parsed: Readonly<Record<string, string | string[] | undefined>> | undefined, raw: unknown): Record<string, string | string[]> | undefined {
  let source: Readonly<Record<string, unknown>>;
  if (parsed !== undefined && Object.keys(parsed).length > 0) source = parsed;
  else if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) source = raw as Readonly<Record<string, unknown>>;
  else return undefined;
  const out: Record<string, string | string[]> = {};
  let any = false;
  for (const name of Object.keys(source)) {
    const value = source[name];
    if (name.startsWith(':') || FORBIDDEN_TRAILERS.has(name.toLowerCase()) || (typeof value !== 'string' && !Array.isArray(value))) continue;
    out[name] = value as string | string[];
    any = true;
  }
  return any ? out : undefined;
}

/**
 * Response headers that take one value over HTTP/2: those node's HTTP/2 layer sends once (its kSingleValueHeaders),
 * pseudo-headers and Content-Length (node frames it) left out. Given several, node throws when the head is written,
 * and when trailers are, inside a callback nothing can catch.
 */
export const HTTP2_SINGLE_VALUE: ReadonlySet<string> = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
  'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/**
 * Of those, the ones RFC 9110 defines as a list (`#` rule): every line counts, repeats included (`gzip` twice is two
 * codings to undo), so their lines are joined whole, as a recipient may join them (§5.3).
 */
export const HTTP2_LIST_VALUED: ReadonlySet<string> = new Set(['content-encoding', 'content-language', 'if-match', 'if-none-match']);

/**
 * An upstream response's headers (or trailers) made sendable to an HTTP/2 client: a single-value header the upstream
 * repeated (two X-Content-Type-Options, two ETags; HTTP/1.1 carries both lines) becomes one field, as a browser's
 * Headers.get() reads the lines over HTTP/1.1: a list's lines joined with ", ", another header's distinct values
 * joined the same way (the same value twice is once). Two different Locations are left as they came: joined they
 * would be one nonsense URL (browsers refuse such a response over HTTP/1.1), and node's refusal answers 502 instead.
 * Node refused every such repeat, which answered HTTP/2 clients 502 for a response HTTP/1.1 clients got whole. In
 * place: `headers` is the gateway's copy.
 */
export function joinRepeatedForHttp2(headers: OutgoingHttpHeaders): void {
  for (const name in headers) {
    const value = headers[name];
    if (!Array.isArray(value) || !HTTP2_SINGLE_VALUE.has(name)) continue;
    if (HTTP2_LIST_VALUED.has(name)) {
      headers[name] = value.join(', ');
      continue;
    }
    const distinct = [...new Set(value)];
    if (distinct.length === 1) headers[name] = distinct[0];
    else if (name !== 'location') headers[name] = distinct.join(', ');
  }
}

/** Trailers made sendable to an HTTP/2 client (joinRepeatedForHttp2), any repeat still left dropped. In place. */
export function sendableHttp2Trailers(trailers: Record<string, string | string[]>): void {
  joinRepeatedForHttp2(trailers);
  for (const name in trailers) if (Array.isArray(trailers[name]) && HTTP2_SINGLE_VALUE.has(name)) delete trailers[name];
}

/**
 * The headers of an upstream's 101 as the client gets them: end to end ones as for any response (the Connection
 * header's own list and the other hop-by-hop fields dropped, RFC 9110 §7.6.1), then the two a switch needs, made by
 * the gateway for its own connection with the client (RFC 9110 §7.8).
 */
export function upgradeResponseHeaders(upstream: Readonly<Record<string, string | string[] | undefined>>): OutgoingHttpHeaders {
  const out = responseHeaders(upstream);
  out.connection = 'Upgrade';
  const upgrade = upstream.upgrade;
  if (upgrade !== undefined) out.upgrade = typeof upgrade === 'string' ? upgrade : upgrade.join(', ');
  return out;
}

/**
 * The upstream response's headers without its hop-by-hop ones; node sets its own framing headers. Copies into a new
 * object instead of deleting: `delete` would turn the object into a slow dictionary for every later read.
 */
export function responseHeaders(upstream: Readonly<Record<string, string | string[] | undefined>>): OutgoingHttpHeaders {
  const dropped = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (RESPONSE_HOP_BY_HOP.has(name)) continue;
    if (dropped !== undefined && dropped.includes(name)) continue;
    out[name] = upstream[name];
  }
  return out;
}
