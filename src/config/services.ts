// The services of a config: `load_balancing` becomes the service named "default", and every service's upstream
// timeouts are resolved against server.timeouts, so the rest of the gateway reads one shape.
import type { Config, ServiceConfig, UpstreamTlsConfig } from './schema.js';

/** The service `load_balancing` defines, and the target of the implicit catch-all route. */
export const DEFAULT_SERVICE = 'default';

/** A service with every setting resolved (timeouts in milliseconds). */
export interface ResolvedService {
  readonly name: string;
  readonly strategy: ServiceConfig['strategy'];
  readonly upstreams: ServiceConfig['upstreams'];
  readonly retries: number;
  readonly connectionsPerUpstream: number;
  /** Requests per upstream that may wait for a free connection (`queue_limit`). */
  readonly queueLimit: number;
  /** Longest wait for a free connection, ms (`queue_timeout`). */
  readonly queueTimeoutMs: number;
  readonly healthCheck: ServiceConfig['health_check'];
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** TLS and HTTP/2 to the upstreams (proxy/upstream-tls.ts). */
  readonly tls: UpstreamTlsConfig;
  readonly http2: boolean;
  /** Where the service is in the config ("load_balancing", "services.billing"), for error messages. */
  readonly keyPath: string;
}

/** Every service of the config by name, `default` (from load_balancing) first when present. */
export function resolveServices(config: Config): ReadonlyMap<string, ResolvedService> {
  const t = config.server.timeouts;
  const out = new Map<string, ResolvedService>();
  const add = (name: string, s: Omit<ServiceConfig, 'timeouts'> & { timeouts?: ServiceConfig['timeouts'] }) => {
    out.set(name, {
      name,
      strategy: s.strategy,
      upstreams: s.upstreams,
      retries: s.retries,
      connectionsPerUpstream: s.connections_per_upstream,
      queueLimit: s.queue_limit,
      queueTimeoutMs: s.queue_timeout,
      healthCheck: s.health_check,
      connectTimeoutMs: s.timeouts?.upstream_connect ?? t.upstream_connect,
      responseTimeoutMs: s.timeouts?.upstream_response ?? t.upstream_response,
      bodyTimeoutMs: s.timeouts?.upstream_body ?? t.upstream_body,
      tls: s.tls,
      http2: s.http2,
      keyPath: name === DEFAULT_SERVICE && s === config.load_balancing ? 'load_balancing' : `services.${name}`,
    });
  };
  if (config.load_balancing !== undefined) add(DEFAULT_SERVICE, config.load_balancing);
  for (const [name, s] of Object.entries(config.services)) add(name, s);
  return out;
}
