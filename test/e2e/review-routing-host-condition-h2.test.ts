// What was wrong: a route's `match.headers` condition on `host` read the Host header, which HTTP/2 clients do not send
// (they name the target in :authority, RFC 9113 §8.3.1). The same request matched the route over HTTP/1.1 and never
// over HTTP/2, where it fell through to the next route (a catch-all with auth off), although the backend received the
// same Host either way (the gateway sends :authority upstream as Host).
// What is right now: the condition reads what the gateway sends upstream as Host: :authority over HTTP/2 (Host when a
// client sent no :authority), Host over HTTP/1.1; the route is taken over both alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { h2connect, h2request, httpsGet } from '../helpers/h2.js';

const tls = aTestCertificateHooks('Routing host condition CA');
let internal: TestBackend;
let site: TestBackend;
let gw: InProcessGateway;

before(async () => {
  [internal, site] = await Promise.all([startBackend('internal'), startBackend('site')]);
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  gw = await startInProcess({
    server: { tls: { cert_file: tls.certFile, key_file: tls.keyFile } },
    services: { internal: svc(internal), site: svc(site) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'site', match: { path_prefix: '/' }, service: 'site', auth: 'off' },
      { name: 'internal', match: { path_prefix: '/', headers: { host: 'a.test' } }, service: 'internal', auth: 'required' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  });
  tls.gateways.push(gw);
});
after(async () => {
  await Promise.all([internal?.stop(), site?.stop()]);
});

test('over HTTPS/1.1, Host: a.test takes the route with the host condition (401 without a token)', async () => {
  const res = await httpsGet(gw.gateway.port, tls.ca.ca, 'a.test', '/x');
  assert.equal(res.status, 401);
});

test('over HTTP/2, :authority a.test takes the same route, with or without a Host beside it', async () => {
  const session = await h2connect(gw.gateway.port, tls.ca.ca);
  try {
    const bare = await h2request(session, { ':method': 'GET', ':path': '/x', ':authority': 'a.test' });
    assert.equal(bare.headers['x-backend'], undefined, 'no backend was reached');
    assert.equal(bare.status, 401);
    const both = await h2request(session, { ':method': 'GET', ':path': '/x', ':authority': 'a.test', host: 'a.test' });
    assert.equal(both.status, 401);
    const other = await h2request(session, { ':method': 'GET', ':path': '/x', ':authority': 'b.test' });
    assert.equal(other.headers['x-backend'], 'site');
  } finally {
    session.close();
  }
});
