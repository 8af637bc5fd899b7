// What was wrong: a route's `methods: [GET]` did not match HEAD, so a HEAD request to a GET-only route fell through to
// the next route that matched (a catch-all, say) and took that route's auth, rate limit and service instead. Backends
// (Express, Flask, Rails, Spring) answer HEAD with their GET handler, so `HEAD /admin/report` ran the protected GET
// handler with no token, and its response headers (Content-Length, ETag, custom headers) came back.
// What is right now: a route whose `methods` list GET also takes HEAD (RFC 9110 §9.3.2: HEAD is GET without the
// body; nginx's limit_except does the same), over HTTP/1.1 and HTTP/2 alike. A route listing HEAD itself still wins
// a HEAD over a route that only takes it through GET, and a route without GET does not take HEAD.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';

const client = createClient();
let protectedApp: TestBackend;
let site: TestBackend;
let probe: TestBackend;

/** A protected GET-only route under a public catch-all, as an operator writes it; TLS gives the h2 listener. */
function config(tls?: { cert_file: string; key_file: string }): Record<string, unknown> {
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  return {
    ...(tls ? { server: { tls } } : {}),
    services: { admin: svc(protectedApp), site: svc(site), probe: svc(probe) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'site', match: { path_prefix: '/' }, service: 'site', auth: 'off' },
      { name: 'admin-read', match: { path_prefix: '/admin', methods: ['GET'] }, service: 'admin', auth: 'required' },
      { name: 'reports', match: { path_prefix: '/reports', methods: ['GET', 'POST'] }, service: 'admin', auth: 'off' },
      { name: 'reports-head', match: { path_prefix: '/reports', methods: ['HEAD'] }, service: 'probe', auth: 'off' },
      { name: 'writes', match: { path_prefix: '/writes', methods: ['POST'] }, service: 'admin', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  };
}

before(async () => {
  [protectedApp, site, probe] = await Promise.all([startBackend('admin'), startBackend('site'), startBackend('probe')]);
});
after(async () => {
  await client.close();
  await Promise.all([protectedApp?.stop(), site?.stop(), probe?.stop()]);
});

describe('HEAD takes the route of GET (HTTP/1.1)', () => {
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess(config());
  });
  after(async () => {
    await gw?.close();
  });

  test('HEAD to a GET-only route with auth required is refused without a token, not sent to the catch-all', async () => {
    const get = await client.request(`${gw.url}/admin/report`);
    assert.equal(get.status, 401);
    const head = await client.request(`${gw.url}/admin/report`, { method: 'HEAD' });
    assert.equal(head.headers['x-backend'], undefined, 'no backend was reached');
    assert.equal(head.status, 401);
  });

  test('a route listing HEAD itself wins a HEAD; a route without GET does not take HEAD', async () => {
    const head = await client.request(`${gw.url}/reports/1`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-backend'], 'probe');
    assert.equal((await client.request(`${gw.url}/reports/1`)).headers['x-backend'], 'admin');
    const postOnly = await client.request(`${gw.url}/writes/1`, { method: 'HEAD' });
    assert.equal(postOnly.headers['x-backend'], 'site');
  });
});

describe('HEAD takes the route of GET (HTTP/2)', () => {
  const tls = aTestCertificateHooks('Routing HEAD CA');
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess(config({ cert_file: tls.certFile, key_file: tls.keyFile }));
    tls.gateways.push(gw);
  });

  test('HEAD over h2 to a GET-only route with auth required is refused without a token', async () => {
    const session = await h2connect(gw.gateway.port, tls.ca.ca);
    try {
      const head = await h2request(session, { ':method': 'HEAD', ':path': '/admin/report', ':authority': 'a.test' });
      assert.equal(head.headers['x-backend'], undefined, 'no backend was reached');
      assert.equal(head.status, 401);
      const own = await h2request(session, { ':method': 'HEAD', ':path': '/reports/1', ':authority': 'a.test' });
      assert.equal(own.headers['x-backend'], 'probe');
    } finally {
      session.close();
    }
  });
});
