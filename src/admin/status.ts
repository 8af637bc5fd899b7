// The JSON behind the dashboard (GET /api/status): upstreams, recent traffic, rate-limit and auth activity.
import type { BackendView, GatewayMetrics } from '../observability/metrics.js';
import type { TrafficPoint, TrafficSummary } from '../observability/recent.js';
import type { CertificateStatus } from '../tls/store.js';

/** One upstream row of the dashboard. */
export interface UpstreamStatus {
  readonly name: string;
  readonly service: string;
  readonly address: string;
  readonly health: BackendView['health'];
  readonly weight: number;
  readonly in_flight: number;
  readonly requests: number;
  readonly failures: number;
}

/** A user route as the admin status shows it: its services, auth mode and limit policy (from the route table). */
export interface RouteView {
  readonly name: string;
  readonly [fact: string]: unknown;
}

/** One route row of the dashboard: the route's facts plus its counts since start (the page turns them into rates). */
export interface RouteStatus extends RouteView {
  readonly requests: number;
  readonly errors: number;
}

/** One service row: its upstreams' health. */
export interface ServiceStatus {
  readonly name: string;
  readonly healthy: number;
  readonly upstreams: readonly string[];
}

/** The whole /api/status body. Field names are part of the dashboard's contract (dashboard.js reads them). */
export interface StatusBody {
  readonly generated_at: string;
  readonly uptime_s: number;
  /**
   * Milliseconds since the admin listener started, on the monotonic clock: what the dashboard divides its route
   * counts' differences by. `generated_at` is the wall clock, which NTP may step between two refreshes: a step back
   * made the interval negative and the routes' rates a thousand times their value, a step forward made them zero.
   */
  readonly uptime_ms: number;
  readonly in_flight: number;
  readonly connections: number;
  readonly upstreams: readonly UpstreamStatus[];
  readonly services: readonly ServiceStatus[];
  readonly routes: readonly RouteStatus[];
  readonly traffic: TrafficSummary & { readonly step_s: number; readonly series: readonly TrafficPoint[] };
  readonly rate_limit: GatewayMetrics['rateLimitCounts'];
  readonly auth: GatewayMetrics['authCounts'];
  readonly store_errors: GatewayMetrics['storeErrorCounts'];
  /** The proxy listener's certificates (names, expiry); empty when TLS is off. */
  readonly tls_certificates: readonly CertificateStatus[];
}

/** Seconds per chart point. */
const STEP_S = 5;

/**
 * Builds the status body from live objects; cheap enough to run on every dashboard refresh (2 s). `startedAt` is
 * performance.now() when the admin listener started (monotonic: a wall clock stepped back made uptime_s negative).
 */
export function buildStatus(
  metrics: GatewayMetrics,
  backends: readonly BackendView[],
  routes: readonly RouteView[],
  startedAt: number,
  certificates: readonly CertificateStatus[] = [],
): StatusBody {
  const live = metrics.live;
  const uptimeMs = Math.round(performance.now() - startedAt);
  const services = new Map<string, { healthy: number; upstreams: string[] }>();
  for (const b of backends) {
    let s = services.get(b.group.name);
    if (s === undefined) services.set(b.group.name, (s = { healthy: 0, upstreams: [] }));
    s.upstreams.push(b.label);
    if (b.available) s.healthy++;
  }
  return {
    generated_at: new Date().toISOString(),
    uptime_s: Math.round(uptimeMs / 1000),
    uptime_ms: uptimeMs,
    in_flight: live.inFlight,
    connections: live.connections,
    upstreams: backends.map((b) => ({
      name: b.name,
      service: b.group.name,
      address: b.label,
      health: b.health,
      weight: b.weight,
      in_flight: b.inflight,
      requests: b.requests,
      failures: b.failures,
    })),
    services: [...services].map(([name, s]) => ({ name, ...s })),
    routes: routes.map((r) => ({ ...r, ...(metrics.routeCounts.get(r.name) ?? { requests: 0, errors: 0 }) })),
    traffic: { ...metrics.recent.summary(60), step_s: STEP_S, series: metrics.recent.series(STEP_S) },
    rate_limit: { ...metrics.rateLimitCounts },
    auth: { ...metrics.authCounts },
    store_errors: { ...metrics.storeErrorCounts },
    tls_certificates: certificates,
  };
}
