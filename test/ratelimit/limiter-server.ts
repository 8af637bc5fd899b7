// Test helper: the rate-limit phases on the real driver. /health is a route without a limiter, /auth/* runs the
// auth-API limiter (and the login throttle when `x-test-email` is sent to /auth/login), anything else runs the
// default-policy limiter and is proxied to an echo backend. `x-test-user` authenticates as that user id, as the
// auth phase would. 127.0.0.1 is a trusted proxy, so X-Forwarded-For picks the client address.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { configSchema } from '../../src/config/schema.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { KvOutageLog, type OutageTiming } from '../../src/kv/outage.js';
import type { Phase } from '../../src/pipeline/phase.js';
import { sendJson } from '../../src/pipeline/reply.js';
import type { RateLimitEvent } from '../../src/ratelimit/events.js';
import { createRateLimitPhase, type RateLimitConfig, type RateLimitPhase } from '../../src/ratelimit/phase.js';
import { CALLER } from '../../src/auth/caller.js';
import { startPipelineServer } from '../helpers/pipeline-server.js';

/** What a test server exposes to its assertions. */
export interface LimiterTestServer {
  readonly url: string;
  /** The default-policy limiter of proxied routes. */
  readonly phase: RateLimitPhase;
  /** The auth API's limiter (stricter rule by address, and the login throttle). */
  readonly authPhase: RateLimitPhase;
  /** JSON log lines written by the limiter. */
  readonly logs: Array<Record<string, unknown>>;
  /** Sink events as "event:route". */
  readonly events: string[];
  /** How many onRequest calls returned a promise (the memory store must make none). */
  asyncDecisions: number;
  close(): Promise<void>;
}

/** The `middleware.rate_limit` slice as the config loader would produce it from `overrides`. */
export function rateLimitConfig(overrides: Record<string, unknown> = {}): RateLimitConfig {
  const parsed = configSchema.parse({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 1 }] },
    middleware: { rate_limit: { enabled: true, ...overrides } },
  });
  return parsed.middleware.rate_limit;
}

/**
 * Both limiters share one outage log of their own (as the gateway's share the store's), made afresh per server so
 * servers started in turn on one store do not inherit each other's outage; `outageTiming` shortens its periods.
 */
export async function startLimiterServer(config: RateLimitConfig, store: KvStore, outageTiming?: OutageTiming): Promise<LimiterTestServer> {
  const logs: Array<Record<string, unknown>> = [];
  const events: string[] = [];
  const logger: Logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
        callback();
      },
    }),
  );
  const sink = { record: (event: RateLimitEvent, route: string) => events.push(`${event}:${route}`) };
  const outage = new KvOutageLog(logger, outageTiming);
  const phase = createRateLimitPhase({ config, store, logger, events: sink, outage });
  const authPhase = createRateLimitPhase({ config, scope: { kind: 'auth' }, store, logger, events: sink, outage });
  const state = { asyncDecisions: 0 };
  // Counts decisions that returned a promise, then hands the result to the driver unchanged.
  const counted = (limiter: RateLimitPhase): Phase =>
    limiter.onRequest === undefined
      ? limiter
      : {
          name: limiter.name,
          onRequest(ctx) {
            const decided = limiter.onRequest!(ctx);
            if (decided instanceof Promise) state.asyncDecisions++;
            return decided;
          },
          onResponse: (ctx, headers) => limiter.onResponse?.(ctx, headers),
          // The auth API's limiter counts a request's pass once it is final, at its logging phase.
          ...(limiter.onLogging ? { onLogging: (ctx: Parameters<NonNullable<Phase['onLogging']>>[0]) => limiter.onLogging!(ctx) } : {}),
        };
  const testUser: Phase = {
    name: 'test-user',
    onRequest(ctx) {
      const user = ctx.req.headers['x-test-user'];
      if (typeof user === 'string') CALLER.set(ctx, { id: user, email: `${user}@example.test`, tokenId: 't', tokenExpiresAt: Date.now() + 60_000 });
      return 'continue';
    },
  };
  const authApi: Phase = {
    name: 'test-auth-api',
    async onRequest(ctx) {
      const email = ctx.req.headers['x-test-email'];
      if (ctx.path === '/auth/login' && typeof email === 'string') {
        if ((await authPhase.throttleLogin(ctx, email)) === 'responded') return 'responded';
      }
      return sendJson(ctx, 200, { ok: true });
    },
  };
  const ok: Phase = { name: 'ok', onRequest: (ctx) => sendJson(ctx, 200, { ok: true }) };
  const server = await startPipelineServer({
    trustedProxies: ['127.0.0.1'],
    logger,
    routes: {
      health: { name: 'health', phases: [ok] },
      auth: { name: 'auth', phases: [counted(authPhase), authApi] },
      proxy: { name: 'proxy', phases: [testUser, counted(phase)], upstream: 'echo' },
    },
    match: (ctx, routes) => (ctx.path === '/health' ? routes.health! : ctx.path.startsWith('/auth/') ? routes.auth! : routes.proxy!),
  });
  return Object.assign(state, { url: server.url, phase, authPhase, logs, events, close: () => server.close() });
}
