// A real HTTP server running only the auth phases (routes + authenticate), for the auth unit tests; no proxying.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import { toGatewayError } from '../../src/errors.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { TrustedProxies } from '../../src/pipeline/client-address.js';
import { RequestContext } from '../../src/pipeline/context.js';
import type { UpstreamHeaders } from '../../src/pipeline/phase.js';
import { sendError, sendJson } from '../../src/pipeline/reply.js';
import { openSqliteUserStore } from '../../src/store/sqlite.js';
import type { UserStore } from '../../src/store/user-store.js';
import { setupAuth, type AuthFeature } from '../../src/auth/setup.js';
import type { ThrottleLogin } from '../../src/auth/routes.js';

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

/**
 * Starts a server on port 0. Route class 'auth' goes to the auth routes; anything else runs the authenticate phase
 * and, when it continues, answers 200 with `{ user, headers }`: the headers an upstream would have received.
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
  const trusted = new TrustedProxies([]);
  const server: Server = createServer((req, res) => {
    const ctx = new RequestContext(req, res, trusted, () => {}, performance.now(), false);
    void (async () => {
      try {
        if (ctx.routeClass === 'auth') {
          await feature.routes.onRequest!(ctx);
          return;
        }
        if (feature.authenticate.onRequest && (await feature.authenticate.onRequest(ctx)) === 'responded') return;
        const headers: UpstreamHeaders = {};
        for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = value;
        feature.authenticate.onUpstreamRequest!(ctx, headers);
        sendJson(ctx, 200, { user: ctx.user ?? null, headers });
      } catch (err) {
        sendError(ctx, toGatewayError(err));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    store,
    feature,
    config,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (!options.store) await store.close();
      if (!options.kv) await kv.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
