// Part of the composition root: builds the route table from the config, the features and the services. Each
// route's phase list follows the one order of steps every request takes (README, "Order of steps"):
// CORS → authentication → rate limit → plugins → body limit → upstream selection → rewrites → plugins → forward →
// response hooks → logging. The driver only runs the lists built here.
import type { Logger } from 'pino';
import type { Config, RouteConfig } from '../config/schema.js';
import { DEFAULT_SERVICE } from '../config/services.js';
import { GatewayError } from '../errors.js';
import { compileRoute, type Route, type RouteTable, type RouteTimeouts } from '../pipeline/route.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Phase } from '../pipeline/phase.js';
import type { UpstreamSelector } from '../pipeline/upstream.js';
import { sendError } from '../pipeline/reply.js';
import { RouteMatcher } from '../routing/matcher.js';
import { explainMatch } from '../routing/explain.js';
import { conditionsOf, RequestMatchInput } from '../routing/from-config.js';
import { hostModeOf } from '../routing/rewrite.js';
import { TRACE } from '../observability/tracing/types.js';
import { createRewritePhase } from '../routing/rewrite-phase.js';
import { createBodyLimitPhase } from '../routing/body-limit.js';
import { normalisePrefix, type RouteConditions } from '../routing/conditions.js';
import { compileCors, isPreflight } from '../cors/policy.js';
import { createCorsPhase, createCorsVaryPhase, declinePreflight, uncacheablePreflight } from '../cors/phase.js';
import type { ServiceRegistry } from '../balancer/registry.js';
import { SplitRotations, SplitSelector } from '../balancer/split.js';
import { healthRoute } from '../health-route.js';
import { authPathMethods, isAuthPath } from '../auth/paths.js';
import type { AuthMode } from '../auth/phase.js';
import type { Features } from '../features.js';
import { ownedHeadersOf } from '../config/route-checks.js';
import type { OwnedHeaders } from '../proxy/owned-headers.js';

/** How many routes' verdicts a `Route Not Found` debug line lists before it counts the rest. */
const LOGGED_VERDICTS = 20;

const HEALTH_PATH = '/health';
/** What the health route takes (health-route.ts). */
const HEALTH_METHODS: readonly string[] = ['GET', 'HEAD'];
const ROUTE_NOT_FOUND = new GatewayError('ROUTE_NOT_FOUND');

/** The name of unmatched requests in logs and metrics. */
export const NO_ROUTE_NAME = 'none';

/** The methods a browser sends without a preflight of their own (CORS-safelisted): a cached answer's headers cover them. */
const SAFELISTED_METHODS: readonly string[] = ['GET', 'HEAD', 'POST'];

/**
 * A method no route names (route methods are letters only): matched with it, a URL shows the route that takes every
 * method the routes do not name, if any.
 */
const UNNAMED_METHOD = 'UNNAMED-METHOD';

/**
 * A user route's CORS policy as a preflight's cacheability compares it: `key` is the same for two routes whose
 * policies are the same (the global one, or equal own ones).
 */
interface RouteCors {
  readonly key: string;
}

class GatewayRouteTable implements RouteTable {
  constructor(
    readonly health: Route,
    readonly auth: Route | undefined,
    /** The only user route when the config has no `routes` (the implicit catch-all): no matching needed. */
    readonly single: Route | undefined,
    readonly matcher: RouteMatcher<Route>,
    readonly notFound: Route,
    readonly fallback: Route,
    /** User routes in config order, for the admin status. */
    readonly routes: readonly Route[],
    /** The headers the gateway drops from a client: header conditions never read them (RequestMatchInput). */
    readonly owned: OwnedHeaders,
    /** Each user route's CORS policy (absent: `cors: off`), for the cacheability of its preflight answers. */
    readonly cors: ReadonlyMap<Route, RouteCors>,
    /**
     * The methods that between them reach every route a URL has: the safelisted ones, each method a route names,
     * and one it does not (UNNAMED_METHOD). Any other method lands where one of these does.
     */
    readonly probeMethods: readonly string[],
    /** The JWKS document is served (an asymmetric jwt.algorithm): a preflight for it may be approved. */
    readonly jwksServed: boolean,
  ) {}

