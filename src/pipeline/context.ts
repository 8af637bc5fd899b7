// RequestContext: made once when a request arrives, handed to every phase, dropped when the response is done.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { GatewayError } from '../errors.js';
import type { Peer } from './upstream.js';
import type { Route } from './route.js';
import { normalizeAddress, type TrustedProxies } from './client-address.js';
import { tlsVersionOf } from '../observability/access-log.js';
import { needsShownPath, shownPath } from './shown-path.js';

/**
 * Adds the gateway's headers and runs every response-filter hook; provided by the driver, shared by all requests.
 * A promise (an async hook) means: write the headers once it resolves; a throw or rejection: answer that error.
 */
export type ResponseDecorator = ((ctx: RequestContext, headers: OutgoingHttpHeaders) => void | Promise<void>) & {
  /** True once the gateway is stopping: an answer written later than its filter ran says Connection: close too. */
  readonly closing?: () => boolean;
};

/** A running upstream attempt, as far as the driver needs to stop it when the client leaves. */
export interface RunningAttempt {
  abort(): void;
}

/**
 * Everything the engine knows about one request. A class (not an object literal) so every context has the same
 * shape. Features keep their own per-request state in `slots` through a ContextSlot, never in fields declared here.
 */
export class RequestContext {
  /** UUID v4, sent upstream and back to the client as X-Request-ID. */
  readonly id: string = randomUUID();
  /** performance.now() at arrival; X-Response-Time and the duration in logs are measured from it. */
  readonly startedAt: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /**
   * Path without the query string, as the client sent it (the driver refuses non-canonical paths first); a target
   * it refuses loses its fragment and any userinfo here (shown-path.ts), so no log line or span holds them.
   */
  readonly path: string;
  /** The query string with its "?", or "". */
  readonly query: string;
  /** The socket peer in canonical form (client-address.ts: IPv4-mapped IPv6 as IPv4, IPv6 as RFC 5952 text). */
  readonly peerAddress: string;
  /** True when the peer is a configured trusted proxy (its X-Forwarded-* headers are believed). */
  readonly peerTrusted: boolean;
  /**
   * The client's address, canonical: the peer, or, when the peer is a trusted proxy, the client its X-Forwarded-For,
   * Forwarded (for=) or X-Real-IP names (client-address.ts).
   */
  readonly clientAddress: string;
  /** True for an Upgrade (WebSocket) request. */
  readonly upgrade: boolean;
  /** True when the client connected over TLS (X-Forwarded-Proto https, HSTS). */
  readonly secure: boolean;
  /** The TLS version ("TLSv1.3") for the access log, read now: the connection may be gone when the log is written. */
  readonly tlsVersion: string | undefined;
  /** For an upgrade: bytes the client sent after its request head, to be passed on once joined. */
  upgradeHead: Buffer | undefined = undefined;
  /** Per-feature state, read and written only through ContextSlot instances. */
  readonly slots: unknown[] = [];

  /** The route this request runs on: the table's fallback until a route has matched. */
  route: Route;
  /** Path and query sent upstream; a route's rewrite may change it (default: as received). */
  upstreamPath: string;
  /** The request body sent upstream, when a phase replaced the client's stream (a size limit); else the request. */
  upstreamBody: Readable | undefined = undefined;
  /** The service of the current (last) attempt's peer, for logs and metrics. */
  service: string | undefined = undefined;
  /** The peer of the current (last) attempt. */
  peer: Peer | undefined = undefined;
  /** The attempt in progress, so a client that leaves can stop it (whether or not undici has started it). */
  attempt: RunningAttempt | undefined = undefined;
  /** Attempts made upstream (1 + retries). */
  attempts = 0;
  /** Status sent to the client (0 until headers are sent). */
  status = 0;
  /** Milliseconds from sending upstream to receiving the upstream's response headers (last attempt). */
  upstreamMs = -1;
  /** The failure behind a gateway-made error response, for logs and metrics. */
  error: GatewayError | undefined = undefined;
  /** Milliseconds from arrival to the end of the response; set by the driver just before the logging phase. */
  durationMs = -1;
  /** Set once the logging phase has run, so it never runs twice. */
  logged = false;
  /** The requests of the route table this one started on, which it leaves when it is logged (run.ts, a reload's drain). */
  epoch: { leave(): void } | undefined = undefined;

  /** The driver's response filter; reply.ts and the proxy call it just before writing response headers. */
  readonly decorate: ResponseDecorator;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    trusted: TrustedProxies,
    decorate: ResponseDecorator,
    startedAt: number,
    upgrade: boolean,
    fallback: Route,
  ) {
    this.req = req;
    this.decorate = decorate;
    this.res = res;
    this.startedAt = startedAt;
    this.upgrade = upgrade;
    this.route = fallback;
    const url = req.url ?? '/';
    this.upstreamPath = url;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // A target the driver will refuse may carry a password or a token: the logs and spans never see those.
    this.path = needsShownPath(path) ? shownPath(path) : path;
    this.query = q === -1 ? '' : url.slice(q);
    this.peerAddress = normalizeAddress(req.socket?.remoteAddress ?? '');
    this.secure = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    this.tlsVersion = this.secure ? tlsVersionOf(req) : undefined;
    this.peerTrusted = trusted.has(this.peerAddress);
    // An untrusted peer's forwarding headers are never read: the client could write anything there.
    this.clientAddress = this.peerTrusted ? trusted.clientAddress(this.peerAddress, req.headers) : this.peerAddress;
  }
}
