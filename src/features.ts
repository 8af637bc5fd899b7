// Wires the optional features (auth, rate limit, metrics, admin) into phase lists; part of the composition root.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Phase } from './pipeline/phase.js';
import type { Balancer } from './balancer/balancer.js';
import type { UserStore } from './store/user-store.js';
import type { Server } from 'node:http';
import { GatewayMetrics } from './observability/metrics.js';
import { startAdminServer, type AdminServer, type ReloadResult } from './admin/server.js';
import { loadDashboard } from './admin/assets.js';
import { acceptingCheck, pingCheck, upstreamsCheck, type ReadinessCheck } from './admin/readiness.js';
import { StoreUnavailableError } from './store/user-store.js';
import { openUserStore } from './store/open.js';
import { SessionJanitor } from './store/janitor.js';
import type { KvStore } from './kv/kv-store.js';
import { CountedKvStore } from './kv/counted.js';
import { createMemoryKvStore } from './kv/memory.js';
import { createRedisKvStore } from './kv/redis.js';
import { createRateLimitPhase } from './ratelimit/phase.js';
import { setupAuth, type AuthFeature } from './auth/setup.js';
import { createAuthenticatePhase } from './auth/phase.js';

/** The features' contribution to the pipeline, plus their lifecycle. */
export interface Features {
  /** Request filters of proxied routes, in order (authenticate, then rate limit). */
  readonly proxyPhases: readonly Phase[];
  /** Request filters that run before the auth routes (their stricter rate limit). */
  readonly authPhases: readonly Phase[];
  /** Answers /auth/* and the JWKS; undefined when auth is off (those paths are then proxied). */
  readonly authRoutes: Phase | undefined;
  /** Phases that only observe (metrics). */
  readonly observers: readonly Phase[];
  /** Starts the admin listener; resolves to its port, or undefined when disabled. */
  startAdmin(): Promise<number | undefined>;
  /** Counts the proxy server's open connections and in-flight requests (metrics); called once by server.ts. */
  watch(server: Server, inFlight: () => number): void;
  /** Applies the reloadable settings of a new config (rate limits). */
  reconfigure(config: Config): void;
  close(): Promise<void>;
}

export interface FeatureDeps {
  readonly logger: Logger;
  readonly dataDir: string;
  readonly balancer: Balancer;
  readonly adminEnabled: boolean;
  /** True once the gateway is stopping (readiness turns 503). */
  readonly isDraining: () => boolean;
  /** POST /reload on the admin port: re-reads the config file and applies it (as SIGHUP does). */
  readonly reload?: () => Promise<ReloadResult>;
}

/** Opens the user store `portcullis migrate` and start-up use (SQLite or PostgreSQL, migrated). */
export { openUserStore } from './store/open.js';

/** The shared key-value store: Redis when `redis.url` is set, else the in-process memory store. */
function openKvStore(config: Config): KvStore {
  return config.redis.url === ''
    ? createMemoryKvStore()
    : createRedisKvStore({ url: config.redis.url, commandTimeoutMs: config.redis.command_timeout, keyPrefix: config.redis.key_prefix });
}

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
  const { balancer, logger } = deps;
  let config = initial;
  const metrics = new GatewayMetrics(() => balancer.backends);
  const readiness: ReadinessCheck[] = [upstreamsCheck(balancer), acceptingCheck(deps.isDraining)];
  const authOn = config.middleware.auth.enabled;

  // Always opened (a reload may switch the limiter on); the memory store costs nothing until used.
  const kv = new CountedKvStore(openKvStore(config), () => metrics.recordStoreError('redis'));
  if (config.redis.url !== '') readiness.push(pingCheck('redis', () => kv.ping()));
  const limiterFor = (c: Config) =>
    createRateLimitPhase({ config: c.middleware.rate_limit, store: kv, logger, events: metrics.rateLimitEvents });
  let limiter = limiterFor(config);
  let store: UserStore | undefined;
  let janitor: SessionJanitor | undefined;
  let auth: AuthFeature | undefined;
  let stripIdentity: Phase;
  try {
    if (authOn) {
      store = countFailures(await openUserStore(config.database, deps.dataDir, logger), () => metrics.recordStoreError('user_store'));
      const userStore = store;
      readiness.unshift(pingCheck('user_store', () => userStore.ping()));
      auth = await setupAuth({
        config,
        dataDir: deps.dataDir,
        store,
        kv,
        logger,
        events: metrics.authEvents,
        // Resolved per call, so a reload's new limiter is used.
        throttleLogin: (ctx, email) => limiter.throttleLogin(ctx, email),
      });
      janitor = new SessionJanitor({ store, intervalMs: config.middleware.auth.session_cleanup_interval, logger });
      janitor.start();
      stripIdentity = auth.authenticate;
    } else {
      // Auth off: the phase only strips client-sent identity headers, which no client may set itself.
      stripIdentity = createAuthenticatePhase({ config: config.middleware.auth, logger });
    }
  } catch (err) {
    await store?.close().catch(() => undefined);
    await kv.close().catch(() => undefined);
    throw err;
  }

  let admin: AdminServer | undefined;
  return {
    // Authentication first, then the limit: the limit is keyed by user when the token is valid.
    get proxyPhases() {
      return [stripIdentity, limiter];
    },
    get authPhases() {
      return [limiter];
    },
    authRoutes: auth?.routes,
    observers: [metrics.phase],
    async startAdmin() {
      if (!config.admin.enabled || !deps.adminEnabled) return undefined;
      admin = await startAdminServer(config.admin.listen_host, config.admin.listen_port, {
        logger,
        metrics,
        backends: () => balancer.backends,
        readiness,
        reload: deps.reload,
        dashboard: loadDashboard(),
      });
      return admin.port;
    },
    watch: (server, inFlight) => metrics.watch(server, inFlight),
    reconfigure(next: Config) {
      config = next;
      limiter = limiterFor(next);
    },
    async close() {
      await admin?.close();
      await janitor?.stop();
      await Promise.allSettled([store?.close(), kv.close()]);
    },
  };
}