  match(ctx: RequestContext): Route {
    const path = ctx.path;
    if (path === HEALTH_PATH) return this.#builtIn(ctx, this.health, HEALTH_METHODS);
    if (this.auth !== undefined && isAuthPath(path)) return this.#builtIn(ctx, this.auth, authPathMethods(path, this.jwksServed));
    if (this.single !== undefined) return this.single;
    const input = new RequestMatchInput(ctx.req.method, path, ctx.req.headers, true, this.owned, ctx.peerTrusted);
    const route = this.matcher.match(input);
    // A preflight found by the method it asks about is kept only where a CORS phase will answer it. Elsewhere it is
    // the plain OPTIONS it is: routed as one, and answered by no CORS policy (declinePreflight).
    if (input.preflight && route?.info.cors !== true) {
      declinePreflight(ctx);
      return this.matcher.match(new RequestMatchInput(ctx.req.method, path, ctx.req.headers, false, this.owned, ctx.peerTrusted)) ?? this.notFound;
    }
    if (input.preflight && route !== undefined && !this.#cacheable(ctx, route, input.method)) uncacheablePreflight(ctx);
    return route ?? this.notFound;
  }

  /**
   * One of the gateway's own routes. A preflight asking for a method the path does not take, or for a path the auth
   * API does not have, is declined: answered as the plain OPTIONS it is (405, 404) rather than approved by the global
   * policy for a request that could only fail.
   */
  #builtIn(ctx: RequestContext, route: Route, methods: readonly string[] | undefined): Route {
    const h = ctx.req.headers;
    const asked = h['access-control-request-method'];
    if (isPreflight(ctx.req.method, h.origin, asked) && !(methods?.includes(String(asked).toUpperCase()) ?? false)) declinePreflight(ctx);
    return route;
  }

  /**
   * May the browser cache this preflight's answer? Only when every route of this URL, whatever its method, has the
   * same CORS policy. The Fetch standard's preflight cache (Firefox keeps it so) holds one entry per method and one
   * per header name for an origin and URL, and each answer adds to them; a request skips its preflight when its
   * method (or a safelisted one) and each of its headers have an entry, whichever answer made it. So two cacheable
   * answers of two policies on one URL merge: a route's method with the headers only another route's policy allows
   * went out unasked, as did a `cors: off` route's requests, whose upstream was meant to answer their preflights.
   * Checking only the methods the asking policy lists (and the safelisted ones) left both answers cacheable when
   * neither policy listed the other route's method. Every route of the URL is found by probeMethods.
   */
  #cacheable(ctx: RequestContext, route: Route, asked: string): boolean {
    const mine = this.cors.get(route);
    if (mine === undefined) return true;
    for (const method of this.probeMethods) {
      if (method === asked) continue;
      const other = this.matcher.match(new RequestMatchInput(method, ctx.path, ctx.req.headers, false, this.owned, ctx.peerTrusted));
      if (other !== undefined && other !== route && this.cors.get(other)?.key !== mine.key) return false;
    }
    return true;
  }
}

/** The user routes of a table (admin status, dashboard). */
export function userRoutesOf(table: RouteTable): readonly Route[] {
  return table instanceof GatewayRouteTable ? table.routes : [];
}

/** What building a table needs. */
export interface RouteTableDeps {
  readonly config: Config;
  readonly features: Features;
  readonly services: ServiceRegistry;
  readonly logger: Logger;
  /**
   * The plugin phase of a route (step 6 and the plugin hooks of steps 8, 10, 11): its header rewrites as a
   * first-party plugin, then the plugin instances named; undefined when there is nothing to run.
   */
  readonly plugins?: (route: PluginRouteSpec) => Phase | undefined;
  /** The splits' rotations of the tables built before, continued where a route's arms are unchanged (a reload). */
  readonly splitRotations?: SplitRotations;
}

