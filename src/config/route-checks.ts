// Rules across keys for routes and services that one key's schema cannot see: names that must exist, names that are
// reserved, and settings that contradict each other. Each failure names its key path, as the schema's errors do.
import type { Config } from './schema.js';
import { DEFAULT_SERVICE } from './services.js';
import { OwnedHeaders, isOwnedResponseHeader } from '../proxy/owned-headers.js';
import { isSemanticField, neverForwarded } from '../proxy/headers.js';
import { conditionsOf } from '../routing/from-config.js';
import type { RouteConditions } from '../routing/conditions.js';

/**
 * Names of the gateway's own routes in logs and metrics: its endpoints, the implicit catch-all route, and `none`,
 * the label of requests no route took (404, and those refused before routing). A route of that name would share
 * its series and dashboard row with any client's unmatched requests.
 */
export const RESERVED_ROUTE_NAMES: ReadonlySet<string> = new Set(['health', 'auth', 'proxy', 'none']);

/** `none` is the service label of requests that were never proxied (metrics.ts): no service may take it. */
export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set(['none']);

/**
 * Words a route's `rate_limit` gives a meaning of their own: `default` is middleware.rate_limit's main rule, `off` no
 * limit. A policy of either name could never be chosen (routes naming it got the main rule or none), so it is refused
 * rather than silently ignored.
 */
const RESERVED_POLICY_NAMES: ReadonlyMap<string, string> = new Map([
  ['default', "a route's rate_limit: default is middleware.rate_limit's own rule"],
  ['off', "a route's rate_limit: off turns the limit off"],
]);

/**
 * The owned-header list of a config: its identity and consumer header names, the trace headers when tracing is on,
 * and the header names its routes' conditions decide on.
 */
export function ownedHeadersOf(config: Config): OwnedHeaders {
  const auth = config.middleware.auth;
  return new OwnedHeaders({
    identityHeaders: [auth.user_id_header, auth.user_email_header, auth.consumer_id_header, auth.consumer_name_header],
    tracing: config.tracing.otlp_endpoint !== '',
    judgedHeaders: (config.routes ?? []).flatMap((route) => Object.keys(route.match.headers ?? {})),
  });
}

/** The first problem as "key.path: reason", or undefined when the routes and services fit together. */
export function checkRoutesAndServices(config: Config): string | undefined {
  const services = new Set(Object.keys(config.services));
  for (const name of services) {
    if (RESERVED_SERVICE_NAMES.has(name)) return `services.${name}: "${name}" is reserved (the label of requests that were not proxied)`;
  }
  if (config.load_balancing !== undefined) {
    if (services.has(DEFAULT_SERVICE)) {
      return `services.${DEFAULT_SERVICE}: the service "${DEFAULT_SERVICE}" is already defined by load_balancing`;
    }
    services.add(DEFAULT_SERVICE);
  }
  if (services.size === 0) return 'load_balancing: is required (or define services and routes)';
  if (config.routes.length === 0 && !services.has(DEFAULT_SERVICE)) {
    return 'routes: without routes every request goes to the service "default": define load_balancing or routes';
  }
  const policies = config.middleware.rate_limit.policies;
  for (const name of Object.keys(policies)) {
    const meaning = RESERVED_POLICY_NAMES.get(name);
    if (meaning !== undefined) return `middleware.rate_limit.policies.${name}: "${name}" is reserved (${meaning})`;
  }
  const authOn = config.middleware.auth.enabled;
  const tracing = config.tracing.otlp_endpoint !== '';
  const ownedList = ownedHeadersOf(config);
  const traceHeader = tracing ? config.tracing.response_header : '';
  // The HSTS phase writes Strict-Transport-Security after the route's response rewrites (tls/setup.ts), which would
  // replace a rewrite of it without a word (the same rule as plugins/owned-headers.ts writesHsts, not imported: it imports this file).
  const tls = config.server.tls;
  const hsts = tls.cert_file !== '' && tls.key_file !== '' && tls.hsts !== '';
  const traceHeaderProblem = responseHeaderProblem(config.tracing.response_header, ownedList);
  if (traceHeaderProblem !== undefined) return `tracing.response_header: "${config.tracing.response_header}" ${traceHeaderProblem}`;
  const seen = new Set<string>();
  for (let i = 0; i < config.routes.length; i++) {
    const r = config.routes[i]!;
    const at = `routes[${i}]`;
    if (RESERVED_ROUTE_NAMES.has(r.name)) return `${at}.name: "${r.name}" is reserved for the gateway's own routes`;
    if (seen.has(r.name)) return `${at}.name: duplicate route name "${r.name}"`;
    seen.add(r.name);
    if (r.service !== undefined && !services.has(r.service)) return `${at}.service: unknown service "${r.service}"`;
    const split = r.split ?? [];
    for (let j = 0; j < split.length; j++) {
      if (!services.has(split[j]!.service)) return `${at}.split[${j}].service: unknown service "${split[j]!.service}"`;
    }
    if (r.strip_prefix && r.match.path_prefix === undefined) return `${at}.strip_prefix: needs match.path_prefix`;
    if (r.auth !== undefined && r.auth !== 'off' && !authOn) {
      return `${at}.auth: "${r.auth}" needs middleware.auth.enabled: true`;
    }
    if (r.rate_limit !== 'default' && r.rate_limit !== 'off' && !Object.hasOwn(policies, r.rate_limit)) {
      return `${at}.rate_limit: unknown policy "${r.rate_limit}" (define it in middleware.rate_limit.policies)`;
    }
    // Routing reads headers as the upstream will (routing/from-config.ts): one the gateway always writes is never there.
    const condition = Object.keys(r.match.headers ?? {}).find((name) => ownedList.ownership(name) === 'owned');
    if (condition !== undefined) {
      return `${at}.match.headers: "${condition}" is set by the gateway itself (a client's copy is dropped, and routes are matched before authentication), so this condition could never hold`;
    }
    // Nor a forwarding header (X-Forwarded-*, Forwarded, X-Real-IP, a CDN's True-Client-IP...) while no peer is a
    // trusted proxy: routing reads one from a trusted proxy only, and the route was silently never taken.
    const fromProxy =
      config.server.trusted_proxies.length === 0
        ? Object.keys(r.match.headers ?? {}).find((name) => ownedList.ownership(name) === 'forwarding' || ownedList.isClientAddressHeader(name))
        : undefined;
    if (fromProxy !== undefined) {
      return `${at}.match.headers: "${fromProxy}" is read only from a trusted proxy, and server.trusted_proxies is empty, so this condition could never hold`;
    }
    // Nor one that is hop-by-hop: it is never forwarded, so routing never reads it (RequestMatchInput).
    const hopByHop = Object.keys(r.match.headers ?? {}).find(neverForwarded);
    if (hopByHop !== undefined) {
      return `${at}.match.headers: "${hopByHop}" is a hop-by-hop header the gateway never forwards (and routes read headers as the upstream gets them), so this condition could never hold`;
    }
    const owned = ownedIn(r.request_headers, (name) => ownedList.isOwned(name));
    if (owned !== undefined) return `${at}.request_headers: "${owned}" is set by the gateway and cannot be rewritten`;
    const ownedOut = ownedIn(r.response_headers, (name) => isOwnedResponseHeader(name, traceHeader) || (hsts && name.toLowerCase() === 'strict-transport-security'));
    if (ownedOut !== undefined) return `${at}.response_headers: "${ownedOut}" is set by the gateway and cannot be rewritten`;
  }
  return duplicateMatchProblem(config.routes);
}

