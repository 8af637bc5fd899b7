// What was wrong: routes compared the path as sent, so a character a route path holds raw (":", "@", "+", ",", "=",
// "!", "$", "&", "'", "(", ")") could be sent percent-encoded to miss the route: the request-target rules accept
// %3A, %40 and the like (they are reserved, and clients encode them, e-mail addresses in paths for one), and Spring,
// Tomcat, Jetty, nginx, Go's ServeMux, Django and Flask decode them before they route. With `path: /v1/things:purge`
// and `path_prefix: /users/@me` under `auth: required` in front of a catch-all with `auth: off`,
// /v1/things%3Apurge and /users/%40me/settings took the catch-all and reached the protected handlers with no token.
// What is right now: routes compare those escapes as the characters they encode (as they compare case, see
// review-routing-path-case), over HTTP/1.1 alike; the target is still forwarded as sent, strip_prefix removes the
// matched segments whatever their spelling, and two route paths that differ only so are a config error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { configErrorOf } from '../helpers/config-error.js';

const client = createClient();
let admin: TestBackend;
let site: TestBackend;
let api: TestBackend;
let gw: InProcessGateway;

before(async () => {
  [admin, site, api] = await Promise.all([startBackend('admin'), startBackend('site'), startBackend('api')]);
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  gw = await startInProcess({
    services: { admin: svc(admin), site: svc(site), api: svc(api) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'site', match: { path_prefix: '/' }, service: 'site', auth: 'off' },
      { name: 'purge', match: { path: '/v1/things:purge' }, service: 'admin', auth: 'required' },
      { name: 'me', match: { path_prefix: '/users/@me' }, service: 'admin', auth: 'required' },
      { name: 'beta', match: { path_prefix: '/api/v1:beta' }, service: 'api', auth: 'off', strip_prefix: true },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  });
});
after(async () => {
  await client.close();
  await gw?.close();
  await Promise.all([admin?.stop(), site?.stop(), api?.stop()]);
});

test('an escaped ":" or "@" takes the route its raw spelling takes', async () => {
  for (const path of ['/v1/things:purge', '/v1/things%3Apurge', '/v1/things%3apurge', '/users/@me', '/users/%40me/settings', '/Users/%40ME']) {
    const res = await client.request(`${gw.url}${path}`);
    if (path === '/v1/things%3apurge') {
      // Lower-case hex is no canonical target: refused before routing, as before.
      assert.equal(res.status, 400, path);
      continue;
    }
    assert.equal(res.headers['x-backend'], undefined, `${path}: no backend was reached`);
    assert.equal(res.status, 401, path);
  }
  // Not the same segment: still the catch-all's.
  assert.equal((await client.request(`${gw.url}/users/%40mex`)).headers['x-backend'], 'site');
});

test('the target is forwarded as sent; strip_prefix removes the matched segments whatever their spelling', async () => {
  const mail = await client.request(`${gw.url}/people/a%40b.example`);
  assert.equal(mail.json<EchoBody>().url, '/people/a%40b.example');
  const res = await client.request(`${gw.url}/api/v1%3Abeta/items/a%40b?x=1`);
  const echo = res.json<EchoBody>();
  assert.equal(echo.backend, 'api');
  assert.equal(echo.url, '/items/a%40b?x=1');
  assert.equal((await client.request(`${gw.url}/API/V1%3ABETA`)).json<EchoBody>().url, '/');
});

test('two route paths that differ only by such an escape are a config error', () => {
  const routes = [
    { name: 'a', match: { path: '/v1/things:purge' }, service: 'x' },
    { name: 'b', match: { path: '/v1/things%3Apurge' }, service: 'x' },
  ];
  const text = stringify({ services: { x: { upstreams: [{ name: 'x', address: '127.0.0.1', port: 1 }] } }, routes });
  assert.match(configErrorOf(text), /routes\[1\]\.match: same match conditions as routes\[0\]/);
});
