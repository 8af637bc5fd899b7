// Wires the optional features (auth, rate limit, metrics, admin) into phase lists; part of the composition root.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Phase } from './pipeline/phase.js';
import type { ServiceRegistry } from './balancer/registry.js';
import type { UserStore } from './store/user-store.js';
import type { Server, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { GatewayMetrics } from './observability/metrics.js';
import { NO_ROUTE_NAME } from './compose/route-table.js';
import type { AdminServer, ReloadResult } from './admin/server.js';
import { acceptingCheck, pingCheck, upstreamsCheck, type ReadinessCheck } from './admin/readiness.js';
import { StoreUnavailableError } from './store/user-store.js';
import { openUserStore } from './store/open.js';
import { CHANGE_LOG_RETENTION_MS, SessionJanitor } from './store/janitor.js';
import { CountedKvStore } from './kv/counted.js';
import type { KvStore } from './kv/kv-store.js';
import { openKvStore, usesRedis } from './kv/open.js';
import { createRateLimitPhase, type RateLimitPhase } from './ratelimit/phase.js';
import type { AuthFeature } from './auth/setup.js';
import type { ConfigError } from './config/config-error.js';
import { createAuthenticatePhase, type AuthFailurePenalty, type AuthMode } from './auth/phase.js';
import type { RouteView } from './admin/status.js';
import { acceptedMethods } from './auth/credentials.js';
import type { Tracing } from './observability/tracing/index.js';
import { traceAuth, traceStore } from './observability/tracing/instrument.js';
import { setupIdentity, type IdentityFeature } from './identity/setup.js';
import type { CertificateStatus } from './tls/store.js';
import { tlsPhases } from './tls/setup.js';

/** The features' contribution to the routes' phase lists, plus their lifecycle. */
export interface Features {
  /**
   * The authenticate phase for a route's mode. Every mode strips client-sent identity headers; `penalize` counts a
   * failed authentication against the client address's bucket.
   */
  authenticate(mode: AuthMode, penalize?: AuthFailurePenalty, methods?: readonly ('jwt' | 'api_key')[]): Phase;
  /**
   * The limiter of a route's `rate_limit`: "default" (undefined while middleware.rate_limit.enabled is false),
   * "off" (undefined), or a named policy (always on). Read again after each reconfigure.
   */
  limiter(policy: string): RateLimitPhase | undefined;
  /** The auth API's phases (its stricter limit, then /auth/* and the JWKS); undefined when auth is off. */
  readonly authApi: readonly Phase[] | undefined;
  /** Phases that only observe (metrics; tracing when on), in every route's list. */
  readonly observers: readonly Phase[];
  /** The shared key-value store and the metrics registry, for the plugins' api.store and api.metrics. */
  readonly kv: KvStore;
  readonly registry: Registry;
  /**
   * Starts the admin listener; resolves to its port, or undefined when disabled. `connectionCap`: the per-client
   * connection cap's 'connection' listener for it (connection-limit.ts), owned by server.ts with the trusted proxies.
   */
  startAdmin(connectionCap?: (socket: Socket) => void): Promise<number | undefined>;
  /** Counts the proxy server's open connections and in-flight requests (metrics); called once by server.ts. */
  watch(server: Server, inFlight: () => number): void;
  /** Applies the reloadable settings of a new config (rate limits and policies). */
  reconfigure(config: Config): void;
  /** The fingerprint of the JWT keys loaded at start (auth/keys.ts keysFingerprint); undefined with auth off. */
  readonly keysFingerprint: string | undefined;
  /** For a reload: a ConfigError when the JWT key files now hold other keys than those loaded at start. */
  keysChangedOnDisk(): Promise<ConfigError | undefined>;
  /**
   * Drops the metric series of the routes, services and upstreams the running config no longer has; called by a
   * reload once its route table and services are in place (GatewayMetrics.retain).
   */
  retainMetrics(): void;
  close(): Promise<void>;
}

export interface FeatureDeps {
  readonly logger: Logger;
  /** Stores, token checks and password hashing get child spans when tracing is on. */
  readonly tracing: Tracing;
  readonly dataDir: string;
  /** The running services (read on every scrape and status request, so a reload's set shows). */
  readonly services: () => ServiceRegistry;
  /** The user routes of the running table, for the admin status. */
  readonly routes: () => readonly RouteView[];
  /** The proxy listener's certificates (names, expiry) for /api/status and /metrics; empty without TLS. */
  readonly certificates: () => readonly CertificateStatus[];
  readonly adminEnabled: boolean;
  /** True once the gateway is stopping (readiness turns 503). */
  readonly isDraining: () => boolean;
  /** POST /reload on the admin port: re-reads the config file and applies it (as SIGHUP does). */
  readonly reload?: () => Promise<ReloadResult>;
}

/** Opens the user store `portcullis migrate` and start-up use (SQLite or PostgreSQL, migrated). */
export { openUserStore } from './store/open.js';

/**
 * Counts user-store outages for the metrics without touching the adapters: a failed call is reported, then
 * rethrown. A Proxy is fine here (register, login, refresh: a few calls per second); the KV store, which is on
 * the proxied path, has an explicit decorator instead (kv/counted.ts).
 */
function countFailures<T extends object>(target: T, onFailure: () => void): T {
  return new Proxy(target, {
    get(obj, key, receiver) {
      const value: unknown = Reflect.get(obj, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(obj, args);
        if (result instanceof Promise) {
          return result.catch((err: unknown) => {
            if (err instanceof StoreUnavailableError) onFailure();
            throw err;
          });
        }
        return result;
      };
    },
  });
}

/** Opens the stores the config asks for and builds the features' phases. */
export async function openFeatures(initial: Config, deps: FeatureDeps): Promise<Features> {
  const { logger } = deps;
  let config = initial;
  const { tracing } = deps;
  const metrics = new GatewayMetrics(() => deps.services().backends, { droppedSpans: () => tracing.droppedSpans() });
  // Every route name a request can be counted under (compose/route-table.ts): the gateway's own, then the config's.
  const routeNames = (c: Config) =>
    ['health', 'auth', NO_ROUTE_NAME, c.routes.length === 0 ? 'proxy' : '', ...c.routes.map((r) => r.name)].filter((n) => n !== '');
  const retainMetrics = () => {
    const services = deps.services();
    metrics.retain({ routes: routeNames(config), services: services.all.map((s) => s.name), upstreams: services.backends.map((b) => b.label) });
  };
  retainMetrics();
  const readiness: ReadinessCheck[] = [upstreamsCheck({ hasHealthy: () => deps.services().hasHealthy() }), acceptingCheck(deps.isDraining)];
  metrics.watchCertificates(deps.certificates);
  const authOn = config.middleware.auth.enabled;

  // Always opened (a reload may switch the limiter on); the memory store costs nothing until used.
  const kv = traceStore(
    new CountedKvStore(await openKvStore(config.redis, () => metrics.recordUnreplicatedRevocation()), () => metrics.recordStoreError('redis')),
    tracing,
    'kv',
    usesRedis(config.redis) ? 'redis' : 'memory',
  );
  // Not PING: a Redis that answers but refuses writes (a replica, maxmemory) cannot serve the gateway (KvStore.ready).
  if (usesRedis(config.redis)) readiness.push(pingCheck('redis', () => kv.ready()));
  // The default policy's limiter; while rate_limit.enabled is off it only holds the failed-auth penalty (or nothing
  // with rate_limit.auth.enabled off too).
  const limiterFor = (c: Config) =>
    createRateLimitPhase({ config: c.middleware.rate_limit, store: kv, logger, events: metrics.rateLimitEvents });
  /** One limiter per named policy, rebuilt with the config (a policy's buckets are shared by the routes naming it). */
  const policiesFor = (c: Config) =>
    new Map(
      Object.entries(c.middleware.rate_limit.policies).map(([name, rule]) => [
        name,
        createRateLimitPhase({
          config: { ...c.middleware.rate_limit, enabled: true },
          scope: { kind: 'policy', name, rule },
          store: kv,
          logger,
          events: metrics.rateLimitEvents,
        }),
      ]),
    );
  /** The auth API's limiter and login throttle: on with auth, whatever rate_limit.enabled says (rate_limit.auth.enabled). */
  const authLimiterFor = (c: Config) =>
    createRateLimitPhase({ config: c.middleware.rate_limit, scope: { kind: 'auth' }, store: kv, logger, events: metrics.rateLimitEvents });
  let limiter = limiterFor(config);
  let policies = policiesFor(config);
  let authLimiter = authLimiterFor(config);
  let store: UserStore | undefined;
  let janitor: SessionJanitor | undefined;
  let auth: AuthFeature | undefined;
  let identity: IdentityFeature | undefined;
  try {
    if (authOn) {
      store = traceStore(
        countFailures(await openUserStore(config.database, deps.dataDir, logger), () => metrics.recordStoreError('user_store')),
        tracing,
        'user_store',
        config.database.url === '' ? 'sqlite' : 'postgresql',
      );
      const userStore = store;
      readiness.unshift(pingCheck('user_store', () => userStore.ping()));
      const { setupAuth } = await import('./auth/setup.js');
      auth = await setupAuth({
        config,
        dataDir: deps.dataDir,
        store,
        kv,
        logger,
        events: metrics.authEvents,
        // Resolved per call, so a reload's new limiter is used.
        throttleLogin: (ctx, email) => authLimiter.throttleLogin(ctx, email),
        refundLogin: (ctx) => authLimiter.refundLogin(ctx),
        // The running config's, so a reload's value applies to the next /auth/* body.
        requestBodyChunkMs: () => config.server.timeouts.request_body_chunk,
        instrument: traceAuth(tracing),
      });
      janitor = new SessionJanitor({
        store,
        intervalMs: config.middleware.auth.session_cleanup_interval,
        changeRetentionMs: Math.max(CHANGE_LOG_RETENTION_MS, auth.tokens.acceptWindowMs),
        tokenRevocationRetentionMs: auth.tokens.acceptWindowMs,
        logger,
      });
      janitor.start();
      identity = await setupIdentity({ auth, store, kv, metrics, logger });
    }
  } catch (err) {
    await identity?.close().catch(() => undefined);
    await janitor?.stop();
    await store?.close().catch(() => undefined);
    await kv.close().catch(() => undefined);
    throw err;
  }

  let admin: AdminServer | undefined;
  return {
    authenticate(mode, penalize, methods) {
      // Auth off (or a route with auth: off): the phase only strips client-sent identity headers.
      if (auth === undefined || mode === 'off') return createAuthenticatePhase({ config: config.middleware.auth, logger, mode: 'off' });
      // A route without a limiter (rate_limit.enabled off) still penalizes failed authentications, on the default
      // policy's address bucket: an auth protection, on while middleware.rate_limit.auth.enabled is.
      const penalty = penalize ?? limiter.penalize;
      return auth.authenticateFor(mode, penalty, config.middleware.auth, methods ? acceptedMethods(methods) : undefined);
    },
    limiter(policy) {
      if (policy === 'off') return undefined;
      if (policy === 'default') return config.middleware.rate_limit.enabled ? limiter : undefined;
      return policies.get(policy);
    },
    get authApi() {
      return auth ? [authLimiter, auth.routes] : undefined;
    },
    // HSTS (tls/setup.ts) rides with the observers: a response filter every route gets.
    observers: [...(tracing.phase ? [metrics.phase, tracing.phase] : [metrics.phase]), ...tlsPhases(() => config)],
    kv,
    registry: metrics.registry,
    async startAdmin(connectionCap) {
      if (!config.admin.enabled || !deps.adminEnabled) return undefined;
      const [{ startAdminServer }, { loadDashboard }] = await Promise.all([import('./admin/server.js'), import('./admin/assets.js')]);
      admin = await startAdminServer(config.admin.listen_host, config.admin.listen_port, {
        logger,
        metrics,
        backends: () => deps.services().backends,
        routes: deps.routes,
        certificates: deps.certificates,
        readiness,
        reload: deps.reload,
        dashboard: loadDashboard(),
        token: config.admin.token,
        maxConnections: config.server.max_connections,
        ...(connectionCap ? { connectionCap } : {}),
        ...(identity ? { identityRoutes: identity.routes, identityStatus: () => identity!.status() } : {}),
      });
      return admin.port;
    },
    watch: (server, inFlight) => metrics.watch(server, inFlight),
    keysFingerprint: auth?.keysFingerprint,
    keysChangedOnDisk: async () => auth?.keysChangedOnDisk(),
    reconfigure(next: Config) {
      config = next;
      admin?.setMaxConnections(next.server.max_connections);
      limiter = limiterFor(next);
      policies = policiesFor(next);
      authLimiter = authLimiterFor(next);
    },
    retainMetrics,
    async close() {
      await admin?.close();
      await identity?.close();
      await janitor?.stop();
      await Promise.allSettled([store?.close(), kv.close()]);
    },
  };
}