/**
 * Two routes whose match conditions are the same once normalised as the matcher normalises them: whichever the
 * matcher tries second can never be chosen. Only exact duplicates; a route shadowed by a broader one is legitimate
 * (a catch-all after specific routes) and not reported.
 */
function duplicateMatchProblem(routes: Config['routes']): string | undefined {
  const firstWithKey = new Map<string, number>();
  for (let i = 0; i < routes.length; i++) {
    const conditions = conditionsOf(routes[i]!);
    const key = matchKey(conditions);
    const earlier = firstWithKey.get(key);
    if (earlier === undefined) {
      firstWithKey.set(key, i);
      continue;
    }
    // The matcher tries a route with methods or headers conditions first ("headers: {}" counts), then file order.
    const earlierFirst = isConditional(conditionsOf(routes[earlier]!)) || !isConditional(conditions);
    const [live, dead] = earlierFirst ? [earlier, i] : [i, earlier];
    return (
      `routes[${dead}].match: same match conditions as routes[${live}] ("${routes[live]!.name}"), which the matcher ` +
      `tries first: route "${routes[dead]!.name}" can never be chosen`
    );
  }
  return undefined;
}

function isConditional(c: RouteConditions): boolean {
  return c.methods !== undefined || c.headers !== undefined;
}

/**
 * The conditions as the matcher compares them: hosts and methods as sets, headers by name, an exact path apart from
 * a prefix (the prefix already without its trailing slash). An empty headers map requires nothing, like none.
 */
function matchKey(c: RouteConditions): string {
  const set = (values: readonly string[] | undefined) => (values === undefined ? null : [...new Set(values)].sort());
  const headers = c.headers === undefined ? [] : Object.entries(c.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const path = c.path !== undefined ? ['path', c.path] : ['prefix', c.pathPrefix];
  return JSON.stringify([set(c.hosts), path, set(c.methods), headers]);
}

function ownedIn(
  rewrite: { readonly set: Readonly<Record<string, string>>; readonly remove: readonly string[] } | undefined,
  owned: (name: string) => boolean,
): string | undefined {
  if (rewrite === undefined) return undefined;
  return [...Object.keys(rewrite.set), ...rewrite.remove].find((name) => owned(name));
}

/**
 * Why a header name cannot carry the trace id on every response, if it cannot: one HTTP gives a meaning to
 * (`Content-Length: <trace id>` cut every body; `Transfer-Encoding` beside a Content-Length lets a cache in front
 * read another length than the client), one the gateway sets itself, or one whose value a client or backend trusts.
 */
function responseHeaderProblem(name: string, owned: OwnedHeaders): string | undefined {
  if (name === '') return undefined;
  const key = name.toLowerCase();
  if (isSemanticField(key) || key === 'proxy-connection' || key === 'http2-settings') return 'is a field HTTP gives a meaning to: use a header of your own, such as X-Trace-Id';
  if (isOwnedResponseHeader(key) || owned.isOwned(key) || key.startsWith('ratelimit') || key.startsWith('access-control-')) {
    return 'is a header the gateway sets or reads itself: use a header of your own, such as X-Trace-Id';
  }
  return undefined;
}
