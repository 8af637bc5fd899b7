// Redis failure policy through the gateway: our own redis-server is killed mid-test, then restarted on its port.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, IN_CI, type TestResponse } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { authConfig, bearer, freePort, rateLimitConfig, redisServerInstalled, register, runId, ThrowawayRedis } from './ratelimit-helpers.js';

// This suite runs its own redis-server (never the shared one on 6379, which other suites use).
const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: the outage suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

/** Generous bound for "no hang": a dead Redis fails commands at once, a stalled one within command_timeout (500 ms). */
const NO_HANG_MS = 2_000;

/** A throwaway Redis and a gateway pointed at it; both stopped after the test. */
async function setup(middleware: Record<string, unknown>): Promise<{ redis: ThrowawayRedis; gw: InProcessGateway }> {
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  const gw = await startInProcess({
    redis: { url: redis.url, key_prefix: `portcullis-test:outage:${runId()}:` },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware,
  });
  after(async () => {
    await gw.close();
    await redis.kill();
  });
  // The store connects in the background: wait until it answers before the "healthy" part of the test.
  await waitFor('the gateway to reach redis', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 10_000);
  return { redis, gw };
}

/** Sends a request and measures it. */
async function timed(send: () => Promise<TestResponse>): Promise<{ res: TestResponse; ms: number }> {
  const started = performance.now();
  const res = await send();
  return { res, ms: performance.now() - started };
}

const messages = (gw: InProcessGateway, msg: string) => gw.logs.filter((l) => l.msg === msg);

test('on_store_error allow (default): requests keep passing quickly, the outage is logged once, recovery is automatic', { skip }, async () => {
  const { redis, gw } = await setup({ rate_limit: rateLimitConfig() });
  const healthy = await client.request(`${gw.url}/before`);
  assert.equal(healthy.status, 200);
  assert.equal(healthy.headers['ratelimit-remaining'], '9', 'the limiter decides through Redis while it is up');

  await redis.kill();
  const warnsBefore = gw.logs.filter((l) => Number(l.level) >= 40).length;
  for (let i = 0; i < 15; i++) {
    const { res, ms } = await timed(() => client.request(`${gw.url}/during/${i}`));
    assert.equal(res.status, 200, `request ${i} during the outage`);
    assert.ok(ms < NO_HANG_MS, `request ${i} took ${Math.round(ms)} ms`);
    // No decision was made, so no RateLimit headers are invented.
    assert.equal(res.headers['ratelimit-remaining'], undefined);
  }
  // 15 failed decisions, one warning: the transition is logged, not every request.
  const unavailable = messages(gw, 'KV Store Unavailable');
  assert.equal(unavailable.length, 1);
  assert.equal(unavailable[0]!.level, 40, 'logged at warn');
  assert.equal(unavailable[0]!.policy, 'allow');
  assert.equal(gw.logs.filter((l) => Number(l.level) >= 40).length - warnsBefore, 1, 'no other warning per request');

  // Same port, fresh (empty) server: the gateway reconnects by itself and limits again, without a restart.
  await redis.start();
  await waitFor('the limiter to use redis again', async () => (await client.request(`${gw.url}/after`)).headers['ratelimit-limit'] === '10', 10_000);
  // The end is declared at an answer 5 s (the quiet period) after the last failure, so a flapping store stays one
  // outage; then once.
  await waitFor('the recovery line', async () => {
    await client.request(`${gw.url}/after`);
    return messages(gw, 'KV Store Recovered').length > 0;
  }, 15_000);
  await client.request(`${gw.url}/after`);
  assert.equal(messages(gw, 'KV Store Recovered').length, 1, 'the end of the outage is logged once');
  assert.equal(messages(gw, 'KV Store Unavailable').length, 1);
});

