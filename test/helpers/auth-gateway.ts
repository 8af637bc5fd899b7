// Shared setup for the auth end-to-end suites: a real gateway with auth on in front of an echo backend, plus checks.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after } from 'node:test';
import { startBackend, type EchoBody, type TestBackend } from './backends.js';
import { startInProcess, tempDataDir, upstreams, type ConfigInput, type InProcessGateway } from './gateway.js';
import { createClient, type TestClient, type TestResponse } from './http.js';

/** The HS256 secret the suites configure (so a test can forge tokens with it, or with a wrong one). */
export const TEST_SECRET = 'portcullis-e2e-secret-0123456789-abcdefghij';

/** The cheapest argon2 the schema allows: these suites test the HTTP surface, not the hash cost. */
export const FAST_ARGON2 = { memory_kib: 1024, iterations: 1, parallelism: 1 } as const;

/** The README's credentials. */
export const README_USER = { email: 'user@example.com', password: 'SecurePass123!' } as const;

/** Overrides merged into the test config. */
export interface AuthStackOptions {
  /** Merged into `jwt` (over the test secret). */
  readonly jwt?: ConfigInput;
  /** Merged into `middleware.auth` (over enabled + fast argon2). */
  readonly auth?: ConfigInput;
  readonly database?: ConfigInput;
  /** The `redis` section (revocations and buckets in Redis); default: the memory store. */
  readonly redis?: ConfigInput;
  /**
   * `middleware.rate_limit`; default `{ auth: { enabled: false } }`. These suites make many /auth/* calls (and send
   * bad tokens) a second from one address, 127.0.0.1, which the brute-force protections, on with auth, would answer
   * 429 after five; those protections have suites of their own (login-throttle, ratelimit-keys).
   */
  readonly rateLimit?: ConfigInput;
  /** The `admin` section; default: the admin listener off. */
  readonly admin?: ConfigInput;
  /** The `routes` section; default: none (the gateway's own default route). */
  readonly routes?: readonly ConfigInput[];
}

/** What startAuthStack gives middleware.rate_limit unless told otherwise: the auth protections off (see rateLimit). */
export const AUTH_PROTECTIONS_OFF: ConfigInput = { auth: { enabled: false } };

/** A running gateway + echo backend + client; close() stops all three. */
export interface AuthStack {
  readonly gw: InProcessGateway;
  readonly backend: TestBackend;
  readonly client: TestClient;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts an echo backend and a gateway with auth enabled in front of it (SQLite in a temp dir unless `database`). */
export async function startAuthStack(options: AuthStackOptions = {}): Promise<AuthStack> {
  const backend = await startBackend('echo');
  let gw: InProcessGateway;
  try {
    gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET, ...options.jwt },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2, ...options.auth }, rate_limit: options.rateLimit ?? AUTH_PROTECTIONS_OFF },
      ...(options.database ? { database: options.database } : {}),
      ...(options.redis ? { redis: options.redis } : {}),
      admin: options.admin ?? { enabled: false },
      ...(options.routes ? { routes: options.routes } : {}),
    });
  } catch (err) {
    await backend.stop();
    throw err;
  }
  const client = createClient();
  return {
    gw,
    backend,
    client,
    url: gw.url,
    async close() {
      await client.close();
      await gw.close();
      await backend.stop();
    },
  };
}

/** The body of a 201 register / 200 login. */
export interface SessionBody {
  user_id: string;
  email: string;
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

/** The body of a 200 refresh. */
export type PairBody = Omit<SessionBody, 'user_id' | 'email'>;

/** A fresh, unique, valid email (the store is shared between tests of a file). */
export function uniqueEmail(tag = 'u'): string {
  return `${tag}-${randomBytes(5).toString('hex')}@example.com`;
}

/** An Authorization header for `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Asserts a register/login answer: status, the README's field set, a uuid user id, and a JWT access token. */
export function assertSession(res: TestResponse, status: number, email: string): SessionBody {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json<SessionBody>();
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'email', 'expires_in', 'refresh_token', 'token_type', 'user_id']);
  assert.match(body.user_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(body.email, email);
  assert.equal(body.token_type, 'Bearer');
  assert.equal(typeof body.expires_in, 'number');
  assert.match(body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.ok(body.refresh_token.length >= 32);
  assert.notEqual(body.refresh_token, body.access_token);
  return body;
}

/** Asserts a 200 refresh answer and returns the new pair. */
export function assertPair(res: TestResponse): PairBody {
  assert.equal(res.status, 200, res.text);
  const body = res.json<PairBody>();
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type']);
  assert.equal(body.token_type, 'Bearer');
  return body;
}

/** Words that would betray SQL text in a body (matched as whole words, case-insensitive). */
const SQL_WORDS = /\b(select|insert|update|delete|from|where|constraint|sqlite|postgres|relation|duplicate key|violates)\b/i;

/**
 * Asserts an error answer the gateway made: `status`, a JSON `{error, request_id, details?}` body whose request id
 * matches the X-Request-Id header, and nothing that must never reach a client: stack frames, SQL, or any of `secrets`
 * (tokens, passwords sent in the request).
 */
export function assertSafeError(res: TestResponse, status: number, secrets: readonly string[] = []): Record<string, unknown> {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json();
  assert.equal(typeof body.error, 'string');
  assert.equal(body.request_id, res.headers['x-request-id']);
  for (const key of Object.keys(body)) assert.ok(['error', 'code', 'request_id', 'details'].includes(key), `unexpected field ${key}`);
  assert.ok(!res.text.includes('    at '), `stack trace in ${res.text}`);
  assert.doesNotMatch(res.text, SQL_WORDS);
  for (const secret of secrets) assert.ok(!res.text.includes(secret), 'a secret from the request was echoed');
  return body;
}

/** Registers a fresh user through the gateway; returns the session and the password used. */
export async function register(stack: Pick<AuthStack, 'client' | 'url'>, email = uniqueEmail()): Promise<SessionBody & { password: string }> {
  const password = `Pw-${randomBytes(6).toString('hex')}`;
  const res = await stack.client.postJson(`${stack.url}/auth/register`, { email, password });
  return { ...assertSession(res, 201, email), password };
}

/** GET through the gateway to the echo backend; returns the response and, on 200, the headers the backend saw. */
export async function proxiedGet(
  stack: Pick<AuthStack, 'client' | 'url'>,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ res: TestResponse; upstream: EchoBody['headers'] | undefined }> {
  const res = await stack.client.request(`${stack.url}${path}`, { headers });
  const upstream = res.status === 200 && res.headers['x-backend'] === 'echo' ? res.json<EchoBody>().headers : undefined;
  return { res, upstream };
}

/**
 * Auth gateways on one data dir and one user store (`database`, as a suite's config gives it), in front of
 * `upstreamPort`, with no redis section: revocations live in each gateway's memory, as in the embedded default. For
 * suites that restart a gateway or run several on one store. Registers an after hook in the calling describe() that
 * stops every gateway started and removes the data dir (InProcessGateway.close() would remove it at the first stop).
 */
export function memoryStoreGateways(
  database: () => Record<string, unknown>,
  upstreamPort: () => number,
): (extra?: ConfigInput) => Promise<InProcessGateway> {
  const dataDir = tempDataDir();
  const gateways: InProcessGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.gateway.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });
  return async (extra = {}) => {
    const gw = await startInProcess(
      {
        database: database(),
        load_balancing: { upstreams: upstreams([upstreamPort()]) },
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
        admin: { enabled: false },
        ...extra,
      },
      dataDir,
    );
    gateways.push(gw);
    return gw;
  };
}
