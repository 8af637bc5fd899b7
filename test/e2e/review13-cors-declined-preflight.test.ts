// A preflight for a `cors: off` route is the upstream's to answer (README, CORS). When it asks about a method whose
// route is `cors: off` but, matched as the OPTIONS it is, lands on a route with a CORS policy, that route's policy used
// to rewrite the upstream's answer: the upstream's Access-Control-* headers were taken away and the policy's origin
// put in their place, without any method, so the browser refused the DELETE whatever the upstream had approved.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';

const APP = 'https://app.example.com';
// Answers every preflight itself, as a backend with its own CORS middleware does.
const upstream = createServer((req, res) => {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'GET, DELETE',
      'access-control-allow-headers': 'x-custom',
      'access-control-max-age': '60',
    });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const port = (upstream.address() as AddressInfo).port;
const gw = await startInProcess({
  services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port }], health_check: { enabled: false } } },
  routes: [
    { name: 'get-only', match: { path: '/items', methods: ['GET'] }, service: 'app', cors: { allowed_origins: ['https://other.example'] } },
    { name: 'delete-off', match: { path: '/items', methods: ['DELETE'] }, service: 'app', cors: 'off' },
    { name: 'rest', match: { path_prefix: '/' }, service: 'app' },
  ],
  middleware: { cors: { allowed_origins: [APP], allow_credentials: true } },
});
after(async () => {
  await gw.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** An OPTIONS over a real connection: status and headers. */
function preflight(path: string, method: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': method } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test("a declined preflight that lands on a route with a policy keeps the upstream's answer whole", async () => {
  const res = await preflight('/items', 'DELETE');
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-allow-methods'], 'GET, DELETE', "the upstream's approval of the DELETE");
  assert.equal(res.headers['access-control-allow-headers'], 'x-custom');
  assert.equal(res.headers['access-control-max-age'], '60');
  assert.equal(res.headers['access-control-allow-credentials'], undefined, "the landing route's policy adds nothing");
  assert.match(String(res.headers.vary), /Origin/);
});

test('a preflight a policy answers is still answered by the gateway alone', async () => {
  const res = await preflight('/other', 'DELETE');
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-allow-credentials'], 'true');
  assert.notEqual(res.headers['access-control-max-age'], '60', "not the upstream's");
});
