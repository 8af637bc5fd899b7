// What the pipeline needs from the balancer: a peer to send to, and somewhere to report connection failures.
import type { Dispatcher } from 'undici';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';

/** One upstream as the proxy sees it. The balancer owns it; the driver keeps `inflight` up to date. */
export interface Peer {
  readonly name: string;
  /** host:port, as written in logs. */
  readonly label: string;
  /** The pooled keep-alive connections to this upstream. */
  readonly dispatcher: Dispatcher;
  /** Requests sent to this peer whose response has not finished. */
  inflight: number;
  /** Requests sent to this peer since start (for the dashboard and metrics). */
  requests: number;
}

/** The required phase: picks the peer for each attempt. */
export interface UpstreamSelector {
  /** A healthy peer other than `exclude` (the one that just failed), or undefined when there is none. */
  select(ctx: RequestContext, exclude: Peer | undefined): Peer | undefined;
  /** A connection failure or timeout with this peer: passive health check input. */
  reportFailure(peer: Peer, error: GatewayError): void;
}
