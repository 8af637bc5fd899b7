// API keys end to end: created through the admin API, accepted as Bearer or X-API-Key, forwarded as a consumer
// (client-sent consumer headers stripped), refused at once when revoked, expired or of a kind the route refuses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { bearer, FAST_ARGON2, proxiedGet, register, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
let keysOnly: InProcessGateway;
let jwtOnly: InProcessGateway;

/** A gateway with API keys; `limited`: a rate limit of burst 3 (failed authentications count against it too). */
async function start(auth: Record<string, unknown> = {}, limited = false): Promise<InProcessGateway> {
  return startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: {
      auth: { enabled: true, argon2: FAST_ARGON2, public_paths: ['/public/*'], ...auth },
      rate_limit: { enabled: limited, requests_per_minute: 60, burst_size: 3 },
    },
    admin: { token: ADMIN_TOKEN },
  });
}

before(async () => {
  backend = await startBackend('echo');
  gw = await start();
  keysOnly = await start({ auth_methods: ['api_key'], consumer_id_header: 'X-Service-Id', consumer_name_header: 'X-Service-Name' }, true);
  jwtOnly = await start({ auth_methods: ['jwt'] });
});

after(async () => {
  await client.close();
  await Promise.allSettled([gw?.close(), keysOnly?.close(), jwtOnly?.close()]);
  await backend?.stop();
});

async function createKey(target: InProcessGateway, body: Record<string, unknown> = { name: 'billing-service' }) {
  const res = await adminApi(client, target.adminUrl!).post('/admin/api-keys', body);
  assert.equal(res.status, 201, res.text);
  return res.json<{ id: string; name: string; key: string; created_at: string; expires_at: string | null; last_used_at: null }>();
}

test('a created key is shown once as pk_<id>_<secret>; the list never shows it', async () => {
  const key = await createKey(gw);
  assert.match(key.key, new RegExp(`^pk_${key.id}_[0-9a-f]{64}$`));
  assert.equal(key.name, 'billing-service');
  const list = await adminApi(client, gw.adminUrl!).get('/admin/api-keys');
  const entry = list.json<{ api_keys: Record<string, unknown>[] }>().api_keys.find((k) => k.id === key.id);
  assert.deepEqual(Object.keys(entry ?? {}).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name']);
  assert.ok(!list.text.includes(key.key.slice(20)));
  for (const body of [{}, { name: '' }, { name: 'x'.repeat(101) }, { name: 'bad\nname' }, { name: 'n', expires_in: 'soon' }, { name: 'n', expires_in: 0 }]) {
    const res = await adminApi(client, gw.adminUrl!).post('/admin/api-keys', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.ok(Array.isArray(res.json<{ details: unknown }>().details));
  }
});

test('accepted as Bearer and as X-API-Key; forwarded as the consumer, client-sent identity headers stripped', async () => {
  const key = await createKey(gw);
  const spoof = { 'x-consumer-id': 'spoofed', 'x-consumer-name': 'spoofed', 'x-user-id': 'spoofed', 'x-user-email': 'spoofed' };
  const credentials: Record<string, string>[] = [{ authorization: `Bearer ${key.key}` }, { 'x-api-key': key.key }];
  for (const headers of credentials) {
    const { res, upstream } = await proxiedGet({ client, url: gw.url }, '/svc', { ...headers, ...spoof });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-consumer-id'], key.id);
    assert.equal(upstream?.['x-consumer-name'], 'billing-service');
    assert.equal(upstream?.['x-user-id'], undefined);
    assert.equal(upstream?.['x-user-email'], undefined);
  }
  // A user token still works, and then no consumer header reaches the backend.
  const session = await register({ client, url: gw.url });
  const { upstream } = await proxiedGet({ client, url: gw.url }, '/svc', { ...bearer(session.access_token), 'x-consumer-id': 'spoofed' });
  assert.equal(upstream?.['x-user-id'], session.user_id);
  assert.equal(upstream?.['x-consumer-id'], undefined);
  // Public paths strip them too.
  const pub = await proxiedGet({ client, url: gw.url }, '/public/x', spoof);
  assert.equal(pub.upstream?.['x-consumer-id'], undefined);
});

test('unknown, malformed and revoked keys get 401 invalid_token; revocation is immediate', async () => {
  const key = await createKey(gw);
  assert.equal((await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key })).res.status, 200);
  const forged = key.key.slice(0, -4) + (key.key.endsWith('aaaa') ? 'bbbb' : 'aaaa');
  for (const value of [forged, 'pk_nothing', `pk_${key.id}_`, 'pk_zzzzzzzzzzzzzzzz_' + 'a'.repeat(64)]) {
    const { res } = await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': value });
    assert.equal(res.status, 401, value);
    assert.match(String(res.headers['www-authenticate']), /invalid_token/);
  }
  const revoked = await adminApi(client, gw.adminUrl!).delete(`/admin/api-keys/${key.id}`);
  assert.equal(revoked.status, 204);
  const { res } = await proxiedGet({ client, url: gw.url }, '/svc', { authorization: `Bearer ${key.key}` });
  assert.equal(res.status, 401);
  assert.equal((await adminApi(client, gw.adminUrl!).delete(`/admin/api-keys/${key.id}`)).status, 404);
});

test('an expired key is refused', async () => {
  const key = await createKey(gw, { name: 'short-lived', expires_in: 1 });
  assert.equal((await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key })).res.status, 200);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key })).res.status, 401);
});

test('rate limiting is keyed by the key id: one key at its limit does not limit another', async () => {
  const a = await createKey(keysOnly, { name: 'a' });
  const b = await createKey(keysOnly, { name: 'b' });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await proxiedGet({ client, url: keysOnly.url }, '/svc', { 'x-api-key': a.key })).res.status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal((await proxiedGet({ client, url: keysOnly.url }, '/svc', { 'x-api-key': b.key })).res.status, 200);
});

test('auth_methods [api_key] refuses user tokens; [jwt] refuses API keys; configured consumer header names', async () => {
  const key = await createKey(keysOnly);
  const session = await register({ client, url: keysOnly.url });
  const ok = await proxiedGet({ client, url: keysOnly.url }, '/svc', { 'x-api-key': key.key });
  assert.equal(ok.res.status, 200);
  assert.equal(ok.upstream?.['x-service-id'], key.id);
  assert.equal(ok.upstream?.['x-service-name'], 'billing-service');
  const jwt = await proxiedGet({ client, url: keysOnly.url }, '/svc', bearer(session.access_token));
  assert.equal(jwt.res.status, 401);

  const jwtKey = await createKey(jwtOnly);
  const jwtSession = await register({ client, url: jwtOnly.url });
  assert.equal((await proxiedGet({ client, url: jwtOnly.url }, '/svc', bearer(jwtSession.access_token))).res.status, 200);
  assert.equal((await proxiedGet({ client, url: jwtOnly.url }, '/svc', { authorization: `Bearer ${jwtKey.key}` })).res.status, 401);
  // X-API-Key is not a credential there: the request has none.
  const none = await proxiedGet({ client, url: jwtOnly.url }, '/svc', { 'x-api-key': jwtKey.key });
  assert.equal(none.res.status, 401);
  assert.equal(none.res.headers['www-authenticate'], 'Bearer');
});
