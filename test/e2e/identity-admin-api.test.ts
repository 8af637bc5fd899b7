// The users admin API end to end: list/show/create, disable/enable, logout, set password, delete, with the user's
// access and refresh tokens tried through the proxy after each action; audit lines and the metric.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { bearer, FAST_ARGON2, proxiedGet, register, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';
import { sampleValue } from '../helpers/prometheus.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
let admin: ReturnType<typeof adminApi>;
const stack = () => ({ client, url: gw.url });

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    // Many logins a second from 127.0.0.1: the brute-force protections (on with auth) would answer 429.
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    admin: { token: ADMIN_TOKEN },
  });
  admin = adminApi(client, gw.adminUrl!);
});

after(async () => {
  await client.close();
  await gw?.close();
  await backend?.stop();
});

const USER_FIELDS = ['active_sessions', 'created_at', 'disabled', 'email', 'last_login_at', 'user_id'];

test('create (201), show, list with email prefix and cursor; bad body 400 with details; unknown id 404', async () => {
  const email = uniqueEmail('adm');
  const created = await admin.post('/admin/users', { email, password: 'a-long-password' });
  assert.equal(created.status, 201, created.text);
  const user = created.json<Record<string, unknown>>();
  assert.deepEqual(Object.keys(user).sort(), USER_FIELDS);
  assert.equal(user.email, email);
  assert.equal(user.disabled, false);
  assert.ok(!created.text.includes('argon2'));
  assert.equal((await admin.post('/admin/users', { email, password: 'a-long-password' })).status, 409);
  const bad = await admin.post('/admin/users', { email: 'not-an-email', password: 'short' });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json<{ details: { field: string }[] }>().details.map((d) => d.field).sort(), ['email', 'password']);
  assert.ok(!bad.text.includes('short'));

  const shown = await admin.get(`/admin/users/${String(user.user_id)}`);
  assert.deepEqual(shown.json(), user);
  const missing = await admin.get('/admin/users/00000000-0000-4000-8000-000000000000');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json(), { error: 'Not Found', code: 'not_found', request_id: missing.headers['x-request-id'] });
  assert.equal((await admin.get('/admin/users/not-a-uuid')).status, 404);

  for (let i = 0; i < 3; i++) await admin.post('/admin/users', { email: `pg${i}-${email}`, password: 'a-long-password' });
  const first = await admin.get(`/admin/users?email=pg&limit=2`);
  const page = first.json<{ users: { email: string }[]; next_cursor: string | null }>();
  assert.equal(page.users.length, 2);
  assert.ok(page.next_cursor);
  const second = (await admin.get(`/admin/users?email=pg&limit=2&cursor=${encodeURIComponent(page.next_cursor)}`)).json<typeof page>();
  assert.deepEqual([...page.users, ...second.users].map((u) => u.email).sort(), [0, 1, 2].map((i) => `pg${i}-${email}`));
  assert.equal(second.next_cursor, null);
  for (const query of ['limit=0', 'limit=101', 'limit=x', 'cursor=garbage']) {
    const res = await admin.get(`/admin/users?${query}`);
    assert.equal(res.status, 400, query);
    assert.ok(Array.isArray(res.json<{ details: unknown }>().details));
  }
  assert.equal((await admin.post('/admin/users/00000000-0000-4000-8000-000000000000/frobnicate')).status, 404);
  const wrongMethod = await client.request(`${gw.adminUrl}/admin/users`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.allow, 'GET, POST');
});