/** What a route's plugin phase is built from. */
export interface PluginRouteSpec {
  /** routes[].plugins, else middleware.plugins. */
  readonly names: readonly string[];
  /** The route's service when it has one (not a split). */
  readonly service: string | undefined;
  readonly requestHeaders?: RouteConfig['request_headers'];
  readonly responseHeaders?: RouteConfig['response_headers'];
}

/** Builds the whole table; throws nothing for a config that passed validation. */
export function buildRouteTable(deps: RouteTableDeps): RouteTable {
  const { config, features, services } = deps;
  const observers = features.observers;
  const globalCors = config.middleware.cors ? createCorsPhase(compileCors(config.middleware.cors)) : undefined;
  const withGlobalCors = (phases: readonly (Phase | undefined)[]): Phase[] =>
    [globalCors, ...phases, ...observers].filter((p): p is Phase => p !== undefined);

  const health = compileRoute({ name: 'health', phases: withGlobalCors([healthRoute]) });
  const authApi = features.authApi;
  const auth = authApi ? compileRoute({ name: 'auth', phases: withGlobalCors(authApi) }) : undefined;

  const defaultMode: AuthMode = config.middleware.auth.enabled ? 'required' : 'off';
  const userRoutes: Route[] = [];
  let single: Route | undefined;
  if (config.routes.length === 0) {
    // The seed's shape: one implicit catch-all route named "proxy" to the service "default".
    const limiter = features.limiter('default');
    const plugins = deps.plugins?.({ names: config.middleware.plugins, service: DEFAULT_SERVICE });
    single = compileRoute({
      name: 'proxy',
      phases: [
        ...withGlobalCors([features.authenticate(defaultMode, limiter?.penalize), limiter, plugins]),
        // As on a declared route: the CORS Vary tokens go on last, after the plugins that could drop them.
        ...(globalCors !== undefined && plugins !== undefined ? [createCorsVaryPhase()] : []),
      ],
      upstream: services.get(DEFAULT_SERVICE),
      ...tunnelIdleOnly(config.server.timeouts.tunnel_idle),
      info: { services: [DEFAULT_SERVICE], auth: defaultMode, rate_limit: limiter ? 'default' : 'off' },
    });
    userRoutes.push(single);
  } else {
    for (const r of config.routes) userRoutes.push(compileUserRoute(r, deps, defaultMode, globalCors));
  }
  deps.splitRotations?.retain(new Set(config.routes.filter((r) => r.split !== undefined).map((r) => r.name)));
  const conditions: RouteConditions[] = config.routes.map((r) => conditionsOf(r, config.middleware.auth.enabled));
  const cors = new Map<Route, RouteCors>();
  config.routes.forEach((r, i) => {
    const policy = r.cors === undefined ? config.middleware.cors : r.cors === 'off' ? undefined : r.cors;
    // The parsed policy (defaults filled, origins lower-cased) as text: two routes with equal policies share a key.
    if (policy !== undefined) cors.set(userRoutes[i]!, { key: JSON.stringify(policy) });
  });
  const probeMethods = [...new Set([...SAFELISTED_METHODS, ...config.routes.flatMap((r) => r.match.methods ?? []), UNNAMED_METHOD])];
  const owned = ownedHeadersOf(config);
  const matcher = new RouteMatcher(conditions.map((c, i) => ({ conditions: c, value: userRoutes[i]! })));

  const notFoundPhase: Phase = {
    name: 'route-not-found',
    onRequest(ctx) {
      if (deps.logger.isLevelEnabled('debug')) {
        const input = new RequestMatchInput(ctx.req.method, ctx.path, ctx.req.headers, true, owned, ctx.peerTrusted);
        const verdicts = explainMatch(conditions, input, false).verdicts;
        // The first routes tried say why (routes --match says all): a line per 404 the size of the route table, in
        // a log a client's 404s write, would let any client fill the disk of a gateway with many routes.
        const tried = verdicts.slice(0, LOGGED_VERDICTS).map((v) => `${config.routes[v.index]!.name}: ${v.failed}`);
        if (verdicts.length > LOGGED_VERDICTS) tried.push(`and ${verdicts.length - LOGGED_VERDICTS} more routes`);
        deps.logger.debug(
          { request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, method: input.method, host: input.host, path: ctx.path, tried },
          'Route Not Found',
        );
      }
      return sendError(ctx, ROUTE_NOT_FOUND);
    },
  };
  const notFound = compileRoute({ name: NO_ROUTE_NAME, phases: withGlobalCors([notFoundPhase]) });
  const fallback = compileRoute({ name: NO_ROUTE_NAME, phases: withGlobalCors([]) });
  const jwksServed = config.jwt.algorithm !== 'HS256';
  return new GatewayRouteTable(health, auth, single, matcher, notFound, fallback, userRoutes, owned, cors, probeMethods, jwksServed);
}

