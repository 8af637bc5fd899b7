// The JSON behind the dashboard (GET /api/status): upstreams, recent traffic, rate-limit and auth activity.
import type { BackendView, GatewayMetrics } from '../observability/metrics.js';
import type { TrafficPoint, TrafficSummary } from '../observability/recent.js';

/** One upstream row of the dashboard. */
export interface UpstreamStatus {
  readonly name: string;
  readonly address: string;
  readonly health: BackendView['health'];
  readonly weight: number;
  readonly in_flight: number;
  readonly requests: number;
  readonly failures: number;
}

/** The whole /api/status body. Field names are part of the dashboard's contract (dashboard.js reads them). */
export interface StatusBody {
  readonly generated_at: string;
  readonly uptime_s: number;
  readonly in_flight: number;
  readonly connections: number;
  readonly upstreams: readonly UpstreamStatus[];
  readonly traffic: TrafficSummary & { readonly step_s: number; readonly series: readonly TrafficPoint[] };
  readonly rate_limit: GatewayMetrics['rateLimitCounts'];
  readonly auth: GatewayMetrics['authCounts'];
  readonly store_errors: GatewayMetrics['storeErrorCounts'];
}

/** Seconds per chart point. */
const STEP_S = 5;

/** Builds the status body from live objects; cheap enough to run on every dashboard refresh (2 s). */
export function buildStatus(metrics: GatewayMetrics, backends: readonly BackendView[], startedAt: number): StatusBody {
  const live = metrics.live;
  return {
    generated_at: new Date().toISOString(),
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    in_flight: live.inFlight,
    connections: live.connections,
    upstreams: backends.map((b) => ({
      name: b.name,
      address: b.label,
      health: b.health,
      weight: b.weight,
      in_flight: b.inflight,
      requests: b.requests,
      failures: b.failures,
    })),
    traffic: { ...metrics.recent.summary(60), step_s: STEP_S, series: metrics.recent.series(STEP_S) },
    rate_limit: { ...metrics.rateLimitCounts },
    auth: { ...metrics.authCounts },
    store_errors: { ...metrics.storeErrorCounts },
  };
}
