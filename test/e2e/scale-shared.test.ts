// Two gateway processes on the same PostgreSQL and Redis: users, buckets and revocations are shared between them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import {
  authConfig,
  bearer,
  countRedisKeys,
  DATABASE_URL,
  deletePostgresUsers,
  deleteRedisKeys,
  login,
  rateLimitConfig,
  REDIS_URL,
  register,
  requirePostgres,
  requireRedis,
  runId,
  SHARED_JWT_SECRET,
  statusCounts,
  type Session,
} from './ratelimit-helpers.js';

const id = runId();
const domain = `scale-${id}.example`;
const keyPrefix = `portcullis-test:scale-shared:${id}:`;
// Throws under CI=true when a server is missing (the suite must fail); otherwise a skip reason.
const skip = (await requireRedis()) || (await requirePostgres());

const client = createClient();
let backend: TestBackend;
let a: GatewayProcess;
let b: GatewayProcess;

before(async () => {
  if (skip) return;
  backend = await startBackend('one');
  const config = {
    database: { url: DATABASE_URL, pool_size: 4 },
    redis: { url: REDIS_URL, key_prefix: keyPrefix },
    // Both must sign and verify with the same key (a generated one would differ per data dir).
    jwt: { secret: SHARED_JWT_SECRET },
    load_balancing: { upstreams: upstreams([backend.port]) },
    // Burst 10 at 1 token/min: exact counts however the requests are spread in time (see EXACT_RULE).
    middleware: { auth: authConfig(), rate_limit: rateLimitConfig() },
    admin: { enabled: false },
  };
  // Started one after the other: both run the migrations at start-up and must not race on a fresh database
  // (the store serialises them with an advisory lock, but sequential start keeps the test about sharing).
  a = await spawnGateway(config);
  b = await spawnGateway(config);
});

after(async () => {
  await client.close();
  if (skip) return;
  await Promise.allSettled([a?.cleanup(), b?.cleanup()]);
  await backend?.stop();
  await deletePostgresUsers(domain);
  await deleteRedisKeys(REDIS_URL, keyPrefix);
});

let session: Session;

test('a user registered through gateway A logs in through gateway B', { skip }, async () => {
  const registered = await register(client, a.url, `carol@${domain}`);
  session = await login(client, b.url, `carol@${domain}`);
  assert.equal(session.userId, registered.userId);
  // B's token is accepted by A and the upstream sees the same user through both.
  for (const gw of [a, b]) {
    const res = await client.request(`${gw.url}/whoami`, { headers: bearer(session) });
    assert.equal(res.status, 200, gw.url);
    assert.equal(res.json<{ headers: Record<string, string> }>().headers['x-user-id'], registered.userId);
  }
});

test('15 rapid requests of one user alternating over A and B: exactly 10 pass in total', { skip }, async () => {
  const user = await register(client, a.url, `dave@${domain}`);
  const responses = [];
  for (let i = 0; i < 15; i++) {
    const gw = i % 2 === 0 ? a : b;
    responses.push(await client.request(`${gw.url}/api/${i}`, { headers: bearer(user) }));
  }
  assert.deepEqual(statusCounts(responses), { 200: 10, 429: 5 });
  // One bucket: the remaining count goes down by one per request whichever gateway answered.
  assert.deepEqual(
    responses.slice(0, 10).map((r) => r.headers['ratelimit-remaining']),
    ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'],
  );
  // Both gateways refuse once the shared bucket is empty.
  assert.equal(responses[13]!.status, 429);
  assert.equal(responses[14]!.status, 429);
  // The buckets live under this run's redis.key_prefix (config), which the cleanup deletes.
  assert.ok((await countRedisKeys(REDIS_URL, `${keyPrefix}rl:`)) >= 1);
});

test('a logout through A rejects that access token on B at once', { skip }, async () => {
  const user = await login(client, b.url, `carol@${domain}`);
  assert.equal((await client.request(`${b.url}/before-logout`, { headers: bearer(user) })).status, 200);
  const out = await client.postJson(`${a.url}/auth/logout`, { refresh_token: user.refreshToken }, bearer(user));
  assert.equal(out.status, 200, out.text);
  // No wait: the revocation is in Redis before A answers, and B checks Redis on every request.
  const onB = await client.request(`${b.url}/after-logout`, { headers: bearer(user) });
  assert.equal(onB.status, 401);
  assert.match(String(onB.headers['www-authenticate']), /invalid_token/);
  assert.equal((await client.request(`${a.url}/after-logout`, { headers: bearer(user) })).status, 401);
  // The refresh token of that session is dead on both too (PostgreSQL), and the earlier session still works.
  assert.equal((await client.postJson(`${b.url}/auth/refresh`, { refresh_token: user.refreshToken })).status, 401);
  assert.equal((await client.request(`${b.url}/other-session`, { headers: bearer(session) })).status, 200);
});
