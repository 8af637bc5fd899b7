// Prometheus metrics: the gateway-owned registry, every metric name, the logging-phase writer and the event sinks.
import type { Server, Socket } from 'node:net';
import { collectDefaultMetrics } from './default-metrics.js';
import { Counter, Gauge, Registry } from './prom-client.js';
import type { Backend } from '../balancer/backend.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Phase } from '../pipeline/phase.js';
import type { TunnelFacts } from './access-log.js';
import { FastCounter, FastHistogram, registerFast } from './fast-metrics.js';
import { RecentTraffic } from './recent.js';
import { LOG_DESTINATIONS, logLinesDropped } from './line-writer.js';

/** Every metric the gateway exports, in one place (the README's metrics table is written from it). */
export const METRICS = {
  requests: 'portcullis_requests_total',
  requestDuration: 'portcullis_request_duration_seconds',
  upstreamDuration: 'portcullis_upstream_duration_seconds',
  requestErrors: 'portcullis_request_errors_total',
  requestsInFlight: 'portcullis_requests_in_flight',
  clientConnections: 'portcullis_client_connections',
  upstreamHealthy: 'portcullis_upstream_healthy',
  upstreamInFlight: 'portcullis_upstream_in_flight',
  rateLimit: 'portcullis_rate_limit_decisions_total',
  auth: 'portcullis_auth_events_total',
  storeErrors: 'portcullis_store_errors_total',
  spansDropped: 'portcullis_tracing_spans_dropped_total',
  logLinesDropped: 'portcullis_log_lines_dropped_total',
  unreplicatedRevocations: 'portcullis_revocations_unreplicated_total',
  adminActions: 'portcullis_admin_actions_total',
  tlsCertificateExpiry: 'portcullis_tls_certificate_expiry_seconds',
  tunnelsClosed: 'portcullis_tunnels_closed_total',
  tunnelDuration: 'portcullis_tunnel_duration_seconds',
} as const;

/** Auth outcomes, as reported by the auth service (same shape as src/auth/events.ts). */
export type AuthEvent = 'register' | 'login_success' | 'login_failure' | 'refresh' | 'reuse_detected' | 'logout';
/** Receives auth outcomes; called synchronously on the request path: cheap, never throws. */
export interface AuthEventSink {
  record(event: AuthEvent): void;
}

/** Rate-limit decisions (same shape as src/ratelimit/events.ts). */
export type RateLimitEvent = 'pass' | 'reject' | 'store_error';
/** Receives limiter decisions; called synchronously on the request path: cheap, never throws. */
export interface RateLimitEventSink {
  record(event: RateLimitEvent, route: string): void;
}

/** A store that failed to answer: the user store (SQLite/PostgreSQL) or Redis. */
export type StoreName = 'user_store' | 'redis';

const AUTH_EVENTS: readonly AuthEvent[] = ['register', 'login_success', 'login_failure', 'refresh', 'reuse_detected', 'logout'];
const RATE_LIMIT_EVENTS: readonly RateLimitEvent[] = ['pass', 'reject', 'store_error'];
const STORES: readonly StoreName[] = ['user_store', 'redis'];

/** Methods that get their own label value; anything else is "OTHER" so a client cannot grow the label set. */
const METHOD_NAMES = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', 'OTHER'] as const;
/** Method to its index in METHOD_NAMES; "OTHER" is not a key, so a client sending it gets OTHER_METHOD anyway. */
const METHOD_INDEX = new Map<string, number>(METHOD_NAMES.slice(0, -1).map((m, i) => [m, i]));
const OTHER_METHOD = METHOD_NAMES.length - 1;
/**
 * Per-request series keys multiply small integers, which must stay below these bounds for the product to name one
 * label set and be a safe integer. An id belongs to one name for the process's life (a name a reload removed gets
 * its own id back if a later reload adds it again; no other name ever gets it); the rare label sets past a bound
 * (more names seen in the process's life, reloads included) are keyed by their label string instead, slower but
 * exact. Before, ids wrapped around and route 8193's requests were counted as route 1's.
 */
