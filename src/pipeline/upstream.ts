// What the pipeline needs from upstream selection: a peer for each attempt, and the group that owns it, which
// counts its in-flight requests and hears about its failures. The driver never touches balancer state itself.
import type { Dispatcher } from 'undici';
import type { GatewayError } from '../errors.js';
import type { UpstreamTransport } from '../proxy/upstream-tls.js';
import type { RequestContext } from './context.js';

/** One upstream as the proxy sees it. */
export interface Peer {
  readonly name: string;
  /** host:port, as written in logs. */
  readonly label: string;
  /** The pooled keep-alive connections to this upstream. */
  readonly dispatcher: Dispatcher;
  /** Where a WebSocket handshake goes: `dispatcher`, or an HTTP/1.1 pool to the same upstream for an HTTP/2 group. */
  readonly upgradeDispatcher: Dispatcher;
  /** The configured address (a name or an IP): with `transport`, the TLS name every dispatch carries. */
  readonly address: string;
  /** The group's TLS and HTTP/2 settings. */
  readonly transport: UpstreamTransport;
  /** The service's `upstream_response` in ms (0: none), the bound of a response head when the route sets none. */
  readonly responseTimeoutMs: number;
  /** The service this peer belongs to. */
  readonly group: PeerGroup;
}

/** A service as the driver sees it: how often to retry, and where acquired peers go back. */
export interface PeerGroup {
  readonly name: string;
  /** Extra attempts after a retryable failure. */
  readonly retries: number;
  /** The attempt on `peer` has ended (whatever happened): no longer in flight. */
  release(peer: Peer): void;
  /**
   * The attempt on `peer` ended before anything was sent (an upstream-request hook answered, threw or timed out):
   * no longer in flight, and no request of the upstream's either.
   */
  withdraw(peer: Peer): void;
  /** A failure of the upstream itself (connection failure or timeout): passive health check input. */
  reportFailure(peer: Peer, error: GatewayError): void;
}

/** Upstream selection for a route: one service, or a weighted split over several. */
export interface UpstreamSelector {
  /**
   * A healthy peer other than `exclude` (the one that just failed), already counted in flight; undefined when there
   * is none. A retry passes the failed peer, and stays within that peer's service.
   */
  acquire(ctx: RequestContext, exclude: Peer | undefined): Peer | undefined;
  /**
   * A retry on `peer` again (it failed without blame and no other upstream can take the request; balancer/tried.ts
   * allowAgain has made it eligible): a peer of its own service. Without it, `acquire(ctx, undefined)`, a new request's
   * pick, which is the same for a single service.
   */
  acquireAgain?(ctx: RequestContext, peer: Peer): Peer | undefined;
}