test('disable: the live access token is refused from the next request, refresh and login get the wrong-password answer', async () => {
  const session = await register(stack());
  assert.equal((await proxiedGet(stack(), '/x', bearer(session.access_token))).res.status, 200);
  const res = await admin.post(`/admin/users/${session.user_id}/disable`);
  assert.equal(res.status, 200);
  assert.equal(res.json<{ disabled: boolean }>().disabled, true);
  assert.equal((await proxiedGet(stack(), '/x', bearer(session.access_token))).res.status, 401);
  const refresh = await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: session.refresh_token });
  assert.equal(refresh.status, 401);
  const login = await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: session.password });
  const wrong = await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: 'wrong-password' });
  assert.equal(login.status, 401);
  assert.equal(wrong.status, 401);
  const strip = (t: string) => ({ ...(JSON.parse(t) as object), request_id: undefined });
  assert.deepEqual(strip(login.text), strip(wrong.text));

  const enabled = await admin.post(`/admin/users/${session.user_id}/enable`);
  assert.equal(enabled.json<{ disabled: boolean }>().disabled, false);
  // Whole seconds: a token issued in the second of the disable is refused too (iat has second precision).
  await new Promise((r) => setTimeout(r, 1100));
  const again = await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: session.password });
  assert.equal(again.status, 200, again.text);
  assert.equal((await proxiedGet(stack(), '/x', bearer(again.json<{ access_token: string }>().access_token))).res.status, 200);
  // The tokens from before the disable stay refused after the enable.
  assert.equal((await proxiedGet(stack(), '/x', bearer(session.access_token))).res.status, 401);
});

test('logout revokes every session and access token; set-password too, and only the new password works', async () => {
  const session = await register(stack());
  const other = await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: session.password });
  const out = await admin.post(`/admin/users/${session.user_id}/logout`);
  assert.equal(out.status, 200);
  assert.equal(out.json<{ active_sessions: number }>().active_sessions, 0);
  assert.equal((await proxiedGet(stack(), '/x', bearer(session.access_token))).res.status, 401);
  assert.equal((await proxiedGet(stack(), '/x', bearer(other.json<{ access_token: string }>().access_token))).res.status, 401);
  assert.equal((await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: session.refresh_token })).status, 401);

  await new Promise((r) => setTimeout(r, 1100));
  const fresh = await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: session.password });
  const token = fresh.json<{ access_token: string }>().access_token;
  const weak = await admin.post(`/admin/users/${session.user_id}/password`, { password: 'short' });
  assert.equal(weak.status, 400);
  assert.equal(weak.json<{ details: { field: string }[] }>().details[0]?.field, 'password');
  assert.equal((await admin.post(`/admin/users/${session.user_id}/password`, { nope: 1 })).status, 400);
  const set = await admin.post(`/admin/users/${session.user_id}/password`, { password: 'brand-new-password' });
  assert.equal(set.status, 200, set.text);
  assert.equal((await proxiedGet(stack(), '/x', bearer(token))).res.status, 401);
  assert.equal((await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: session.password })).status, 401);
  assert.equal((await client.postJson(`${gw.url}/auth/login`, { email: session.email, password: 'brand-new-password' })).status, 200);
});

test('delete answers 204, the access token stops working at once, the user is gone (404)', async () => {
  const session = await register(stack());
  const res = await admin.delete(`/admin/users/${session.user_id}`);
  assert.equal(res.status, 204);
  assert.equal(res.text, '');
  assert.equal((await proxiedGet(stack(), '/x', bearer(session.access_token))).res.status, 401);
  assert.equal((await admin.get(`/admin/users/${session.user_id}`)).status, 404);
  assert.equal((await admin.delete(`/admin/users/${session.user_id}`)).status, 404);
  assert.equal((await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: session.refresh_token })).status, 401);
});

test('every action is an admin_action audit line (no email) and is counted in /metrics', async () => {
  await new Promise((r) => setTimeout(r, 100));
  const audits = gw.logs.filter((l) => l.msg === 'admin_action');
  const actions = new Set(audits.map((l) => l.action));
  for (const action of ['create_user', 'disable', 'enable', 'logout', 'set_password', 'delete']) assert.ok(actions.has(action), action);
  for (const line of audits) {
    assert.equal(line.actor, 'admin');
    assert.equal(typeof line.target_id, 'string');
    assert.ok(!JSON.stringify(line).includes('@example.com'));
  }
  const metrics = await admin.get('/metrics');
  assert.ok((sampleValue(metrics.text, 'portcullis_admin_actions_total', { actor: 'admin', action: 'disable' }) ?? 0) >= 1);
  const status = await admin.get('/api/status');
  const identity = status.json<{ identity: { totals: Record<string, number>; recent_actions: { action: string }[] } }>().identity;
  assert.ok(identity.totals.users >= 1);
  assert.ok(identity.totals.disabled >= 0);
  assert.ok(identity.recent_actions.length >= 1);
  assert.ok(!status.text.includes('@example.com'), 'the dashboard data holds no email');
});
