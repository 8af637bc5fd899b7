// An exact path and its trailing-slash twin are one resource to most backends (Express with its default non-strict
// routing, Fastify's ignoreTrailingSlash, ASP.NET Core), so a route must take both spellings whichever one it names:
// `path: /secret/` with auth let `/secret` through to a catch-all with auth off, and the backend answered it with the
// `/secret/` handler. Where both spellings are routes of their own, each takes the spelling it names; and a twin never
// takes a path from a prefix route with stricter auth (an open `/admin/` took `/admin` from a guarded `/admin` prefix).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const backend = await startBackend('echo');
const gw = await startInProcess({
  services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
  jwt: { secret: TEST_SECRET },
  routes: [
    { name: 'secret', match: { path: '/secret/' }, service: 'app' },
    { name: 'status-open', match: { path: '/status' }, service: 'app', auth: 'off' },
    { name: 'status-guarded', match: { path: '/status/' }, service: 'app' },
    { name: 'landing', match: { path: '/admin/' }, service: 'app', auth: 'off' },
    { name: 'host-landing', match: { hosts: ['api.example.com'], path: '/panel/' }, service: 'app', auth: 'off' },
    { name: 'panel', match: { path_prefix: '/panel' }, service: 'app' },
    { name: 'admin', match: { path_prefix: '/admin' }, service: 'app' },
    { name: 'rest', match: { path_prefix: '/' }, service: 'app', auth: 'off' },
  ],
  // No limiter: every refused request here would count against the one client's address.
  middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
});
after(async () => {
  await gw.close();
  await backend.stop();
});

async function status(path: string, method = 'GET'): Promise<number> {
  const res = await fetch(`${gw.url}${path}`, { method });
  await res.arrayBuffer();
  return res.status;
}

test('a route written with a trailing slash takes the path without it, in every spelling', async () => {
  const hits = backend.hits;
  for (const path of ['/secret/', '/secret', '/SECRET', '/Secret/', '/secret?x=1', '/secret/?x=1']) {
    assert.equal(await status(path), 401, `${path} is the protected route's`);
  }
  assert.equal(await status('/secret', 'HEAD'), 401, 'HEAD too');
  assert.equal(backend.hits, hits, 'nothing reached the backend');
});

test('one slash only, and only at the end: other paths stay with the catch-all', async () => {
  for (const path of ['/secretx', '/secret/x', '/secre', '/secret/x/']) {
    const res = await fetch(`${gw.url}${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(((await res.json()) as EchoBody).url, path, 'forwarded as sent');
  }
});

test('both spellings as routes: each takes its own, whatever the file order', async () => {
  assert.equal(await status('/status'), 200, 'the open route');
  assert.equal(await status('/status/'), 401, 'the guarded route, not the open one before it in the file');
  assert.equal(await status('/STATUS/'), 401);
});

test('an open slash twin never takes a path from a guarded prefix route', async () => {
  // Spring and Flask (strict slashes) serve /admin and /admin/ apart: "/admin" stays with the guarded prefix route.
  assert.equal(await status('/admin'), 401);
  assert.equal(await status('/ADMIN'), 401);
  assert.equal(await status('/admin/users'), 401);
  assert.equal(await status('/admin/'), 200, 'the landing page, open as written');
});

test('whatever hosts it names, an open slash twin never takes a path from a guarded route', async () => {
  // fetch() sends its own Host: node:http sends the one given.
  const get = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(`${gw.url}${path}`, { headers: { host: 'api.example.com' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  assert.equal(await get('/panel'), 401, 'the guarded prefix route, not the host route\'s twin');
  assert.equal(await get('/panel/'), 200, 'the host route, as written');
});
