// CORS and preflight matching cannot be used to reach another route or to read responses from a disallowed origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

test('an OPTIONS request dressed as a preflight gets the route an OPTIONS gets when no CORS phase answers it', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    // No active health check: its probes would reach the backend too, and the test counts what reaches it.
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'public-get', match: { path_prefix: '/api', methods: ['GET'] }, service: 'app', auth: 'off' },
      { name: 'private', match: { path_prefix: '/api' }, service: 'app' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  try {
    const hits = backend.hits;
    for (const asked of ['GET', 'get']) {
      const res = await gw.gateway.inject({
        method: 'OPTIONS',
        url: '/api/users/1',
        headers: { origin: 'https://evil.example', 'access-control-request-method': asked },
      });
      assert.equal(res.status, 401, 'the OPTIONS request is matched as OPTIONS: the auth-required route');
    }
    assert.equal(backend.hits, hits, 'nothing reached the upstream');
  } finally {
    await gw.close();
    await backend.stop();
  }
});

test("an upstream's own CORS headers never pass on a route with a CORS policy", async () => {
  // A backend that reflects any Origin with credentials, as some frameworks do by default.
  const upstream = createServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'access-control-allow-origin': String(req.headers.origin ?? '*'),
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'DELETE',
    });
    res.end('{"secret":true}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] },
    middleware: { cors: { allowed_origins: ['https://app.example.com'] } },
  });
  try {
    const evil = await gw.gateway.inject({ url: '/data', headers: { origin: 'https://evil.example' } });
    assert.equal(evil.status, 200);
    for (const name of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-methods']) {
      assert.equal(evil.headers[name], undefined, name);
    }
    const app = await gw.gateway.inject({ url: '/data', headers: { origin: 'https://app.example.com' } });
    assert.equal(app.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(app.headers['access-control-allow-credentials'], undefined, 'the policy has credentials off');
    const noOrigin = await gw.gateway.inject({ url: '/data' });
    assert.equal(noOrigin.json<{ secret: boolean }>().secret, true);
    assert.equal(noOrigin.headers['access-control-allow-origin'], undefined);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});

test('an exact path route also covers the path with a trailing slash', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] } },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'admin', match: { path: '/admin' }, service: 'app' },
      { name: 'rest', match: { path_prefix: '/' }, service: 'app', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  try {
    assert.equal((await gw.gateway.inject({ url: '/admin' })).status, 401);
    assert.equal((await gw.gateway.inject({ url: '/admin/' })).status, 401);
    assert.equal((await gw.gateway.inject({ url: '/adminx' })).json<EchoBody>().url, '/adminx');
  } finally {
    await gw.close();
    await backend.stop();
  }
});

test('every response on a CORS route varies on Origin, merged into the Vary the upstream sent', async () => {
  // The upstream's own Vary, as awkwardly spaced as a header allows.
  const upstream = createServer((req, res) => {
    const vary = req.url === '/spaced' ? `Accept-Encoding${' '.repeat(4_000)},${' '.repeat(4_000)}origin` : req.url === '/accept' ? 'Accept' : undefined;
    res.writeHead(200, vary === undefined ? {} : { vary });
    res.end('ok');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] },
    middleware: { cors: { allowed_origins: ['https://app.example.com'], allow_credentials: true } },
  });
  try {
    // Without an Origin the response has no CORS headers: a shared cache must not hand this copy to a browser's
    // cross-origin request, so it varies on Origin too.
    const plain = await gw.gateway.inject({ url: '/none' });
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    assert.equal(plain.headers.vary, 'Origin');
    const disallowed = await gw.gateway.inject({ url: '/accept', headers: { origin: 'https://evil.example' } });
    assert.equal(disallowed.headers.vary, 'Accept, Origin');
    const allowed = await gw.gateway.inject({ url: '/accept', headers: { origin: 'https://app.example.com' } });
    assert.equal(allowed.headers.vary, 'Accept, Origin');
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
    // Already listed (any case, any spacing): not added twice.
    const spaced = await gw.gateway.inject({ url: '/spaced', headers: { origin: 'https://app.example.com' } });
    assert.equal(String(spaced.headers.vary).match(/origin/gi)?.length, 1);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});

test('cors: off leaves the preflight to the upstream: no CORS policy answers it, not the catch-all\'s nor the 404\'s', async () => {
  const backend = await startBackend('echo');
  const cors = { allowed_origins: ['https://app.example.com'], allow_credentials: true };
  const routes = (catchAll: boolean) => [
    { name: 'legacy-put', match: { path_prefix: '/legacy', methods: ['PUT'] }, service: 'app', cors: 'off' },
    ...(catchAll ? [{ name: 'web', match: { path_prefix: '/' }, service: 'app' }] : [{ name: 'web', match: { path_prefix: '/web' }, service: 'app' }]),
  ];
  const preflight = { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' };
  for (const catchAll of [false, true]) {
    const gw = await startInProcess({
      services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
      routes: routes(catchAll),
      middleware: { cors },
    });
    try {
      const hits = backend.hits;
      const res = await gw.gateway.inject({ method: 'OPTIONS', url: '/legacy/item', headers: preflight });
      assert.equal(res.headers['access-control-allow-methods'], undefined, 'the gateway approved the PUT the route leaves to its upstream');
      if (catchAll) {
        // Routed as the OPTIONS it is: the catch-all forwards it.
        assert.equal(res.status, 200);
        assert.equal((JSON.parse(res.body) as EchoBody).method, 'OPTIONS');
        assert.equal(backend.hits, hits + 1);
      } else {
        assert.equal(res.status, 404, 'no route takes an OPTIONS to /legacy');
        assert.equal(backend.hits, hits);
      }
      // A preflight for a path no route covers: the 404 it is, not an approval.
      const nowhere = await gw.gateway.inject({ method: 'OPTIONS', url: '/nowhere', headers: preflight });
      if (!catchAll) {
        assert.equal(nowhere.status, 404);
        assert.equal(nowhere.headers['access-control-allow-methods'], undefined);
      }
      // A route with the policy still has its preflights answered by the gateway.
      const web = await gw.gateway.inject({ method: 'OPTIONS', url: '/web/x', headers: preflight });
      assert.equal(web.status, 204);
      assert.equal(web.headers['access-control-allow-origin'], 'https://app.example.com');
    } finally {
      await gw.close();
    }
  }
  await backend.stop();
});

test("a route's response_headers cannot drop the CORS policy's Vary: Origin stays on, on answers and preflights", async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    routes: [
      { name: 'strip', match: { path_prefix: '/strip' }, service: 'app', response_headers: { remove: ['vary'] } },
      { name: 'replace', match: { path_prefix: '/replace' }, service: 'app', response_headers: { set: { vary: 'Accept-Encoding' } } },
    ],
    middleware: { cors: { allowed_origins: ['https://app.example.com'], allow_credentials: true } },
  });
  try {
    const origin = { origin: 'https://app.example.com' };
    const stripped = await gw.gateway.inject({ url: '/strip/x', headers: origin });
    assert.equal(stripped.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(stripped.headers.vary, 'Origin', 'a cache would serve this origin\'s answer to every origin');
    const replaced = await gw.gateway.inject({ url: '/replace/x', headers: origin });
    assert.equal(replaced.headers.vary, 'Accept-Encoding, Origin');
    const preflight = await gw.gateway.inject({ method: 'OPTIONS', url: '/strip/x', headers: { ...origin, 'access-control-request-method': 'PUT' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.vary, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
  } finally {
    await gw.close();
    await backend.stop();
  }
});
