// A route's own auth_methods: one gateway where /machines accepts only API keys and /people only user tokens.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, register, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] } },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'machines', match: { path_prefix: '/machines' }, service: 'app', auth_methods: ['api_key'] },
      { name: 'people', match: { path_prefix: '/people' }, service: 'app', auth_methods: ['jwt'] },
      { name: 'both', match: { path_prefix: '/' }, service: 'app' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    admin: { token: ADMIN_TOKEN },
  });
});

after(async () => {
  await client.close();
  await gw?.close();
  await backend?.stop();
});

test('routes[].auth_methods narrows the credentials a route accepts', async () => {
  const created = await adminApi(client, gw.adminUrl!).post('/admin/api-keys', { name: 'robot' });
  assert.equal(created.status, 201, created.text);
  const key = created.json<{ key: string }>().key;
  const user = await register({ client, url: gw.url });
  const asKey = { authorization: `Bearer ${key}` };
  const asUser = { authorization: `Bearer ${user.access_token}` };
  const status = async (path: string, headers: Record<string, string>) => (await client.request(`${gw.url}${path}`, { headers })).status;
  assert.equal(await status('/machines/1', asKey), 200);
  assert.equal(await status('/machines/1', asUser), 401);
  assert.equal(await status('/people/1', asUser), 200);
  assert.equal(await status('/people/1', asKey), 401);
  const viaDefault = await client.request(`${gw.url}/any`, { headers: { 'x-api-key': key } });
  assert.equal(viaDefault.status, 200);
  assert.ok(viaDefault.json<EchoBody>().headers['x-consumer-id'], 'an API-key caller is forwarded as a consumer');
});
