// A gateway whose every Redis path a test can watch while its own redis-server answers with errors (READONLY, OOM,
// NOPERM, MISCONF, BUSY, NOAUTH, NOSCRIPT) or loses its data: auth on (SQLite) with an account, the limiter on for
// proxied routes (on_store_error allow, the default) and for a named policy, the auth API's limits (deny, the
// default), the admin listener for /ready; and a node-redis client of the test's own to break and mend the server.
// The server is ours, on a free port with a scratch directory (BGSAVE writes there), never the shared one on 6379.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { createClient as createRedisClient } from '@redis/client';
import { startBackend } from './backends.js';
import { startInProcess, type InProcessGateway } from './gateway.js';
import { createClient, type TestClient } from './http.js';
import { bearer, FAST_ARGON2, register, TEST_SECRET, type SessionBody } from './auth-gateway.js';
import { waitFor } from './prometheus.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';
import { freePort } from './ports.js';

/** What a client meets on each Redis path at one moment. */
export interface Observed {
  /** GET /ready: status and the redis check. */
  readonly ready: number;
  readonly readyRedis: string | undefined;
  /** A proxied route under the default policy (no token): status, and RateLimit-Remaining when the limiter decided. */
  readonly proxied: number;
  readonly proxiedRemaining: string | undefined;
  /** A proxied route under the named policy `tight`. */
  readonly policy: number;
  readonly policyRemaining: string | undefined;
  /** POST /auth/login (the auth API's limiter, then the login throttle): status, code, Retry-After. */
  readonly login: number;
  readonly loginCode: string | undefined;
  readonly loginRetryAfter: string | undefined;
  /** A proxied route that needs the account's access token (the revocation check, then the user's bucket). */
  readonly authed: number;
  readonly authedCode: string | undefined;
}

export interface RedisErrorStack {
  /** The server now (a new process after `restart`), on the same port throughout. */
  readonly redis: RedisProcess;
  /** The test's own connection to the server (the default user, as the gateway's). */
  readonly admin: { sendCommand(args: string[]): Promise<unknown> };
  readonly gw: InProcessGateway;
  readonly client: TestClient;
  readonly account: SessionBody & { password: string };
  /** The server's scratch directory (its `dir`: a BGSAVE writes there). */
  readonly dir: string;
  observe(): Promise<Observed>;
  /** Waits until /ready says `status` (polled every 50 ms). */
  untilReady(status: 200 | 503, what: string, timeoutMs?: number): Promise<void>;
  /** Every log line as written, JSON text, for what must never be in one. */
  logText(): string;
  /**
   * Kills the server (SIGKILL) and starts it again on its port: empty (a restart without persistence), or with what
   * its last SAVE wrote to `dir`, which it loads first. `args` are added to the server's command line; `loading`
   * resolves at its first answer, `-LOADING` while it loads the dataset (returned), instead of at its first PONG.
   */
  restart(options?: { readonly args?: readonly string[]; readonly loading?: boolean }): Promise<string>;
}