test('on_store_error deny: 503 with Retry-After during the outage, 200 again after redis returns', { skip }, async () => {
  const { redis, gw } = await setup({ rate_limit: rateLimitConfig({ on_store_error: 'deny' }) });
  assert.equal((await client.request(`${gw.url}/before`)).status, 200);
  const hitsBefore = backend.hits;

  await redis.kill();
  for (let i = 0; i < 5; i++) {
    const { res, ms } = await timed(() => client.request(`${gw.url}/during/${i}`));
    assert.equal(res.status, 503);
    assert.ok(ms < NO_HANG_MS, `request ${i} took ${Math.round(ms)} ms`);
    assert.equal(res.headers['retry-after'], '1');
    const body = res.json<{ error: string; request_id: string }>();
    assert.equal(body.error, 'Service Unavailable');
    assert.equal(body.request_id, res.headers['x-request-id']);
    assert.doesNotMatch(res.text, /redis|ECONNREFUSED|127\.0\.0\.1/i, 'no internals in the body');
  }
  assert.equal(backend.hits, hitsBefore, 'nothing was proxied while the limiter could not decide');
  assert.equal(messages(gw, 'KV Store Unavailable').length, 1);
  // /health is never limited, so it does not depend on Redis either.
  assert.equal((await client.request(`${gw.url}/health`)).status, 200);

  await redis.start();
  await waitFor('requests to pass again', async () => (await client.request(`${gw.url}/after`)).status === 200, 10_000);
});

test('revocation check (auth on_store_error deny by default): a token is refused with 503 while redis is down, accepted after', { skip }, async () => {
  // Rate limiting off, the auth protections too (their failed-auth penalty would use Redis as well): this is about the
  // revocation list alone. Registering needs no Redis (SQLite user store).
  const { redis, gw } = await setup({ auth: authConfig({ public_paths: ['/public/*'] }), rate_limit: { auth: { enabled: false } } });
  const user = await register(client, gw.url, `outage@revocation-${runId()}.example`);
  assert.equal((await client.request(`${gw.url}/private`, { headers: bearer(user) })).status, 200);

  await redis.kill();
  const { res, ms } = await timed(() => client.request(`${gw.url}/private`, { headers: bearer(user) }));
  // src/auth/phase.ts: when isRevoked cannot be answered and middleware.auth.on_store_error is deny (the default),
  // the request gets 503 KV_UNAVAILABLE with Retry-After: 5, not 401: the token is not known to be bad.
  assert.equal(res.status, 503);
  assert.ok(ms < NO_HANG_MS, `took ${Math.round(ms)} ms`);
  assert.equal(res.headers['retry-after'], '5');
  assert.equal(res.json<{ error: string }>().error, 'Service Unavailable');
  // Requests that need no revocation check are unaffected.
  assert.equal((await client.request(`${gw.url}/public/page`)).status, 200);
  assert.equal((await client.request(`${gw.url}/private`)).status, 401, 'no token is still a plain 401');
  // The outage is logged under deny too (it used to leave no line: the limiter, which logged, was off), once, with
  // why: the connection error's class and code, not "Error", and nothing of the URL.
  for (let i = 0; i < 5; i++) assert.equal((await client.request(`${gw.url}/private`, { headers: bearer(user) })).status, 503);
  const unavailable = messages(gw, 'KV Store Unavailable');
  assert.equal(unavailable.length, 1, JSON.stringify(unavailable));
  assert.equal(unavailable[0]!.source, 'revocation');
  assert.equal(unavailable[0]!.policy, 'deny');
  // The kill drops the open connection first, then each reconnect is refused: whichever the first failure met.
  assert.match(String(unavailable[0]!.connection_error), /^(SocketClosedUnexpectedlyError|Error\((ECONNREFUSED|ECONNRESET)\))$/);
  assert.doesNotMatch(JSON.stringify(unavailable[0]), /redis:\/\/|127\.0\.0\.1|\bat \w+ \(/);

  await redis.start();
  await waitFor('the token to be accepted again', async () => (await client.request(`${gw.url}/private`, { headers: bearer(user) })).status === 200, 10_000);
});
