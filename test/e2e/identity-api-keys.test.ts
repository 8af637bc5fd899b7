// API keys end to end: created through the admin API, accepted as Bearer or X-API-Key, forwarded as a consumer
// (client-sent consumer headers stripped), refused at once when revoked, expired or of a kind the route refuses.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
let authOff: InProcessGateway;

/**
 * A gateway with API keys; `limited`: a rate limit of burst 3 (failed authentications count against it too). Without
 * it the auth protections are off as well: the suites send many bad keys from 127.0.0.1, which their failed-auth
 * penalty would answer 429.
 */
async function start(auth: Record<string, unknown> = {}, limited = false): Promise<InProcessGateway> {
  return startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: {
      auth: { enabled: true, argon2: FAST_ARGON2, public_paths: ['/public/*'], ...auth },
      rate_limit: { enabled: limited, requests_per_minute: 60, burst_size: 3, auth: { enabled: limited } },
    },
    admin: { token: ADMIN_TOKEN },
  });
}

before(async () => {
  backend = await startBackend('echo');
  gw = await start();
  keysOnly = await start({ auth_methods: ['api_key'], consumer_id_header: 'X-Service-Id', consumer_name_header: 'X-Service-Name' }, true);
  jwtOnly = await start({ auth_methods: ['jwt'] });
  authOff = await start({ enabled: false });
});

after(async () => {
  await client.close();
  await Promise.allSettled([gw?.close(), keysOnly?.close(), jwtOnly?.close(), authOff?.close()]);
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

test('a JWT sent beside an API key must pass too: a revoked, forged or refused token is never forwarded unchecked', async () => {
  const key = await createKey(gw);
  const session = await register({ client, url: gw.url });
  // Both valid: the backend learns both callers, and gets the token it may verify itself.
  const both = await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key, ...bearer(session.access_token) });
  assert.equal(both.res.status, 200, both.res.text);
  assert.equal(both.upstream?.['x-consumer-id'], key.id);
  assert.equal(both.upstream?.['x-user-id'], session.user_id);
  assert.equal(both.upstream?.authorization, `Bearer ${session.access_token}`);
  assert.equal(both.upstream?.['x-api-key'], undefined);

  const forged = session.access_token.slice(0, -3) + (session.access_token.endsWith('AAA') ? 'BBB' : 'AAA');
  const logout = await client.postJson(`${gw.url}/auth/logout`, { refresh_token: session.refresh_token }, bearer(session.access_token));
  assert.equal(logout.status, 200, logout.text);
  for (const token of [session.access_token, forged, 'not.a.jwt']) {
    const { res } = await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key, ...bearer(token) });
    assert.equal(res.status, 401, token);
    assert.match(String(res.headers['www-authenticate']), /invalid_token/);
  }
  // Two keys at once, or a JWT where the route takes only keys, are refused whole.
  assert.equal((await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key, authorization: `Bearer ${key.key}` })).res.status, 401);
  const serviceKey = await createKey(keysOnly);
  const other = await register({ client, url: keysOnly.url });
  assert.equal((await proxiedGet({ client, url: keysOnly.url }, '/svc', { 'x-api-key': serviceKey.key, ...bearer(other.access_token) })).res.status, 401);
  // `Bearer` with anything but a space after it is a malformed bearer credential, not another scheme: backends that
  // split on any whitespace would take the token in it unchecked.
  for (const authorization of [`Bearer\t${session.access_token}`, `Bearer\u00a0${session.access_token}`, `Bearer:${session.access_token}`]) {
    const { res } = await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key, authorization });
    assert.equal(res.status, 401, JSON.stringify(authorization));
  }
  // A scheme that is not ours (the backend's own Basic credentials) still goes through beside a key.
  const basic = await proxiedGet({ client, url: gw.url }, '/svc', { 'x-api-key': key.key, authorization: 'Basic dTpw' });
  assert.equal(basic.res.status, 200);
  assert.equal(basic.upstream?.authorization, 'Basic dTpw');
});

test('a key of ours never reaches a backend, whether or not it authenticated the request', async () => {
  const key = await createKey(gw);
  const jwtKey = await createKey(jwtOnly);
  const shaped = `pk_0123456789abcdef_${'c'.repeat(64)}`;
  // A public path (nothing authenticates there), both forms.
  const pubHeader = await proxiedGet({ client, url: gw.url }, '/public/x', { 'x-api-key': key.key });
  assert.equal(pubHeader.res.status, 200);
  assert.equal(pubHeader.upstream?.['x-api-key'], undefined);
  const pubBearer = await proxiedGet({ client, url: gw.url }, '/public/x', { authorization: `Bearer ${key.key}` });
  assert.equal(pubBearer.upstream?.authorization, undefined);
  // A route that takes only JWTs ignores X-API-Key, and removes it.
  const session = await register({ client, url: jwtOnly.url });
  const ignored = await proxiedGet({ client, url: jwtOnly.url }, '/svc', { 'x-api-key': jwtKey.key, ...bearer(session.access_token) });
  assert.equal(ignored.res.status, 200);
  assert.equal(ignored.upstream?.['x-user-id'], session.user_id);
  assert.equal(ignored.upstream?.['x-api-key'], undefined);
  assert.equal(ignored.upstream?.authorization, `Bearer ${session.access_token}`);
  // Auth off: a value of our key's shape is removed (a repeated header too); a backend's own key scheme is not.
  const shapedForms: Record<string, string>[] = [
    { 'x-api-key': shaped },
    { authorization: `Bearer ${shaped}` },
    { 'x-api-key': `own-key, ${shaped}` },
    // Whatever the scheme or its spelling, a key of ours in Authorization is removed.
    { authorization: shaped },
    { authorization: `Bearer\t${shaped}` },
    { authorization: `Token ${shaped}` },
  ];
  for (const headers of shapedForms) {
    const off = await proxiedGet({ client, url: authOff.url }, '/svc', headers);
    assert.equal(off.res.status, 200);
    assert.equal(off.upstream?.['x-api-key'], undefined, JSON.stringify(headers));
    assert.equal(off.upstream?.authorization, undefined, JSON.stringify(headers));
  }
  const own = await proxiedGet({ client, url: authOff.url }, '/svc', { 'x-api-key': 'backend-own-key', authorization: 'Bearer pk_live_somethingelse' });
  assert.equal(own.upstream?.['x-api-key'], 'backend-own-key');
  assert.equal(own.upstream?.authorization, 'Bearer pk_live_somethingelse');
});

test('a key admitted beside a token that fails leaves no consumer behind for plugins to count', async () => {
  const module = join(mkdtempSync(join(tmpdir(), 'portcullis-consumer-')), 'seen.mjs');
  writeFileSync(module, "export default { create() { return { onResponse(ctx) { ctx.responseHeaders.set('x-seen-consumer', ctx.consumer ? ctx.consumer.id : 'none'); } }; } };\n");
  const metered = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    plugins: [{ name: 'seen', module }],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false }, plugins: ['seen'] },
    admin: { token: ADMIN_TOKEN },
  });
  try {
    const key = await createKey(metered);
    const ok = await proxiedGet({ client, url: metered.url }, '/svc', { 'x-api-key': key.key });
    assert.equal(ok.res.headers['x-seen-consumer'], key.id);
    const refused = await proxiedGet({ client, url: metered.url }, '/svc', { 'x-api-key': key.key, authorization: 'Bearer not.a.jwt' });
    assert.equal(refused.res.status, 401);
    assert.equal(refused.res.headers['x-seen-consumer'], 'none');
  } finally {
    await metered.close();
  }
});
