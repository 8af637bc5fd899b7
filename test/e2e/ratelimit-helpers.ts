// Helpers for the rate-limit and scale-out end-to-end suites: service checks, bursts, users, per-run cleanup.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createClient as createRedisClient } from '@redis/client';
import { after } from 'node:test';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import type { TestClient, TestResponse } from '../helpers/http.js';

import { DATABASE_URL } from '../helpers/services.js';

export { DATABASE_URL, requirePostgres } from '../helpers/services.js';
export { REDIS_URL, requireRedis, freePort, ThrowawayRedis, redisServerInstalled } from '../kv/redis-helpers.js';

/** Cheap argon2 so registering and logging in take milliseconds, not a second, on a loaded machine. */
export const FAST_ARGON2 = { memory_kib: 1024, iterations: 1, parallelism: 1 } as const;

/** A fixed 32-byte HS256 secret: gateways that must accept each other's tokens need the same one. */
export const SHARED_JWT_SECRET = 'e2e-shared-secret-0123456789abcdef';

/** A password that passes the default policy. */
export const PASSWORD = 'correct horse battery';

/** A run id for emails and Redis key prefixes, so runs never see each other's users or buckets. */
export function runId(): string {
  return randomBytes(6).toString('hex');
}

/** Deletes the users (and, by cascade, their refresh tokens) whose email ends in `@domain`. */
export async function deletePostgresUsers(domain: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    // The gateway migrates into the public schema (it has no schema setting); only this run's rows are touched.
    await client.query('DELETE FROM public.users WHERE email LIKE $1', [`%@${domain}`]);
  } finally {
    await client.end();
  }
}

/** How many keys under `prefix` the Redis at `url` holds. */
export async function countRedisKeys(url: string, prefix: string): Promise<number> {
  const client = createRedisClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  let count = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) count += keys.length;
  } finally {
    client.destroy();
  }
  return count;
}

/** Deletes every key under `prefix` in the Redis at `url` (SCAN, never FLUSHDB: the server is shared). */
export async function deleteRedisKeys(url: string, prefix: string): Promise<number> {
  const client = createRedisClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  let deleted = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
  } finally {
    client.destroy();
  }
  return deleted;
}

/** Config for auth with fast hashing and the shared secret; `extra` is merged into `middleware.auth`. */
export function authConfig(extra: Record<string, unknown> = {}): ConfigInput {
  return { enabled: true, argon2: FAST_ARGON2, ...extra };
}

/** The rate_limit block. Defaults: rpm 1, burst 10 (see `EXACT_RULE`), auth bucket generous unless overridden. */
export function rateLimitConfig(extra: Record<string, unknown> = {}): ConfigInput {
  return { enabled: true, ...EXACT_RULE, auth: { requests_per_minute: 1, burst_size: 50 }, ...extra };
}

/**
 * An in-process gateway in front of `backendPort` behind a trusted proxy on 127.0.0.1, its rate limit 1 token a
 * minute (nothing refills during a test) with `burst` tokens; `rateLimit` adds to that rule, `middleware` to the
 * rest. Closed after the test file.
 */
export async function behindTrustedProxy(
  backendPort: number,
  burst: number,
  rateLimit: Record<string, unknown> = {},
  middleware: Record<string, unknown> = {},
): Promise<InProcessGateway> {
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'] },
    load_balancing: { upstreams: upstreams([backendPort]) },
    middleware: { rate_limit: rateLimitConfig({ requests_per_minute: 1, burst_size: burst, ...rateLimit }), ...middleware },
  });
  after(() => gw.close());
  return gw;
}

/**
 * requests_per_minute 1, burst 10. One token comes back every 60 s, so 15 requests sent within a minute give
 * exactly 10 passes and 5 rejections however slow the machine is. (At the 100/min a token returns every
 * 0.6 s: a burst taking longer than that would let an 11th through.)
 */
export const EXACT_RULE = { requests_per_minute: 1, burst_size: 10 } as const;

/** Sends `count` requests one after another; returns the responses in order. */
export async function sequence(count: number, send: (i: number) => Promise<TestResponse>): Promise<TestResponse[]> {
  const out: TestResponse[] = [];
  for (let i = 0; i < count; i++) out.push(await send(i));
  return out;
}

/** How many responses have each status, e.g. `{ 200: 10, 429: 5 }`. */
export function statusCounts(responses: readonly { status: number }[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

/** A registered (and logged-in) user. */
export interface Session {
  readonly userId: string;
  readonly email: string;
  readonly accessToken: string;
  readonly refreshToken: string;
}

function session(res: TestResponse, what: string, expected: number): Session {
  assert.equal(res.status, expected, `${what}: ${res.text}`);
  const body = res.json<{ user_id: string; email: string; access_token: string; refresh_token: string }>();
  return { userId: body.user_id, email: body.email, accessToken: body.access_token, refreshToken: body.refresh_token };
}

/** POST /auth/register at `baseUrl`; asserts 201. */
export async function register(client: TestClient, baseUrl: string, email: string): Promise<Session> {
  return session(await client.postJson(`${baseUrl}/auth/register`, { email, password: PASSWORD }), `register ${email}`, 201);
}

/** POST /auth/login at `baseUrl`; asserts 200. */
export async function login(client: TestClient, baseUrl: string, email: string): Promise<Session> {
  return session(await client.postJson(`${baseUrl}/auth/login`, { email, password: PASSWORD }), `login ${email}`, 200);
}

/** The bearer header of a session. */
export function bearer(s: Session): Record<string, string> {
  return { authorization: `Bearer ${s.accessToken}` };
}

/**
 * GET over a brand-new TCP connection that is closed afterwards (no keep-alive agent), so a cluster of workers
 * sharing the port hands each request to the next worker.
 */
export function freshGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { ...headers, connection: 'close' }, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
