// What was wrong (found by review): a gateway API key is never forwarded in X-API-Key (README, Security notes), yet
// the same key sent as `X_Api_Key` (or any spelling with `_` for a `-`) reached the backend whole, on a route with
// auth off and beside a valid key alike. node keeps the two names apart; a WSGI, Rack or CGI backend reads both as
// HTTP_X_API_KEY and logged a live gateway key. Keys of the gateway's shape are now removed under every spelling; a
// value of another shape (a backend's own key scheme) still passes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
let key: string;

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] } },
    routes: [
      { name: 'open', match: { path_prefix: '/open' }, service: 'app', auth: 'off' },
      { name: 'all', match: { path_prefix: '/' }, service: 'app' },
    ],
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
    admin: { token: ADMIN_TOKEN },
  });
  key = (await adminApi(client, gw.adminUrl!).post('/admin/api-keys', { name: 'spellings' })).json<{ key: string }>().key;
});

after(async () => {
  await client.close();
  await gw?.close();
  await backend?.stop();
});

const SPELLINGS = ['X_Api_Key', 'x-api_key', 'X_API-KEY'];

/** The header names (lower-case) the backend got for a request to `path` with `headers`. */
async function forwarded(path: string, headers: Record<string, string>): Promise<EchoBody['headers']> {
  const res = await client.request(`${gw.url}${path}`, { headers });
  assert.equal(res.status, 200, `${path} ${JSON.stringify(Object.keys(headers))}`);
  return res.json<EchoBody>().headers;
}

test('a gateway key under another spelling of X-API-Key never reaches the backend, on an auth: off route', async () => {
  for (const name of SPELLINGS) {
    const got = await forwarded('/open/x', { [name]: key });
    assert.equal(got[name.toLowerCase()], undefined, name);
  }
});

test('nor beside the valid X-API-Key the request was admitted with', async () => {
  for (const name of SPELLINGS) {
    const got = await forwarded('/x', { 'x-api-key': key, [name]: key });
    assert.equal(got['x-api-key'], undefined);
    assert.equal(got[name.toLowerCase()], undefined, name);
    assert.ok(got['x-consumer-id'] !== undefined, 'admitted by the key');
  }
});

test("a value of another shape under such a name is the backend's own and still passes", async () => {
  const got = await forwarded('/open/x', { X_Api_Key: 'backend-scheme-123' });
  assert.equal(got.x_api_key, 'backend-scheme-123');
});
