// Route conditions and a request's match input, read from the config and from a request context.
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import { isPreflight } from '../cors/policy.js';
import { connectionTokens, hopByHopForUpstream } from '../proxy/headers.js';
import type { OwnedHeaders } from '../proxy/owned-headers.js';
import { hostOf, normalisePrefix, pathKey, type MatchInput, type RouteConditions } from './conditions.js';

/**
 * A route's `match` block as matcher conditions (names already normalised by the schema; paths in the case routes
 * compare them, pathKey, so two routes whose paths differ only in case are the same conditions to the config check).
 */
export function conditionsOf(route: RouteConfig, authByDefault = false): RouteConditions {
  const m = route.match;
  const c: { -readonly [K in keyof RouteConditions]: RouteConditions[K] } = {};
  const auth = route.auth ?? (authByDefault ? 'required' : 'off');
  if (auth !== 'off') c.guard = auth === 'required' ? 2 : 1;
  if (m.hosts !== undefined) c.hosts = m.hosts;
  if (m.path !== undefined) c.path = pathKey(m.path);
  else c.pathPrefix = pathKey(normalisePrefix(m.path_prefix ?? '/'));
  if (m.methods !== undefined) c.methods = m.methods;
  if (m.headers !== undefined) c.headers = m.headers;
  return c;
}

/** One request as the matcher sees it. A class, so every input has one shape and `header` lives on the prototype. */
export class RequestMatchInput implements MatchInput {
  readonly host: string;
  readonly path: string;
  readonly method: string;
  readonly #headers: IncomingHttpHeaders;
  readonly #owned: OwnedHeaders | undefined;
  readonly #peerTrusted: boolean;
  /** The Connection header's tokens, read at the first header condition (null: not yet). */
  #tokens: string[] | undefined | null = null;

  /** True when this input matched a CORS preflight by the method it asks about (see the constructor). */
  readonly preflight: boolean;

  /**
   * A CORS preflight is matched with the method it asks about (Access-Control-Request-Method), so it finds the
   * route the real request will take, and that route's CORS policy answers it. `asPreflight: false` matches with
   * the real method: the table does that when the route found has no CORS phase, since the request would then be
   * forwarded as the OPTIONS it is, and must get the route an OPTIONS gets (its auth, limits and `methods`).
   */
  /**
   * `owned` and `peerTrusted`: header conditions see the request's headers as its upstream will, without those the
   * gateway drops from this client (OwnedHeaders.dropFromClient): a forwarding header (X-Forwarded-*, X-Real-IP,
   * Forwarded) from a peer that is no trusted proxy, or a header the gateway writes itself (identity, consumer), is
   * absent, as is a hop-by-hop one (hopByHopForUpstream: one the request's Connection header names). Routing runs before authentication, so such a copy is the client's word alone.
   */
  constructor(
    method: string | undefined,
    path: string,
    headers: IncomingHttpHeaders,
    asPreflight = true,
    owned?: OwnedHeaders,
    peerTrusted = false,
  ) {
    this.#owned = owned;
    this.#peerTrusted = peerTrusted;
    const asked = headers['access-control-request-method'];
    this.preflight = asPreflight && isPreflight(method, headers.origin, asked);
    this.method = this.preflight ? String(asked).toUpperCase() : (method ?? 'GET');
    this.path = path;
    // HTTP/2's :authority names the target (RFC 9113 §8.3.1); the driver refused a Host that disagrees with it.
    this.host = hostOf((headers[':authority'] as string | undefined) ?? headers.host);
    this.#headers = headers;
  }

  /**
   * A request header by lower-case name. `host` is the host the request names, as `hosts` compares it (the config
   * stores a `host` condition in the same form): the :authority over HTTP/2 (clients send no Host there), else Host,
   * in lower case without the port or one trailing dot, so every spelling of a host takes the route its condition
   * chooses, as every spelling of a path does.
   */
  header(name: string): string | undefined {
    if (this.#owned !== undefined && this.#owned.dropFromClient(name, this.#peerTrusted)) return undefined;
    if (this.#tokens === null) this.#tokens = connectionTokens(this.#headers.connection);
    if (hopByHopForUpstream(name, this.#tokens)) return undefined;
    if (name === 'host') return this.host === '' ? undefined : this.host;
    const value = this.#headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }
}