const MAX_ROUTES = 8192;
const MAX_SERVICES = 1024;
const MAX_UPSTREAMS = 100_000;

/** The label value of "no upstream" (not proxied) and "no service"; always live. */
const NONE = 'none';

/** The routes, services and upstreams of the running config: the only names /metrics keeps series of (retain). */
export interface LiveNames {
  /** Every route name a request can be counted under: the config's routes and the gateway's own (health, auth, none). */
  readonly routes: readonly string[];
  readonly services: readonly string[];
  /** Upstream labels (`host:port`, as Backend.label). */
  readonly upstreams: readonly string[];
}

/** Requests and gateway-or-upstream errors (status 500 and above) of one route since start, for /api/status. */
export interface RouteCounts {
  requests: number;
  errors: number;
}

/** Seconds; from sub-millisecond proxying of a local backend to the default 30 s upstream timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds a WebSocket tunnel lived: from a refused or dropped session (under 1 s) to a day-long one. */
const TUNNEL_BUCKETS = [1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600];

/** The backend fields read at scrape time and by the dashboard. */
export type BackendView = Pick<
  Backend,
  'name' | 'address' | 'port' | 'label' | 'weight' | 'inflight' | 'requests' | 'failures' | 'health' | 'available' | 'group'
>;

/** Method label value: the upper-case method when it is a standard one, else "OTHER". */
export function methodLabel(method: string | undefined): string {
  return METHOD_NAMES[(method !== undefined ? METHOD_INDEX.get(method) : undefined) ?? OTHER_METHOD] as string;
}

/** Status label value: the three-digit code, or "0" when no response was sent. */
export function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : '0';
}

/**
 * The gateway's metrics, created once per gateway in the composition root (never module-global, so two gateways in
 * one process keep separate numbers). Plain counters mirror the event metrics for the dashboard's JSON, which must
 * not wait for prom-client's async getters.
 */
export class GatewayMetrics {
  /** The registry /metrics serves; not prom-client's global default. */
  readonly registry = new Registry();
  /** Per-second traffic for the dashboard charts. */
  readonly recent: RecentTraffic;
  /** Counts of auth outcomes since start, for /api/status. */
  readonly authCounts: Record<AuthEvent, number> = zeroes(AUTH_EVENTS);
  /** Counts of rate-limit decisions since start, all route classes together, for /api/status. */
  readonly rateLimitCounts: Record<RateLimitEvent, number> = zeroes(RATE_LIMIT_EVENTS);
  /** Counts of store failures since start, for /api/status. */
  readonly storeErrorCounts: Record<StoreName, number> = zeroes(STORES);
  /** Per route name: requests and 5xx answers since start (the dashboard turns them into rates). */
  readonly routeCounts = new Map<string, RouteCounts>();

  /** The logging phase: to be listed among the pipeline's observers. */
  readonly phase: Phase;
  /** Give this to the auth service. */
  readonly authEvents: AuthEventSink;
  /** Give this to the rate limiter. */
  readonly rateLimitEvents: RateLimitEventSink;

  /** Requests in flight, as counted by the pipeline driver (read at scrape time; default: none). */
  #inFlight: () => number = () => 0;
  #connections = 0;
  // The four per-request metrics are our pre-aggregated collectors (see fast-metrics.ts): prom-client's labels() and
  // label hashing cost ~5% of proxy throughput. Their series are found by integer keys built below, not label objects.
  readonly #requests: FastCounter;
  readonly #duration: FastHistogram;
  readonly #upstreamDuration: FastHistogram;
  readonly #errors: FastCounter;
  /**
   * Upstream label ("none" included), route and service names to small integers, for the live names only (the hot
   * path's lookup; a miss is a name's first request since it became live). Each id comes from its `ever` map, where
   * a name keeps its id for the process's life, so the ids stay bounded by the names ever configured.
   */
  readonly #upstreamIds = new Map<string, number>();
  readonly #routeIds = new Map<string, number>();
  readonly #serviceIds = new Map<string, number>();
  readonly #upstreamIdsEver = new Map<string, number>();
  readonly #routeIdsEver = new Map<string, number>();
  readonly #serviceIdsEver = new Map<string, number>();
  /** The running config's names (retain); undefined until the first retain, when every name is live. */
  #live: { routes: Set<string>; services: Set<string>; upstreams: Set<string> } | undefined;
  /** Decisions by route: its three series, made at once (so rate() sees zeroes from a route's first decision). */
  readonly #rateLimit: FastCounter;
  readonly #decisions = new Map<string, Record<RateLimitEvent, { inc(): void }>>();
  readonly #auth: Counter<'event'>;
  readonly #storeErrors: Counter<'store'>;
  readonly #unreplicatedRevocations: Counter;
  /** Closed tunnels by route, service and closed_by, and their lifetimes by route; fed only when a tunnel closes. */
  readonly #tunnelsClosed: FastCounter;
  readonly #tunnelDuration: FastHistogram;

