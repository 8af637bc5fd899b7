// The auth phases on the real driver: /auth/* and the JWKS go to the auth routes, anything else runs the
// authenticate phase and is proxied to an echo backend that reports what it received. No rate limit, no metrics.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import type { Phase } from '../../src/pipeline/phase.js';
import { openSqliteUserStore } from '../../src/store/sqlite.js';
import type { UserStore } from '../../src/store/user-store.js';
import { setupAuth, type AuthFeature } from '../../src/auth/setup.js';
import type { ThrottleLogin } from '../../src/auth/routes.js';
import { CALLER } from '../../src/auth/caller.js';
import { isAuthPath } from '../../src/auth/paths.js';
import { createAuthenticatePhase } from '../../src/auth/phase.js';
import { startPipelineServer } from './pipeline-server.js';

/** Config overrides for one test server (merged into a minimal valid config). */
export interface AuthServerOptions {
  readonly auth?: Record<string, unknown>;
  readonly jwt?: Record<string, unknown>;
  readonly kv?: KvStore;
  /** Share a store between servers (e.g. to change argon2 parameters); default a fresh SQLite file. */
  readonly store?: UserStore;
  readonly throttleLogin?: ThrottleLogin;
}

export interface AuthServer {
  readonly url: string;
  readonly store: UserStore;
  readonly feature: AuthFeature;
  readonly config: Config;
  close(): Promise<void>;
}

/** Reports the request's caller to the echo backend, which answers `{ user, headers }` through /whoami rewriting. */
const reportCaller: Phase = {
  name: 'report-caller',
  onUpstreamRequest(ctx, headers) {
    headers['x-test-caller'] = JSON.stringify(CALLER.get(ctx) ?? null);
  },
};

/**
 * Starts a server on port 0. /auth/* goes to the auth routes; anything else runs the authenticate phase and, when it
 * continues, is proxied to the echo backend. The response is `{ user, headers }`: the caller the phase set, and the
 * headers the upstream received.
 */
export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const config = configSchema.parse({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 1 }] },
    jwt: { secret: 's'.repeat(32), ...options.jwt },
    middleware: {
      auth: { enabled: true, argon2: { memory_kib: 1024, iterations: 1, parallelism: 1 }, ...options.auth },
    },
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-auth-'));
  const store = options.store ?? openSqliteUserStore({ dataDir });
  await store.migrate();
  const kv = options.kv ?? createMemoryKvStore();
  const logger = pino({ level: 'silent' });
  const feature = await setupAuth({
    config,
    dataDir,
    store,
    kv,
    logger,
    ...(options.throttleLogin ? { throttleLogin: options.throttleLogin } : {}),
  });
  const authenticate = config.middleware.auth.enabled
    ? feature.authenticateFor('required')
    : createAuthenticatePhase({ config: config.middleware.auth, logger, mode: 'off' });
  const server = await startPipelineServer({
    routes: {
      auth: { name: 'auth', phases: [feature.routes] },
      proxy: { name: 'proxy', phases: [authenticate, reportCaller], upstream: 'echo' },
    },
    match: (ctx, routes) => (isAuthPath(ctx.path) ? routes.auth! : routes.proxy!),
  });
  return {
    url: server.url,
    store,
    feature,
    config,
    async close() {
      await server.close();
      if (!options.store) await store.close();
      if (!options.kv) await kv.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
