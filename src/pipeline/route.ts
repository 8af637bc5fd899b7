// A route as the driver runs it: its hook lists, resolved once, and where its requests go. The driver knows
// nothing else about routes: the composition root builds them and the route table picks one per request.
import type { RequestContext } from './context.js';
import type { Phase } from './phase.js';
import type { UpstreamSelector } from './upstream.js';

/** A phase known to have hook K (the phase object itself, so hooks run with their own `this`). */
export type Hook<K extends keyof Phase> = Required<Pick<Phase, K | 'name'>>;

/** Per-request upstream timeouts a route may set (undefined: the service's pool settings). */
export interface RouteTimeouts {
  readonly responseMs?: number;
  readonly bodyMs?: number;
  /** Longest silence of a WebSocket tunnel (server.timeouts.tunnel_idle, or the route's); 0 or undefined: none. */
  readonly tunnelIdleMs?: number;
}

/** A compiled route: everything the driver needs, frozen at start-up or reload. */
export interface Route {
  /** The route's name in logs and metrics ("health", "auth", "proxy" for the gateway's own). */
  readonly name: string;
  readonly requestFilters: readonly Hook<'onRequest'>[];
  readonly upstreamFilters: readonly Hook<'onUpstreamRequest'>[];
  readonly responseFilters: readonly Hook<'onResponse'>[];
  readonly errorFilters: readonly Hook<'onError'>[];
  readonly loggers: readonly Hook<'onLogging'>[];
  /** Observers of closed WebSocket tunnels (metrics). */
  readonly tunnelObservers: readonly Hook<'onTunnelClosed'>[];
  /** Where requests that pass every filter go; undefined for routes the gateway answers itself. */
  readonly upstream: UpstreamSelector | undefined;
  readonly timeouts: RouteTimeouts | undefined;
  /** Free-form facts for the admin status and the `routes` command (service names, auth mode, …). */
  readonly info: Readonly<Record<string, unknown>>;
}

/** Picks the route of each request. Swapped whole on reload: a request keeps the route it matched. */
export interface RouteTable {
  /** The route for this request; a table answers unmatched requests through a route of its own (404). */
  match(ctx: RequestContext): Route;
  /** The route of requests refused before matching (a malformed path): response filters and loggers only. */
  readonly fallback: Route;
}

/** What a route is made of, before its hooks are resolved. */
export interface RouteSpec {
  readonly name: string;
  /** In the order of the request's steps; each phase's hooks run in this order. */
  readonly phases: readonly Phase[];
  readonly upstream?: UpstreamSelector;
  readonly timeouts?: RouteTimeouts;
  readonly info?: Readonly<Record<string, unknown>>;
}

/** Resolves a route's hook lists once, so the per-request loops never test for a missing method. */
export function compileRoute(spec: RouteSpec): Route {
  const only = <K extends keyof Phase>(key: K) => spec.phases.filter((p) => typeof p[key] === 'function') as unknown as Hook<K>[];
  return {
    name: spec.name,
    requestFilters: only('onRequest'),
    upstreamFilters: only('onUpstreamRequest'),
    responseFilters: only('onResponse'),
    errorFilters: only('onError'),
    loggers: only('onLogging'),
    tunnelObservers: only('onTunnelClosed'),
    upstream: spec.upstream,
    timeouts: spec.timeouts,
    info: spec.info ?? {},
  };
}