function compileUserRoute(r: RouteConfig, deps: RouteTableDeps, defaultMode: AuthMode, globalCors: Phase | undefined): Route {
  const { features, services } = deps;
  const mode = r.auth ?? defaultMode;
  const limiter = features.limiter(r.rate_limit);
  const cors = r.cors === undefined ? globalCors : r.cors === 'off' ? undefined : createCorsPhase(compileCors(r.cors));
  const rewrite = createRewritePhase({
    path: {
      stripPrefix: r.strip_prefix && r.match.path_prefix !== undefined ? normalisePrefix(r.match.path_prefix) : undefined,
      addPrefix: r.add_prefix,
    },
    host: hostModeOf(r.host),
    // The header rewrites run as a first-party plugin (below), on the public contract.
    requestHeaders: deps.plugins === undefined ? r.request_headers : undefined,
    responseHeaders: deps.plugins === undefined ? r.response_headers : undefined,
  });
  // After the rewrite (its upstream hook runs first) and before the body limit (step 6 comes before step 7).
  const plugins = deps.plugins?.({
    names: r.plugins ?? deps.config.middleware.plugins,
    service: r.service,
    requestHeaders: r.request_headers,
    responseHeaders: r.response_headers,
  });
  const bodyLimit = r.max_body_size !== undefined ? createBodyLimitPhase(r.max_body_size) : undefined;
  // The penalty for a failed authentication goes to the route's own limiter, else the default one when it is on.
  const penalize = (limiter ?? features.limiter('default'))?.penalize;
  // The CORS Vary tokens go on last, after the rewrites and plugins that could drop them (createCorsVaryPhase).
  const corsVary = cors !== undefined ? createCorsVaryPhase() : undefined;
  const phases = [cors, features.authenticate(mode, penalize, r.auth_methods), limiter, rewrite, plugins, bodyLimit, ...features.observers, corsVary].filter(
    (p): p is Phase => p !== undefined,
  );
  let upstream: UpstreamSelector;
  let serviceNames: string[];
  if (r.split !== undefined) {
    const arms = r.split.map((arm) => ({ service: services.get(arm.service)!, weight: arm.weight }));
    upstream = new SplitSelector(arms, deps.splitRotations?.picker(r.name, r.split));
    serviceNames = r.split.map((arm) => arm.service);
  } else {
    upstream = services.get(r.service!)!;
    serviceNames = [r.service!];
  }
  const tunnelIdleMs = r.timeouts?.tunnel_idle ?? deps.config.server.timeouts.tunnel_idle;
  const timeouts =
    r.timeouts || tunnelIdleMs > 0
      ? { responseMs: r.timeouts?.upstream_response, bodyMs: r.timeouts?.upstream_body, tunnelIdleMs }
      : undefined;
  return compileRoute({
    name: r.name,
    phases,
    upstream,
    ...(timeouts ? { timeouts } : {}),
    info: { services: serviceNames, auth: mode, rate_limit: limiter ? r.rate_limit : 'off', cors: cors !== undefined },
  });
}

/** The seed route's timeouts: the server's tunnel idle bound alone, when one is set (the others are the service's). */
function tunnelIdleOnly(tunnelIdleMs: number): { timeouts?: RouteTimeouts } {
  return tunnelIdleMs > 0 ? { timeouts: { tunnelIdleMs } } : {};
}
