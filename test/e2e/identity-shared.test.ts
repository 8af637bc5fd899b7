// Two gateway processes sharing PostgreSQL and Redis: an admin action made on one refuses the credentials on both at
// once (through the revocation store, no waiting for the change log or for token expiry).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import {
  authConfig,
  bearer,
  DATABASE_URL,
  deletePostgresUsers,
  deleteRedisKeys,
  login,
  REDIS_URL,
  register,
  requirePostgres,
  requireRedis,
  runId,
  SHARED_JWT_SECRET,
} from './ratelimit-helpers.js';

const id = runId();
const domain = `identity-${id}.example`;
const keyPrefix = `portcullis-test:identity-shared:${id}:`;
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
    jwt: { secret: SHARED_JWT_SECRET },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: authConfig() },
    admin: { token: ADMIN_TOKEN },
  };
  a = await spawnGateway(config);
  b = await spawnGateway(config);
});

after(async () => {
  await client.close();
  if (skip) return;
  await Promise.allSettled([a?.cleanup(), b?.cleanup()]);
  await backend?.stop();
  await deletePostgresUsers(domain);
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query('DELETE FROM public.api_keys WHERE name = $1', [`svc-${id}`]).finally(() => c.end());
  await deleteRedisKeys(REDIS_URL, keyPrefix);
});

const get = (gw: GatewayProcess, headers: Record<string, string>) => client.request(`${gw.url}/x`, { headers });

test('disable on B: the access token is refused on A and B from the next request, the refresh token at once', { skip }, async () => {
  const user = await register(client, a.url, `disable@${domain}`);
  const session = await login(client, a.url, user.email);
  assert.equal((await get(a, bearer(session))).status, 200);
  assert.equal((await get(b, bearer(session))).status, 200);

  const res = await adminApi(client, `http://127.0.0.1:${b.adminPort!}`).post(`/admin/users/${session.userId}/disable`);
  assert.equal(res.status, 200, res.text);
  // No wait: the revocation went through Redis before the admin API answered.
  assert.equal((await get(a, bearer(session))).status, 401);
  assert.equal((await get(b, bearer(session))).status, 401);
  assert.equal((await get(a, bearer(user))).status, 401);
  assert.equal((await client.postJson(`${a.url}/auth/refresh`, { refresh_token: session.refreshToken })).status, 401);
  assert.equal((await client.postJson(`${b.url}/auth/refresh`, { refresh_token: user.refreshToken })).status, 401);
  assert.equal((await client.postJson(`${a.url}/auth/login`, { email: user.email, password: 'correct horse battery' })).status, 401);
});

test('an API key revoked on B is refused at once on A, which had it cached', { skip }, async () => {
  const created = await adminApi(client, `http://127.0.0.1:${b.adminPort!}`).post('/admin/api-keys', { name: `svc-${id}` });
  assert.equal(created.status, 201, created.text);
  const key = created.json<{ id: string; key: string }>();
  for (let i = 0; i < 3; i++) assert.equal((await get(a, { 'x-api-key': key.key })).status, 200);
  const revoked = await adminApi(client, `http://127.0.0.1:${b.adminPort!}`).delete(`/admin/api-keys/${key.id}`);
  assert.equal(revoked.status, 204);
  assert.equal((await get(a, { 'x-api-key': key.key })).status, 401);
  assert.equal((await get(b, { authorization: `Bearer ${key.key}` })).status, 401);
});
