// Every error of the admin listener in the proxy listener's shape: `{"error", "code", "request_id"}` (+ `details`),
// the code the proxy port gives for the same situation, and the id as X-Request-ID. Before, the admin listener sent
// `{"error": "Not Found"}` and the like: no code to branch on, no id to quote. Its successful answers are unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';

const client = createClient();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
let backend: TestBackend;
let gw: InProcessGateway;
let open: InProcessGateway;
let admin: ReturnType<typeof adminApi>;

before(async () => {
  backend = await startBackend('echo');
  const base = {
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  };
  gw = await startInProcess({ ...base, admin: { token: ADMIN_TOKEN } });
  open = await startInProcess(base);
  admin = adminApi(client, gw.adminUrl!);
});

after(async () => {
  await client.close();
  await Promise.allSettled([gw?.close(), open?.close()]);
  await backend?.stop();
});

/** The error body's shape and its id; returns the body for the checks of the case. */
function assertError(res: TestResponse, status: number, code: string, what: string): Record<string, unknown> {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const id = res.headers['x-request-id'];
  assert.match(String(id), UUID, `${what}: X-Request-ID`);
  const body = res.json();
  assert.equal(body.code, code, what);
  assert.equal(body.request_id, id, `${what}: request_id is the X-Request-ID`);
  assert.equal(typeof body.error, 'string', what);
  for (const key of Object.keys(body)) assert.ok(['error', 'code', 'request_id', 'details'].includes(key), `${what}: ${key}`);
  return body;
}

describe('with admin.token set', () => {
  test('401 unauthorized without the token and with a wrong one, on the API and the other endpoints alike', async () => {
    for (const [method, path] of [['GET', '/metrics'], ['GET', '/admin/users'], ['POST', '/reload'], ['GET', '/nope']] as const) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token' }] as Record<string, string>[]) {
        const res = await client.request(`${gw.adminUrl}${path}`, { method, headers });
        const body = assertError(res, 401, 'unauthorized', `${method} ${path} ${JSON.stringify(headers)}`);
        assert.equal(body.error, 'Unauthorized');
        assert.match(String(res.headers['www-authenticate']), /^Bearer realm="portcullis-admin"/);
      }
    }
  });

  test('404 not_found for an unknown user id, an unknown API key id and an unknown path', async () => {
    assertError(await admin.get(`/admin/users/${UNKNOWN_ID}`), 404, 'not_found', 'unknown user');
    assertError(await admin.post(`/admin/users/${UNKNOWN_ID}/disable`), 404, 'not_found', 'unknown user, action');
    assertError(await admin.delete(`/admin/api-keys/${UNKNOWN_ID}`), 404, 'not_found', 'unknown key');
    assertError(await admin.get('/admin/nope'), 404, 'not_found', 'unknown /admin path');
    assertError(await admin.get('/nope'), 404, 'not_found', 'unknown path');
  });

  test('405 method_not_allowed with Allow', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const [method, path, allow] of [
      ['PUT', '/admin/users', 'GET, POST'],
      ['GET', '/reload', 'POST'],
      ['POST', '/metrics', 'GET, HEAD'],
    ] as const) {
      const res = await client.request(`${gw.adminUrl}${path}`, { method, headers: auth });
      assertError(res, 405, 'method_not_allowed', `${method} ${path}`);
      assert.equal(res.headers.allow, allow);
    }
  });

  test('409 email_taken for a duplicate user, as register answers it', async () => {
    const email = uniqueEmail('dup');
    assert.equal((await admin.post('/admin/users', { email, password: 'a-long-password' })).status, 201);
    const res = await admin.post('/admin/users', { email, password: 'a-long-password' });
    assert.equal(assertError(res, 409, 'email_taken', 'duplicate').error, 'Email already registered');
    const register = await client.postJson(`${gw.url}/auth/register`, { email, password: 'a-long-password' });
    assert.equal(register.json().code, 'email_taken', 'the proxy port says the same');
  });

  test('400 with details: a bad body (the code register gives it) and a bad query', async () => {
    const bad = { email: 'not-an-email', password: 'short' };
    const body = assertError(await admin.post('/admin/users', bad), 400, 'invalid_body', 'bad body');
    assert.ok(Array.isArray(body.details));
    assert.equal((await client.postJson(`${gw.url}/auth/register`, bad)).json().code, 'invalid_body', 'the proxy port says the same');
    assert.ok(Array.isArray(assertError(await admin.get('/admin/users?limit=0'), 400, 'bad_request', 'bad query').details));
  });

  test('413 payload_too_large over the admin body limit, 415 unsupported_media_type for a body not JSON', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const big = JSON.stringify({ name: 'x'.repeat(20 * 1024) });
    const tooLarge = await client.request(`${gw.adminUrl}/admin/api-keys`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: big });
    assertError(tooLarge, 413, 'payload_too_large', 'body over 16 KB');
    const text = await client.request(`${gw.adminUrl}/admin/api-keys`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'name' });
    assertError(text, 415, 'unsupported_media_type', 'text/plain');
  });

  test('a HEAD error has the head of the error and no body', async () => {
    const res = await client.request(`${gw.adminUrl}/metrics`, { method: 'HEAD' });
    assert.equal(res.status, 401);
    assert.match(String(res.headers['x-request-id']), UUID);
    assert.equal(res.text, '');
  });

  test('the successful answers are as they were: no request id, the dashboard with its policy', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const path of ['/metrics', '/ready', '/api/status', '/']) {
      const res = await client.request(`${gw.adminUrl}${path}`, { headers: auth });
      assert.equal(res.status, 200, path);
      assert.equal(res.headers['x-request-id'], undefined, path);
    }
    assert.match(String((await client.request(`${gw.adminUrl}/`)).headers['content-security-policy']), /default-src 'none'/);
  });
});

describe('without admin.token', () => {
  test('404 not_found for /admin/*: the users API does not exist', async () => {
    for (const path of ['/admin/users', '/admin/api-keys', `/admin/users/${UNKNOWN_ID}`]) {
      assertError(await client.request(`${open.adminUrl}${path}`), 404, 'not_found', path);
    }
  });

  test('404 not_found for an unknown path, 405 for a wrong method', async () => {
    assertError(await client.request(`${open.adminUrl}/nope`), 404, 'not_found', '/nope');
    assertError(await client.request(`${open.adminUrl}/api/status`, { method: 'DELETE' }), 405, 'method_not_allowed', 'DELETE');
  });
});
