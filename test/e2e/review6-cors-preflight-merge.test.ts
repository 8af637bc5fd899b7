// The Fetch standard's CORS-preflight cache (Firefox follows it) keeps one entry per method and one per header name
// for an origin + URL, and a later preflight answer adds to them: a request skips its preflight when its method and
// each of its headers match some entry, whichever answer made it. So two cacheable answers of two policies on one
// URL merge: one route's method with the other route's headers is sent unasked. Every method a route of the URL
// takes counts, not only those the asking policy lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';

const APP = 'https://app.example.com';

function preflight(port: number, path: string, method: string, headers: string): Promise<RawResponse> {
  return rawRequest(
    port,
    `OPTIONS ${path} HTTP/1.1\r\nHost: api.example.com\r\nOrigin: ${APP}\r\nAccess-Control-Request-Method: ${method}\r\n` +
      `Access-Control-Request-Headers: ${headers}\r\nConnection: close\r\n\r\n`,
  );
}

async function withGateway(routes: ConfigInput[], run: (port: number) => Promise<void>): Promise<void> {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    routes,
    middleware: { cors: { allowed_origins: [APP] } },
  });
  try {
    await run(gw.gateway.port);
  } finally {
    await gw.close();
    await backend.stop();
  }
}

const WRITER = { allowed_origins: [APP], allowed_methods: ['PUT'], allowed_headers: ['content-type'] };
const ADMIN = { allowed_origins: [APP], allowed_methods: ['DELETE'], allowed_headers: ['content-type', 'x-admin-token'] };

test('two policies on one URL whose allowed methods never meet: neither answer is cacheable', async () => {
  await withGateway(
    [
      { name: 'items-put', match: { path: '/items', methods: ['PUT'] }, service: 'app', cors: WRITER },
      { name: 'items-delete', match: { path: '/items', methods: ['DELETE'] }, service: 'app', cors: ADMIN },
    ],
    async (port) => {
      const put = await preflight(port, '/items', 'PUT', 'content-type');
      assert.equal(put.status, 204);
      assert.equal(put.headers['access-control-allow-methods'], 'PUT');
      const del = await preflight(port, '/items', 'DELETE', 'x-admin-token');
      assert.equal(del.status, 204);
      assert.equal(del.headers['access-control-allow-headers'], 'content-type, x-admin-token');
      // Cached together they would send a PUT carrying X-Admin-Token to items-put unasked, a header its policy
      // never allowed.
      assert.equal(put.headers['access-control-max-age'], '0', 'the PUT answer must not be cached');
      assert.equal(del.headers['access-control-max-age'], '0', 'the DELETE answer must not be cached');
    },
  );
});

test('a route that takes every method the others do not name counts too, from either side', async () => {
  await withGateway(
    [
      { name: 'items-put', match: { path: '/items', methods: ['PUT'] }, service: 'app', cors: WRITER },
      // Takes every method but PUT: GET, DELETE, PATCH and any other.
      { name: 'items-rest', match: { path: '/items' }, service: 'app', cors: ADMIN },
    ],
    async (port) => {
      const put = await preflight(port, '/items', 'PUT', 'content-type');
      assert.equal(put.headers['access-control-max-age'], '0');
      const del = await preflight(port, '/items', 'DELETE', 'x-admin-token');
      assert.equal(del.status, 204);
      assert.equal(del.headers['access-control-max-age'], '0');
    },
  );
});

test('one policy on every route of a URL, or other policies on other URLs only: cacheable as before', async () => {
  await withGateway(
    [
      { name: 'items-put', match: { path: '/items', methods: ['PUT'] }, service: 'app', cors: WRITER },
      { name: 'items-patch', match: { path: '/items', methods: ['PATCH'] }, service: 'app', cors: WRITER },
      { name: 'admin-delete', match: { path: '/admin', methods: ['DELETE'] }, service: 'app', cors: ADMIN },
    ],
    async (port) => {
      for (const [path, method] of [['/items', 'PUT'], ['/items', 'PATCH'], ['/admin', 'DELETE']] as const) {
        const res = await preflight(port, path, method, 'content-type');
        assert.equal(res.status, 204, `${method} ${path}`);
        assert.equal(res.headers['access-control-max-age'], '600', `${method} ${path}`);
      }
    },
  );
});