/** Starts the stack; everything is stopped in `after` hooks, the server even when a test fails. */
export async function startRedisErrorStack(name: string, gatewayExtra: Record<string, unknown> = {}): Promise<RedisErrorStack> {
  const dir = scratchDir(`review9-${name}`);
  after(() => dir.remove());
  const port = await freePort();
  const spawnServer = (args: readonly string[] = [], answered?: (reply: string) => boolean) =>
    RedisProcess.spawn(
      port,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, ...args],
      `${dir.path}/redis.log`,
      answered,
    );
  let redis = await spawnServer();
  after(() => redis.kill());
  const admin = createRedisClient({ url: redis.url, disableOfflineQueue: false });
  admin.on('error', () => undefined);
  await admin.connect();
  after(() => admin.destroy());
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const gw = await startInProcess({
    redis: { url: redis.url, key_prefix: `portcullis-test:review9-${name}:`, command_timeout: '500ms' },
    jwt: { secret: TEST_SECRET },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [
      { name: 'open', match: { path_prefix: '/a' }, service: 'api', auth: 'off' },
      { name: 'tight', match: { path_prefix: '/p' }, service: 'api', auth: 'off', rate_limit: 'tight' },
      { name: 'me', match: { path_prefix: '/me' }, service: 'api' },
    ],
    middleware: {
      auth: { enabled: true, argon2: FAST_ARGON2 },
      rate_limit: {
        enabled: true,
        // One token a minute: every request's count is exact (no refill between two looks) however slow the machine.
        requests_per_minute: 1,
        burst_size: 1_000,
        policies: { tight: { requests_per_minute: 1, burst_size: 1_000 } },
        // Roomy auth limits: the test counts outcomes, not guesses.
        auth: { requests_per_minute: 6_000, burst_size: 1_000, per_email_address: { requests_per_minute: 6_000, burst_size: 1_000 }, per_email: { requests_per_minute: 6_000, burst_size: 1_000 } },
      },
    },
    ...gatewayExtra,
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());

  const untilReady = (status: 200 | 503, what: string, timeoutMs = 10_000) =>
    waitFor(what, async () => (await client.request(`${gw.adminUrl}/ready`)).status === status, timeoutMs);
  await untilReady(200, 'the gateway to reach its Redis');
  // Its marker too (src/kv/redis.ts dataLost): a server that refuses writes before the gateway has read its marker
  // once is one whose revocations it cannot know (it may hold another dataset), and every token check then meets
  // the store-error policy (503) instead of the answer the refusal's own test expects. The first read can come a
  // second after the start (before Redis answered): a test that refused writes sooner failed now and then.
  const marker = `portcullis-test:review9-${name}:kept:{kept}`;
  await waitFor('the gateway to write its marker', async () => (await admin.exists(marker)) === 1, 5_000);
  const account = await register({ client, url: gw.url });

  const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
  const codeOf = (text: string) => {
    try {
      return (JSON.parse(text) as { code?: string }).code;
    } catch {
      return undefined;
    }
  };
  return {
    get redis() {
      return redis;
    },
    admin,
    gw,
    client,
    account,
    dir: dir.path,
    untilReady,
    logText: () => gw.logs.map((l) => JSON.stringify(l)).join('\n'),
    async restart(options = {}) {
      await redis.kill();
      let first = '';
      redis = await spawnServer(options.args, (reply) => {
        first = reply;
        return options.loading === true ? reply === '+PONG' || reply.startsWith('-LOADING') : reply === '+PONG';
      });
      return first;
    },
    async observe() {
      const ready = await client.request(`${gw.adminUrl}/ready`);
      const proxied = await client.request(`${gw.url}/a`);
      const policy = await client.request(`${gw.url}/p/x`);
      const login = await client.request(`${gw.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: account.email, password: account.password }),
      });
      const authed = await client.request(`${gw.url}/me`, { headers: bearer(account.access_token) });
      return {
        ready: ready.status,
        readyRedis: (JSON.parse(ready.text) as { checks?: Record<string, string> }).checks?.redis,
        proxied: proxied.status,
        proxiedRemaining: header(proxied.headers['ratelimit-remaining']),
        policy: policy.status,
        policyRemaining: header(policy.headers['ratelimit-remaining']),
        login: login.status,
        loginCode: codeOf(login.text),
        loginRetryAfter: header(login.headers['retry-after']),
        authed: authed.status,
        authedCode: codeOf(authed.text),
      };
    },
  };
}

/** Everything decided through Redis: ready, both limiters counting, login and the token served. */
export function assertHealthy(seen: Observed, when: string): void {
  assert.equal(seen.ready, 200, `${when}: /ready`);
  assert.equal(seen.proxied, 200, `${when}: proxied`);
  assert.match(String(seen.proxiedRemaining), /^\d+$/, `${when}: the default policy decided through Redis`);
  assert.equal(seen.policy, 200, `${when}: policy route`);
  assert.match(String(seen.policyRemaining), /^\d+$/, `${when}: the named policy decided through Redis`);
  assert.equal(seen.login, 200, `${when}: login`);
  assert.equal(seen.authed, 200, `${when}: a token`);
}

/**
 * Redis refuses what the gateway asks of it: /ready 503 naming redis; proxied routes (default and named policy) let
 * through uncounted (on_store_error allow: no RateLimit headers); the auth API refused (its deny: 503 kv_unavailable
 * with Retry-After); a token served when the revocations can still be read (`readsWork`), else 503 (auth's deny).
 */
export function assertRefusing(seen: Observed, when: string, readsWork: boolean): void {
  assert.equal(seen.ready, 503, `${when}: /ready must not say ready while Redis refuses`);
  assert.equal(seen.readyRedis, 'down', when);
  assert.equal(seen.proxied, 200, `${when}: proxied, fail-open`);
  assert.equal(seen.proxiedRemaining, undefined, `${when}: uncounted`);
  assert.equal(seen.policy, 200, `${when}: named policy, fail-open`);
  assert.equal(seen.policyRemaining, undefined, `${when}: uncounted`);
  assert.equal(seen.login, 503, `${when}: login fails closed`);
  assert.equal(seen.loginCode, 'kv_unavailable', when);
  assert.match(String(seen.loginRetryAfter), /^\d+$/, `${when}: Retry-After`);
  if (readsWork) assert.equal(seen.authed, 200, `${when}: the revocation list is still read`);
  else {
    assert.equal(seen.authed, 503, `${when}: revocations unreadable, auth's deny`);
    assert.equal(seen.authedCode, 'kv_unavailable', when);
  }
}

/** No log line carries the server's own words, its address, or a stack. */
export function assertQuietLogs(stack: RedisErrorStack, serverWords: readonly RegExp[]): void {
  const text = stack.logText();
  assert.ok(!text.includes('    at '), 'a stack trace in the log');
  assert.ok(!text.includes(`:${stack.redis.port}`), "the server's address in the log");
  for (const words of serverWords) assert.doesNotMatch(text, words, "the server's own words in the log");
}
