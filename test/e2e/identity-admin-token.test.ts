// The admin token (issue 8): every admin endpoint but /ready and the dashboard page needs it; 401 with a Bearer
// challenge otherwise; start-up refuses a non-loopback admin address without one; /admin/* is 404 without a token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, startInProcess, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
let open: InProcessGateway;

before(async () => {
  backend = await startBackend('echo');
  const base = {
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  };
  gw = await startInProcess({ ...base, admin: { token: ADMIN_TOKEN } });
  open = await startInProcess(base);
});

after(async () => {
  await client.close();
  await Promise.allSettled([gw?.close(), open?.close()]);
  await backend?.stop();
});

const PROTECTED: readonly [string, string][] = [
  ['GET', '/metrics'],
  ['GET', '/api/status'],
  ['POST', '/reload'],
  ['GET', '/admin/users'],
  ['POST', '/admin/users'],
  ['GET', '/admin/api-keys'],
  ['DELETE', '/admin/users/00000000-0000-0000-0000-000000000000'],
  ['GET', '/nope'],
];

test('without the token, or with a wrong one, every protected endpoint answers 401 with a Bearer challenge', async () => {
  for (const [method, path] of PROTECTED) {
    for (const authorization of [undefined, 'Bearer wrong-token', `Bearer ${ADMIN_TOKEN}x`, `Basic ${Buffer.from(`a:${ADMIN_TOKEN}`).toString('base64')}`]) {
      const res = await client.request(`${gw.adminUrl}${path}`, { method, headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, `${method} ${path} ${authorization}`);
      assert.match(String(res.headers['www-authenticate']), /^Bearer\b/);
      assert.deepEqual(res.json(), { error: 'Unauthorized', code: 'unauthorized', request_id: res.headers['x-request-id'] });
      assert.ok(!res.text.includes(ADMIN_TOKEN));
    }
  }
});

test('with the token the endpoints answer; /ready and the dashboard page need none', async () => {
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  assert.equal((await client.request(`${gw.adminUrl}/metrics`, { headers: auth })).status, 200);
  assert.equal((await client.request(`${gw.adminUrl}/api/status`, { headers: auth })).status, 200);
  assert.equal((await client.request(`${gw.adminUrl}/admin/users`, { headers: auth })).status, 200);
  assert.equal((await client.request(`${gw.adminUrl}/ready`)).status, 200);
  for (const asset of ['/', '/dashboard.js', '/dashboard.css']) assert.equal((await client.request(`${gw.adminUrl}${asset}`)).status, 200, asset);
});

test('without a configured token the users API does not exist (404); the rest stays open on loopback', async () => {
  const res = await client.request(`${open.adminUrl}/admin/users`);
  assert.equal(res.status, 404);
  assert.deepEqual(res.json(), { error: 'Not Found', code: 'not_found', request_id: res.headers['x-request-id'] });
  assert.equal((await client.request(`${open.adminUrl}/metrics`)).status, 200);
});

test('start-up refuses a non-loopback admin address without a token', async () => {
  const input = { load_balancing: { upstreams: upstreams([backend.port]) }, admin: { listen_host: '0.0.0.0', listen_port: 0 } };
  const result = await runCli(['check-config', '--config', writeConfig(input)]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /admin\.token: is required when admin\.listen_host is not a loopback address/);
  const withToken = await runCli(['check-config', '--config', writeConfig({ ...input, admin: { ...input.admin, token: 'off-loopback-admin-token-0123' } })]);
  assert.equal(withToken.code, 0, withToken.stderr);
});

test('POST /reload on a loopback listener refuses a Host that only starts like a loopback address', async () => {
  for (const host of ['127.attacker.example', '127.0.0.1.nip.io', 'localhost.attacker.example']) {
    const res = await client.request(`${open.adminUrl}/reload`, { method: 'POST', headers: { host } });
    assert.equal(res.status, 403, host);
  }
});
