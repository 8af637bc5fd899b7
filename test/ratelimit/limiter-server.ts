// Test helper: a real HTTP server running only the rate-limit phase, in the order the driver will (not the gateway).
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { configSchema } from '../../src/config/schema.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { TrustedProxies } from '../../src/pipeline/client-address.js';
import { RequestContext, type ResponseDecorator } from '../../src/pipeline/context.js';
import { sendJson } from '../../src/pipeline/reply.js';
import type { RateLimitEvent } from '../../src/ratelimit/events.js';
import { createRateLimitPhase, type RateLimitConfig, type RateLimitPhase } from '../../src/ratelimit/phase.js';

/** What a test server exposes to its assertions. */
export interface LimiterTestServer {
  readonly url: string;
  readonly phase: RateLimitPhase;
  /** JSON log lines written by the limiter. */
  readonly logs: Array<Record<string, unknown>>;
  /** Sink events as "event:routeClass". */
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
 * Starts the server. Request headers drive the scenario: `x-test-user` authenticates as that user id (as the
 * auth phase would), `x-test-email` on /auth/login runs throttleLogin. 127.0.0.1 is a trusted proxy, so
 * X-Forwarded-For picks the client address. A passed request gets 200 through the same response filter a
 * proxied response goes through.
 */
export async function startLimiterServer(config: RateLimitConfig, store: KvStore): Promise<LimiterTestServer> {
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
  const phase = createRateLimitPhase({
    config,
    store,
    logger,
    events: { record: (event: RateLimitEvent, routeClass) => events.push(`${event}:${routeClass}`) },
  });
  const trusted = new TrustedProxies(['127.0.0.1']);
  const decorate: ResponseDecorator = (ctx, headers) => phase.onResponse?.(ctx, headers);
  const state: LimiterTestServer = {
    url: '',
    phase,
    logs,
    events,
    asyncDecisions: 0,
    close: async () => {},
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const ctx = new RequestContext(req, res, trusted, decorate, performance.now(), false);
      const user = req.headers['x-test-user'];
      if (typeof user === 'string') {
        ctx.user = { id: user, email: `${user}@example.test`, tokenId: 't', tokenExpiresAt: Date.now() + 60_000 };
      }
      if (phase.onRequest !== undefined) {
        const decided = phase.onRequest(ctx);
        if (decided instanceof Promise) state.asyncDecisions++;
        if ((await decided) === 'responded') return;
      }
      const email = req.headers['x-test-email'];
      if (ctx.path === '/auth/login' && typeof email === 'string') {
        if ((await phase.throttleLogin(ctx, email)) === 'responded') return;
      }
      sendJson(ctx, 200, { ok: true });
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  });
}
