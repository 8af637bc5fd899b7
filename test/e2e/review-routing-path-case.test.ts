// What was wrong: routes compared paths case-sensitively, but many backends do not: Express (its default), ASP.NET
// Core and IIS serve /ADMIN/users as /admin/users. So with `path_prefix: /admin` and `auth: required` in front of a
// catch-all with `auth: off`, GET /Admin/users took the catch-all and reached the admin handler with no token, the
// very divergence between what the gateway matched and what the backend served that the request-target rules exist
// to rule out.
// What is right now: route paths (`path`, `path_prefix`) compare ASCII case-insensitively, over HTTP/1.1 and HTTP/2
// alike, so every spelling of a protected path takes the protected route; the target is still forwarded as sent
// (a case-sensitive backend answers its own 404), strip_prefix removes the prefix whatever its case, and two routes
// whose paths differ only in case are a config error (one of them could never be chosen).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { configErrorOf } from '../helpers/config-error.js';

const client = createClient();
let admin: TestBackend;
let site: TestBackend;
let api: TestBackend;

function config(tls?: { cert_file: string; key_file: string }): Record<string, unknown> {
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  return {
    ...(tls ? { server: { tls } } : {}),
    services: { admin: svc(admin), site: svc(site), api: svc(api) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'site', match: { path_prefix: '/' }, service: 'site', auth: 'off' },
      { name: 'admin', match: { path_prefix: '/admin' }, service: 'admin', auth: 'required' },
      { name: 'console', match: { path: '/Console' }, service: 'admin', auth: 'required' },
      { name: 'api', match: { path_prefix: '/api/v1' }, service: 'api', auth: 'off', strip_prefix: true, add_prefix: '/internal' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  };
}

before(async () => {
  [admin, site, api] = await Promise.all([startBackend('admin'), startBackend('site'), startBackend('api')]);
});
after(async () => {
  await client.close();
  await Promise.all([admin?.stop(), site?.stop(), api?.stop()]);
});

describe('route paths compare case-insensitively (HTTP/1.1)', () => {
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess(config());
  });
  after(async () => {
    await gw?.close();
  });

  test('any spelling of a protected prefix or exact path takes the protected route', async () => {
    for (const path of ['/admin/users', '/Admin/users', '/ADMIN', '/aDmIn/', '/console', '/CONSOLE/', '/Console']) {
      const res = await client.request(`${gw.url}${path}`);
      assert.equal(res.headers['x-backend'], undefined, `${path}: no backend was reached`);
      assert.equal(res.status, 401, path);
    }
    // A path that only starts with the same letters is still not under the prefix.
    assert.equal((await client.request(`${gw.url}/ADMINX`)).headers['x-backend'], 'site');
  });

  test('the target is forwarded as sent, and strip_prefix removes the prefix whatever its case', async () => {
    const res = await client.request(`${gw.url}/API/V1/Items?q=A`);
    assert.equal(res.status, 200);
    const echo = res.json<EchoBody>();
    assert.equal(echo.backend, 'api');
    assert.equal(echo.url, '/internal/Items?q=A');
    assert.equal(echo.headers['x-forwarded-prefix'], '/api/v1');
    assert.equal((await client.request(`${gw.url}/Api/v1`)).json<EchoBody>().url, '/internal/');
  });
});

describe('route paths compare case-insensitively (HTTP/2)', () => {
  const tls = aTestCertificateHooks('Routing path case CA');
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess(config({ cert_file: tls.certFile, key_file: tls.keyFile }));
    tls.gateways.push(gw);
  });

  test('an upper-case spelling of a protected prefix over h2 is refused without a token', async () => {
    const session = await h2connect(gw.gateway.port, tls.ca.ca);
    try {
      const res = await h2request(session, { ':method': 'GET', ':path': '/Admin/users', ':authority': 'a.test' });
      assert.equal(res.headers['x-backend'], undefined, 'no backend was reached');
      assert.equal(res.status, 401);
    } finally {
      session.close();
    }
  });
});

test('two routes whose paths differ only in case are a config error', () => {
  const routes = [
    { name: 'a', match: { path_prefix: '/Admin' }, service: 'x' },
    { name: 'b', match: { path_prefix: '/admin/' }, service: 'x' },
  ];
  const text = stringify({ services: { x: { upstreams: [{ name: 'x', address: '127.0.0.1', port: 1 }] } }, routes });
  assert.match(configErrorOf(text), /routes\[1\]\.match: same match conditions as routes\[0\]/);
});
