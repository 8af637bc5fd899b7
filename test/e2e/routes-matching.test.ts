// Routes end to end: which service a request reaches, and exactly what that service receives (path, Host,
// X-Forwarded-Prefix), through the real pipeline with in-process requests (inject) and real backends.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

describe('routes and services', () => {
  let users: TestBackend;
  let billing: TestBackend;
  let fallback: TestBackend;
  let gw: InProcessGateway;

  before(async () => {
    [users, billing, fallback] = await Promise.all([startBackend('users'), startBackend('billing'), startBackend('fallback')]);
    const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
    gw = await startInProcess({
      services: { users: svc(users), billing: svc(billing), fallback: svc(fallback) },
      routes: [
        { name: 'catch-all', match: { path_prefix: '/' }, service: 'fallback' },
        { name: 'users', match: { path_prefix: '/users' }, service: 'users', strip_prefix: true },
        { name: 'users-v2', match: { path_prefix: '/users', headers: { 'x-api-version': '2' } }, service: 'users', strip_prefix: true, add_prefix: '/v2' },
        { name: 'users-write', match: { path_prefix: '/users', methods: ['POST', 'PUT'] }, service: 'billing' },
        { name: 'billing-host', match: { hosts: ['billing.example.com'] }, service: 'billing', host: 'upstream' },
        { name: 'wild', match: { hosts: ['*.example.com'], path_prefix: '/' }, service: 'users', host: 'internal.users' },
        { name: 'exact', match: { path: '/status' }, service: 'billing', add_prefix: '/v1/' },
        { name: 'only-host', match: { hosts: ['only.test'], path: '/x' }, service: 'billing' },
        // Container and compose service names may hold "_", which the request's Host check accepts.
        { name: 'compose-name', match: { hosts: ['billing_api', '*.my_stack.internal'] }, service: 'billing' },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await Promise.all([users?.stop(), billing?.stop(), fallback?.stop()]);
  });

  async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; echo: EchoBody }> {
    const res = await gw.gateway.inject({ method, url, headers: { host: 'gw.test', ...headers } });
    return { status: res.status, echo: res.json<EchoBody>() };
  }

  test('a prefix route strips its prefix and says so in X-Forwarded-Prefix', async () => {
    const a = await get('/users/42?x=1');
    assert.equal(a.echo.backend, 'users');
    assert.equal(a.echo.url, '/42?x=1');
    assert.equal(a.echo.headers['x-forwarded-prefix'], '/users');
    assert.equal((await get('/users')).echo.url, '/');
    assert.equal((await get('/users/')).echo.url, '/');
    // /usersx is not under /users: the catch-all takes it, unchanged.
    const x = await get('/usersx');
    assert.equal(x.echo.backend, 'fallback');
    assert.equal(x.echo.url, '/usersx');
    assert.equal(x.echo.headers['x-forwarded-prefix'], undefined);
  });

  test('a headers condition wins over the plain route, and add_prefix joins with one slash', async () => {
    assert.equal((await get('/users/1', { 'x-api-version': '2' })).echo.url, '/v2/1');
    assert.equal((await get('/users', { 'x-api-version': '2' })).echo.url, '/v2/');
    assert.equal((await get('/users/1', { 'x-api-version': '3' })).echo.url, '/1');
  });

  test('a host with an underscore (a compose service name) is routed by that host', async () => {
    assert.equal((await get('/x', { host: 'billing_api:8080' })).echo.backend, 'billing');
    assert.equal((await get('/x', { host: 'Svc.My_Stack.internal' })).echo.backend, 'billing');
    assert.equal((await get('/x', { host: 'billing-api' })).echo.backend, 'fallback');
  });

  test('a methods condition wins for its methods only', async () => {
    assert.equal((await get('/users/1', {}, 'POST')).echo.backend, 'billing');
    assert.equal((await get('/users/1', {}, 'GET')).echo.backend, 'users');
  });

  test('an exact host beats a wildcard, which beats no host; the port and case of Host do not matter', async () => {
    const exact = await get('/anything', { host: 'Billing.Example.COM:8443' });
    assert.equal(exact.echo.backend, 'billing');
    assert.equal(exact.echo.headers.host, `127.0.0.1:${billing.port}`, 'host: upstream sends the upstream address');
    const wild = await get('/users/1', { host: 'a.b.example.com' });
    assert.equal(wild.echo.backend, 'users');
    assert.equal(wild.echo.headers.host, 'internal.users', 'a literal host');
    assert.equal(wild.echo.url, '/users/1', 'the wildcard route does not strip');
    // The bare domain is not under "*.example.com".
    assert.equal((await get('/x', { host: 'example.com' })).echo.backend, 'fallback');
  });

  test('host: preserve (the default) passes the client Host through', async () => {
    assert.equal((await get('/plain', { host: 'client.test:8080' })).echo.headers.host, 'client.test:8080');
  });

  test('an exact path route matches that path only', async () => {
    const s = await get('/status');
    assert.equal(s.echo.backend, 'billing');
    assert.equal(s.echo.url, '/v1/status');
    assert.equal((await get('/status/x')).echo.backend, 'fallback');
  });

  test('no route matches: 404 with code route_not_found, and the gateway headers', async () => {
    const gw2 = await startInProcess({
      services: { users: { upstreams: [{ name: 'u', address: '127.0.0.1', port: users.port }] } },
      routes: [{ name: 'users', match: { path_prefix: '/users' }, service: 'users' }],
    });
    try {
      const res = await createClient().request(`${gw2.url}/nowhere`);
      assert.equal(res.status, 404);
      const body = res.json();
      assert.equal(body.code, 'route_not_found');
      assert.equal(typeof body.request_id, 'string');
      assert.ok(res.headers['x-request-id']);
      assert.equal(res.headers['x-proxy-by'], 'Portcullis');
      const done = gw2.logs.find((l) => l.msg === 'Request Completed' && l.status === 404);
      assert.equal(done?.route, 'none');
      // /health stays the gateway's own, ahead of every user route.
      assert.equal((await createClient().request(`${gw2.url}/health`)).status, 200);
    } finally {
      await gw2.close();
    }
  });

  test('logs name the route and the upstream service of each request', async () => {
    const res = await createClient().request(`${gw.url}/users/7`);
    assert.equal(res.status, 200);
    const id = res.headers['x-request-id'];
    const done = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
    assert.equal(done?.route, 'users');
    assert.equal(done?.upstream_service, 'users');
  });
});

// At debug level a request no route takes is logged with why each route refused it. A header condition's value is
// often a shared secret and the request's header an Authorization: the verdicts name the header, never a value.
describe('the debug line of a request no route matches', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  before(async () => {
    backend = await startBackend('internal');
    gw = await startInProcess({
      logging: { level: 'debug' },
      services: { internal: { upstreams: [{ name: 'internal', address: '127.0.0.1', port: backend.port }] } },
      routes: [
        { name: 'by-key', match: { path_prefix: '/int', headers: { 'x-internal-key': 'HDR-SECRET-123' } }, service: 'internal' },
        { name: 'by-basic', match: { path_prefix: '/svc', headers: { authorization: 'Basic c3ZjOnNlY3JldA==' } }, service: 'internal' },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
  });

  test('names the header that differed or was absent, never its value or the configured one', async () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['/int/x', { 'x-internal-key': 'guess-value' }, 'by-key: header x-internal-key differs'],
      ['/svc/x', { authorization: 'Bearer users-own-token-XYZ' }, 'by-basic: header authorization differs'],
      ['/int/y', {}, 'by-key: header x-internal-key is absent'],
    ];
    for (const [path, headers, verdict] of cases) {
      const res = await gw.gateway.inject({ method: 'GET', url: path, headers: { host: 'gw.test', ...headers } });
      assert.equal(res.status, 404);
      const line = gw.logs.find((l) => l.msg === 'Route Not Found' && l.path === path);
      assert.ok(line, `a Route Not Found line for ${path}`);
      assert.ok((line.tried as string[]).includes(verdict), JSON.stringify(line.tried));
    }
    const all = JSON.stringify(gw.logs);
    for (const secret of ['HDR-SECRET-123', 'guess-value', 'users-own-token-XYZ', 'c3ZjOnNlY3JldA==']) assert.ok(!all.includes(secret), secret);
  });
});
