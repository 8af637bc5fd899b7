// A preflight answer is cached by the browser per URL, for every method it lists and every header it allows, while
// the gateway routes by method: an answer from one route's policy must not let the browser skip the preflight of a
// request that lands on a route with another policy (or none) at the same URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const APP = 'https://app.example.com';
const ADMIN = 'https://admin.example.com';

function preflight(port: number, path: string, method: string, origin = APP): Promise<RawResponse> {
  return rawRequest(
    port,
    `OPTIONS ${path} HTTP/1.1\r\nHost: api.example.com\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: ${method}\r\n` +
      'Access-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n',
  );
}

async function withGateway(routes: ConfigInput[], run: (port: number) => Promise<void>): Promise<void> {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    jwt: { secret: TEST_SECRET },
    routes,
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, cors: { allowed_origins: [APP], allow_credentials: true } },
  });
  try {
    await run(gw.gateway.port);
  } finally {
    await gw.close();
    await backend.stop();
  }
}

test('a preflight answer is not cacheable when another method of the same URL lands on a route with cors: off', async () => {
  await withGateway(
    [
      { name: 'reports-read', match: { path_prefix: '/reports', methods: ['GET'] }, service: 'app', auth: 'off' },
      // Its upstream judges its own preflights (it allows only the admin console).
      { name: 'reports-admin', match: { path_prefix: '/reports', methods: ['DELETE'] }, service: 'app', cors: 'off' },
    ],
    async (port) => {
      const res = await preflight(port, '/reports/1', 'GET');
      assert.equal(res.status, 204);
      assert.equal(res.headers['access-control-allow-origin'], APP);
      // The answer lists DELETE (the policy's default methods): cached for 600 s, the browser would send the
      // credentialed DELETE to reports-admin without the preflight its upstream was meant to judge.
      assert.equal(res.headers['access-control-max-age'], '0', 'the approval must not be cached for this URL');
      // The DELETE's own preflight still goes to its upstream (unchanged).
      const del = await preflight(port, '/reports/1', 'DELETE');
      assert.equal(del.headers['access-control-allow-methods'], undefined);
    },
  );
});

test('a preflight answer is not cacheable when a safelisted method of the same URL reaches another policy', async () => {
  // POST needs no method entry in the preflight cache: the header entries a PUT preflight created (authorization)
  // would let a credentialed POST with that header skip its preflight, though its route has another policy.
  await withGateway(
    [
      { name: 'items-put', match: { path: '/items', methods: ['PUT'] }, service: 'app', auth: 'off' },
      { name: 'items-post', match: { path: '/items', methods: ['POST'] }, service: 'app', auth: 'off', cors: { allowed_origins: [ADMIN] } },
      { name: 'other-get', match: { path: '/other', methods: ['GET'] }, service: 'app', auth: 'off', cors: { allowed_origins: [ADMIN] } },
      { name: 'other-put', match: { path: '/other', methods: ['PUT'] }, service: 'app', auth: 'off' },
    ],
    async (port) => {
      const put = await preflight(port, '/items', 'PUT');
      assert.equal(put.headers['access-control-allow-origin'], APP);
      assert.equal(put.headers['access-control-max-age'], '0');
      // The other way round: the admin policy's answer for GET must not be cached for the PUT of the global one.
      const get = await preflight(port, '/other', 'GET', ADMIN);
      assert.equal(get.headers['access-control-allow-origin'], ADMIN);
      assert.equal(get.headers['access-control-max-age'], '0');
      // Spelling does not matter: the path compares as routes compare it.
      const upper = await preflight(port, '/ITEMS', 'PUT');
      assert.equal(upper.headers['access-control-max-age'], '0');
    },
  );
});

test('a preflight answer stays cacheable where every method of the URL has the same policy, or no route', async () => {
  await withGateway(
    [
      // Same (global) policy on both methods: different auth does not matter to CORS.
      { name: 'docs-read', match: { path_prefix: '/docs', methods: ['GET'] }, service: 'app', auth: 'off' },
      { name: 'docs-write', match: { path_prefix: '/docs' }, service: 'app' },
      // GET only: other methods are 404, which no browser request can use.
      { name: 'feed', match: { path_prefix: '/feed', methods: ['GET'] }, service: 'app', auth: 'off' },
      // One route for every method.
      { name: 'all', match: { path_prefix: '/all' }, service: 'app', auth: 'off' },
    ],
    async (port) => {
      for (const [path, method] of [['/docs/a', 'PUT'], ['/docs/a', 'GET'], ['/feed', 'GET'], ['/all/x', 'DELETE']] as const) {
        const res = await preflight(port, path, method);
        assert.equal(res.status, 204, `${method} ${path}`);
        assert.equal(res.headers['access-control-max-age'], '600', `${method} ${path}`);
      }
    },
  );
});
