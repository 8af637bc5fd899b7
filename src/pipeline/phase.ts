// The Phase interface: the optional hooks a feature implements to take part in a request's life.
import type { OutgoingHttpHeaders } from 'node:http';
import type { GatewayError } from '../errors.js';
import type { TunnelFacts } from '../observability/access-log.js';
import type { RequestContext } from './context.js';

/** What a request-filter hook did: let the request go on, or answer it itself (the driver then stops). */
export type Outcome = 'continue' | 'responded';

/** Headers sent upstream: lower-case names, as undici accepts them. */
export type UpstreamHeaders = Record<string, string | string[]>;

/**
 * A feature plugged into a route's pipeline (CORS, auth, rate limit, rewrites, plugins, metrics). Every hook is
 * optional; the composition root resolves each route's hook lists once at start-up (and on reload), so an absent
 * hook costs nothing per request.
 */
export interface Phase {
  /** For logs and the start-up summary. */
  readonly name: string;
  /**
   * Request filter: runs in order before an upstream is chosen. May answer the request (`reply.ts`) and return
   * 'responded', or throw a GatewayError that the driver turns into an error response.
   */
  onRequest?(ctx: RequestContext): Outcome | Promise<Outcome>;
  /**
   * Upstream request filter: runs per attempt, once a peer is chosen; edits the headers (and ctx.upstreamPath). May
   * answer the request itself and return 'responded' (a plugin's ctx.respond); a promise holds the dispatch.
   */
  onUpstreamRequest?(ctx: RequestContext, headers: UpstreamHeaders): void | Outcome | Promise<void | Outcome>;
  /**
   * Response filter: edits the headers of every response, proxied or answered by the gateway. A promise holds the
   * response headers (and pauses the upstream) until it settles. A GatewayError thrown or rejected replaces the
   * response with that error's reply (nothing has been sent yet); any other failure is only logged.
   */
  onResponse?(ctx: RequestContext, headers: OutgoingHttpHeaders): void | Promise<void>;
  /**
   * Error filter: runs before the gateway answers with an error. Returns 'responded' when it answered the error
   * its own way (a gRPC status, say); 'continue' lets the JSON error body go out.
   */
  onError?(ctx: RequestContext, error: GatewayError): Outcome;
  /** Logging: runs exactly once per request, when the response is finished or the connection closed. */
  onLogging?(ctx: RequestContext): void;
  /**
   * A WebSocket tunnel of this request closed (its onLogging ran at the 101): once per tunnel, never for a plain
   * request, so an observer of tunnels costs the HTTP requests nothing.
   */
  onTunnelClosed?(ctx: RequestContext, tunnel: TunnelFacts): void;
}
