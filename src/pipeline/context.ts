// RequestContext: made once when a request arrives, handed to every phase, dropped when the response is done.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';
import { classifyPath, type RouteClass } from './route.js';
import type { Peer } from './upstream.js';
import { normalizeAddress, type TrustedProxies } from './client-address.js';
import type { OutgoingHttpHeaders } from 'node:http';

/** Adds the gateway's headers and runs every response-filter hook; provided by the driver, shared by all requests. */
export type ResponseDecorator = (ctx: RequestContext, headers: OutgoingHttpHeaders) => void;

/** The caller, once a valid access token has been verified. */
export interface AuthenticatedUser {
  readonly id: string;
  readonly email: string;
  /** Token id (for revocation) and expiry (ms since epoch). */
  readonly tokenId: string;
  readonly tokenExpiresAt: number;
}

/** What the rate limiter decided, for the RateLimit-* response headers. */
export interface RateLimitState {
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
  /** The policy in RateLimit-Policy form, e.g. "10;w=6". */
  readonly policy: string;
}

/**
 * Everything the gateway knows about one request. A class (not an object literal) so every context has the same
 * shape; nothing per-request lives anywhere else.
 */
export class RequestContext {
  /** UUID v4, sent upstream and back to the client as X-Request-ID. */
  readonly id: string = randomUUID();
  /** performance.now() at arrival; X-Response-Time and the duration in logs are measured from it. */
  readonly startedAt: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path without the query string. */
  readonly path: string;
  readonly routeClass: RouteClass;
  /** The socket peer, normalized (IPv4-mapped IPv6 stripped). */
  readonly peerAddress: string;
  /** True when the peer is a configured trusted proxy (its X-Forwarded-* headers are believed). */
  readonly peerTrusted: boolean;
  /** The client's address: the peer, or X-Forwarded-For's client when the peer is a trusted proxy. */
  readonly clientAddress: string;
  /** True for an Upgrade (WebSocket) request. */
  readonly upgrade: boolean;
  /** For an upgrade: bytes the client sent after its request head, to be passed on once joined. */
  upgradeHead: Buffer | undefined = undefined;

  user: AuthenticatedUser | undefined = undefined;
  rateLimit: RateLimitState | undefined = undefined;
  /** The peer of the current (last) attempt. */
  peer: Peer | undefined = undefined;
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

  /** The driver's response filter; reply.ts and the proxy call it just before writing response headers. */
  readonly decorate: ResponseDecorator;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    trusted: TrustedProxies,
    decorate: ResponseDecorator,
    startedAt: number,
    upgrade: boolean,
  ) {
    this.req = req;
    this.decorate = decorate;
    this.res = res;
    this.startedAt = startedAt;
    this.upgrade = upgrade;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q === -1 ? url : url.slice(0, q);
    this.routeClass = classifyPath(this.path);
    this.peerAddress = normalizeAddress(req.socket.remoteAddress ?? '');
    this.peerTrusted = trusted.has(this.peerAddress);
    const xff = this.peerTrusted ? req.headers['x-forwarded-for'] : undefined;
    this.clientAddress = xff === undefined ? this.peerAddress : trusted.clientAddress(this.peerAddress, Array.isArray(xff) ? xff.join(',') : xff);
  }
}