  /**
   * `backends` is read at every scrape, so a reload's new upstream set shows up without re-registering anything.
   * `defaultMetrics` adds prom-client's process metrics (CPU, memory, event loop lag); default true.
   */
  constructor(
    backends: () => readonly BackendView[],
    options: {
      defaultMetrics?: boolean;
      recent?: RecentTraffic;
      /** Spans the tracer could not deliver (tracing/types.ts droppedSpans); read at scrape time, default none. */
      droppedSpans?: () => number;
    } = {},
  ) {
    const registers = [this.registry];
    this.recent = options.recent ?? new RecentTraffic();
    if (options.defaultMetrics ?? true) collectDefaultMetrics(this.registry);
    // Registered in this order, before the gauges, because the Registry prints metrics in registration order.
    this.#requests = new FastCounter({
      name: METRICS.requests,
      help: 'Requests answered, by route, service, method, status and upstream ("none" when not proxied)',
      labelNames: ['route', 'service', 'method', 'status', 'upstream'],
    });
    this.#duration = new FastHistogram({
      name: METRICS.requestDuration,
      help: 'Time from request arrival to the end of the response, in seconds',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
    });
    this.#upstreamDuration = new FastHistogram({
      name: METRICS.upstreamDuration,
      help: 'Time from sending a request upstream to its response headers, in seconds',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
    });
    this.#errors = new FastCounter({
      name: METRICS.requestErrors,
      help: 'Gateway-made error responses, by error code',
      labelNames: ['code'],
    });
    for (const m of [this.#requests, this.#duration, this.#upstreamDuration, this.#errors]) registerFast(this.registry, m);
    const self = this;
    new Gauge({
      name: METRICS.requestsInFlight,
      help: 'Requests received whose response has not finished',
      registers,
      collect() {
        this.set(self.#inFlight());
      },
    });
    new Gauge({
      name: METRICS.clientConnections,
      help: 'Open client connections on the proxy port',
      registers,
      collect() {
        this.set(self.#connections);
      },
    });
    new Gauge({
      name: METRICS.upstreamHealthy,
      help: 'Whether the upstream can take traffic (1) or not (0: failed active checks or cooling down), by service',
      // service: one upstream (address, port and name) may serve several services, each with its own health checks,
      // cooldown and in-flight count; without it the last service's value overwrote the others' in one series.
      labelNames: ['upstream', 'name', 'service'] as const,
      registers,
      collect() {
        // Reset first: an upstream removed by a reload must disappear rather than keep its last value.
        this.reset();
        for (const b of backends()) this.set({ upstream: b.label, name: b.name, service: b.group.name }, b.available ? 1 : 0);
      },
    });
    new Gauge({
      name: METRICS.upstreamInFlight,
      help: 'Requests sent to the upstream by the service whose response has not finished',
      labelNames: ['upstream', 'name', 'service'] as const,
      registers,
      collect() {
        this.reset();
        for (const b of backends()) this.set({ upstream: b.label, name: b.name, service: b.group.name }, b.inflight);
      },
    });
    // A fast counter: the limiter records a decision on every limited request.
    this.#rateLimit = new FastCounter({
      name: METRICS.rateLimit,
      help: 'Rate-limit decisions: pass, reject (429) or store_error (policy applied), by route',
      labelNames: ['decision', 'route'],
    });
    registerFast(this.registry, this.#rateLimit);
    this.#auth = new Counter({
      name: METRICS.auth,
      help: 'Auth outcomes: register, login_success, login_failure, refresh, reuse_detected, logout',
      labelNames: ['event'] as const,
      registers,
    });
    this.#storeErrors = new Counter({
      name: METRICS.storeErrors,
      help: 'Operations that failed because a store did not answer, by store',
      labelNames: ['store'] as const,
      registers,
    });
    const droppedSpans = options.droppedSpans ?? (() => 0);
    new Counter({
      name: METRICS.spansDropped,
      help: 'Finished trace spans never delivered to the collector (export queue full, or export failed); 0 with tracing off',
      registers,
      collect() {
        this.reset();
        this.inc(droppedSpans());
      },
    });
    // Read from the process's line writers at scrape time: lines lost to a stdout nobody reads cannot say so on stdout.
    new Counter({
      name: METRICS.logLinesDropped,
      help: 'Log lines never written, by destination (stdout, access_log_file): a reader that stalled or left, a full disk',
      labelNames: ['destination'] as const,
      registers,
      collect() {
        this.reset();
        for (const destination of LOG_DESTINATIONS) this.inc({ destination }, logLinesDropped(destination));
      },
    });
    this.#unreplicatedRevocations = new Counter({
      name: METRICS.unreplicatedRevocations,
      help: 'Logouts whose access-token revocation no Redis replica confirmed (WAIT) before the reply; the logout still succeeded',
      registers,
    });
    // Fast collectors for their retainWhere (a reload drops a removed route's series); not on any request's path.
    this.#tunnelsClosed = new FastCounter({
      name: METRICS.tunnelsClosed,
      help: 'WebSocket tunnels closed, by route, service and the side that ended them (client, upstream, error, shutdown)',
      labelNames: ['route', 'service', 'closed_by'],
    });
    this.#tunnelDuration = new FastHistogram({
      name: METRICS.tunnelDuration,
      help: 'Time from a WebSocket tunnel\'s 101 to its close, in seconds',
      labelNames: ['route'],
      buckets: TUNNEL_BUCKETS,
    });
    registerFast(this.registry, this.#tunnelsClosed);
    registerFast(this.registry, this.#tunnelDuration);
    // Every event series exists from the start at 0, so rate() works from the first scrape.
    for (const event of AUTH_EVENTS) this.#auth.labels(event).inc(0);
    for (const store of STORES) this.#storeErrors.labels(store).inc(0);

    this.phase = {
      name: 'metrics',
      onLogging: (ctx) => this.#observe(ctx),
      onTunnelClosed: (ctx, tunnel) => this.#observeTunnel(ctx, tunnel),
    };
    this.authEvents = {
      record: (event) => {
        this.authCounts[event]++;
        this.#auth.labels(event).inc();
      },
    };
    this.rateLimitEvents = {
      record: (event, route) => {
        this.rateLimitCounts[event]++;
        (this.#decisions.get(route) ?? this.#declare(route))?.[event].inc();
      },
    };
  }

  /** A route's decision series, made at 0; undefined for a route the running config no longer has. */
  #declare(route: string): Record<RateLimitEvent, { inc(): void }> | undefined {
    if (this.#live !== undefined && !this.#live.routes.has(route)) return undefined;
    const byDecision = {} as Record<RateLimitEvent, { inc(): void }>;
    for (const decision of RATE_LIMIT_EVENTS) byDecision[decision] = this.#rateLimit.series(`${decision}:${route}`, [decision, route]);
    this.#decisions.set(route, byDecision);
    return byDecision;
  }

  /**
   * Makes /metrics follow the running config (start-up, and each reload once its route table is in place): the
   * series labelled with a route, service or upstream not in `names` are dropped (requests, latencies, upstream
   * latency, rate-limit decisions, the dashboard's route counts), and a request that finishes later on a route the
   * reload removed (it started before) adds none back. The series of the names kept are untouched: their counters
   * carry on. A name added back by a later reload starts its series from zero, as Prometheus expects of a series
   * that disappeared. Every rate-limit decision series of the routes is made at 0, so rate() works at once. The
   * upstream gauges need nothing: they are read from the running backends at each scrape.
   */
  retain(names: LiveNames): void {
    const live = {
      routes: new Set(names.routes),
      services: new Set([...names.services, NONE]),
      upstreams: new Set([...names.upstreams, NONE]),
    };
    this.#live = live;
    for (const [ids, keep] of [
      [this.#routeIds, live.routes],
      [this.#serviceIds, live.services],
      [this.#upstreamIds, live.upstreams],
    ] as const) {
      for (const name of ids.keys()) if (!keep.has(name)) ids.delete(name);
    }
    const route = (labels: Readonly<Record<string, string>>) => live.routes.has(labels.route as string);
    const upstream = (labels: Readonly<Record<string, string>>) => live.upstreams.has(labels.upstream as string);
    this.#requests.retainWhere((l) => route(l) && upstream(l) && live.services.has(l.service as string));
    this.#duration.retainWhere(route);
    this.#upstreamDuration.retainWhere(upstream);
    this.#rateLimit.retainWhere(route);
    this.#tunnelsClosed.retainWhere((l) => route(l) && live.services.has(l.service as string));
    this.#tunnelDuration.retainWhere(route);
    for (const name of this.#decisions.keys()) if (!live.routes.has(name)) this.#decisions.delete(name);
    for (const name of this.routeCounts.keys()) if (!live.routes.has(name)) this.routeCounts.delete(name);
    for (const name of live.routes) if (!this.#decisions.has(name)) this.#declare(name);
  }

  /**
   * The id of a live name met for the first time since it became live: its id of the process's life (a new one on
   * its first sight ever), or -1 for a name the running config no longer has.
   */
  #idOf(name: string, ids: Map<string, number>, ever: Map<string, number>, live: Set<string> | undefined): number {
    if (live !== undefined && !live.has(name)) return -1;
    let id = ever.get(name);
    if (id === undefined) ever.set(name, (id = ever.size));
    ids.set(name, id);
    return id;
  }

  /** A store failed to answer (called by the store adapters' owners; cheap, never throws). */
  recordStoreError(store: StoreName): void {
    this.storeErrorCounts[store]++;
    this.#storeErrors.labels(store).inc();
  }

  /** A revocation was written on the Redis master but no replica confirmed it (cheap, never throws). */
  recordUnreplicatedRevocation(): void {
    this.#unreplicatedRevocations.inc();
  }

  /**
   * Exports the seconds until each listener certificate expires (labels: its file and SAN names), read from
   * `certificates` at scrape time so a reload's new certificates show. Call once at start-up when TLS is on.
   */
  watchCertificates(certificates: () => readonly { cert_file: string; names: readonly string[]; expires_in_s: number }[]): void {
    new Gauge({
      name: METRICS.tlsCertificateExpiry,
      help: 'Seconds until the listener certificate expires (alert well ahead, e.g. below 14 days)',
      labelNames: ['cert_file', 'names'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const c of certificates()) this.set({ cert_file: c.cert_file, names: c.names.join(',') }, c.expires_in_s);
      },
    });
  }

  /** Requests in flight and open client connections right now (for /api/status). */
  get live(): { inFlight: number; connections: number } {
    return { inFlight: this.#inFlight(), connections: this.#connections };
  }

  /**
   * Counts the proxy port's open connections (one shared listener per connection) and reads requests in flight from
   * `inFlight` (the pipeline driver's own count, so no listener is added per request). Call once at start-up.
   */
  watch(server: Server, inFlight: () => number): void {
    this.#inFlight = inFlight;
    server.on('connection', this.#onConnection);
  }

  readonly #onConnection = (socket: Socket): void => {
    this.#connections++;
    socket.once('close', this.#onConnectionClose);
  };

  readonly #onConnectionClose = (): void => {
    this.#connections--;
  };

  /**
   * A closed tunnel's two metrics. Tunnels are few next to requests: series keyed by their label string, no ids. A
   * route or service a reload removed while the tunnel lived adds no series back, as a request's adds none.
   */
  #observeTunnel(ctx: RequestContext, tunnel: TunnelFacts): void {
    const route = ctx.route.name;
    const service = ctx.service ?? NONE;
    const live = this.#live;
    if (live !== undefined && !live.routes.has(route)) return;
    if (live === undefined || live.services.has(service)) {
      const key = `${route}\u0000${service}\u0000${tunnel.closedBy}`;
      (this.#tunnelsClosed.at(key) ?? this.#tunnelsClosed.series(key, [route, service, tunnel.closedBy])).inc();
    }
    (this.#tunnelDuration.at(route) ?? this.#tunnelDuration.series(route, [route])).observe(tunnel.durationMs / 1000);
  }

  /** The logging phase body: runs once per request, after the response has ended or the client went away. */
  // Allocation-free once a label set has been seen: each series is found by an integer key in one Map lookup; label
  // strings and arrays are built only on a series' first request.
  #observe(ctx: RequestContext): void {
    const ms = ctx.durationMs >= 0 ? ctx.durationMs : performance.now() - ctx.startedAt;
    const peer = ctx.peer;
    const live = this.#live;
    // -1: a name a reload removed while this request ran; its series are gone and stay gone.
    const upstream = peer?.label ?? NONE;
    const upId = this.#upstreamIds.get(upstream) ?? this.#idOf(upstream, this.#upstreamIds, this.#upstreamIdsEver, live?.upstreams);
    const route = ctx.route.name;
    const routeId = this.#routeIds.get(route) ?? this.#idOf(route, this.#routeIds, this.#routeIdsEver, live?.routes);
    const service = ctx.service ?? NONE;
    const serviceId = this.#serviceIds.get(service) ?? this.#idOf(service, this.#serviceIds, this.#serviceIdsEver, live?.services);
    const status = ctx.status;
    if (upId >= 0 && routeId >= 0 && serviceId >= 0) {
      const method = ctx.req.method;
      const methodId = (method !== undefined ? METHOD_INDEX.get(method) : undefined) ?? OTHER_METHOD;
      // 0..599, the numeric form of statusLabel: codes outside 100..599 share key 0 as they share label "0".
      const statusId = Number.isInteger(status) && status >= 100 && status <= 599 ? status : 0;
      const packable = upId < MAX_UPSTREAMS && routeId < MAX_ROUTES && serviceId < MAX_SERVICES;
      const key = packable
        ? (((upId * MAX_ROUTES + routeId) * MAX_SERVICES + serviceId) * METHOD_NAMES.length + methodId) * 600 + statusId
        : `${upstream}\u0000${route}\u0000${service}\u0000${methodId}\u0000${statusId}`;
      const requests =
        this.#requests.at(key) ??
        this.#requests.series(key, [route, service, METHOD_NAMES[methodId] as string, statusLabel(status), upstream]);
      requests.inc();
    }
    if (routeId >= 0) {
      // One label each: the id, or past its bound the name itself (a string key never equals a number key).
      const routeKey = routeId < MAX_ROUTES ? routeId : route;
      (this.#duration.at(routeKey) ?? this.#duration.series(routeKey, [route])).observe(ms / 1000);
      let counts = this.routeCounts.get(route);
      if (counts === undefined) this.routeCounts.set(route, (counts = { requests: 0, errors: 0 }));
      counts.requests++;
      if (status >= 500) counts.errors++;
    }
    if (peer !== undefined && ctx.upstreamMs >= 0 && upId >= 0) {
      (this.#upstreamDuration.at(upId) ?? this.#upstreamDuration.series(upId, [upstream])).observe(ctx.upstreamMs / 1000);
    }
    const error = ctx.error;
    if (error !== undefined) (this.#errors.at(error.code) ?? this.#errors.series(error.code, [error.code])).inc();
    this.recent.record(ms, ctx.status);
  }
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const key of keys) out[key] = 0;
  return out;
}
