// A preflight for a `cors: off` route is the upstream's to answer (README, CORS), and it is sent on as the OPTIONS
// it is. Landing on a route with a CORS policy, it used to get that policy's origin (with no method: a refusal
// dressed as half an approval); passing the landing upstream's own answer instead (a first fix) let a framework that
// reflects any Origin approve the other route's methods for every origin on a route whose policy must be the only
// one. It now gets no CORS headers there; a `cors: off` route that takes OPTIONS itself has its upstream answer whole.
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
    { name: 'legacy-off', match: { path: '/legacy', methods: ['DELETE', 'OPTIONS'] }, service: 'app', cors: 'off' },
    { name: 'rest', match: { path_prefix: '/' }, service: 'app' },
  ],
  middleware: { cors: { allowed_origins: [APP], allow_credentials: true } },
});
after(async () => {
  await gw.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** An OPTIONS over a real connection: status and headers. */
function preflight(path: string, method: string, origin = APP): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a declined preflight that lands on a route with a policy carries no CORS headers, neither the policy\'s nor the upstream\'s', async () => {
  for (const origin of [APP, 'https://evil.example']) {
    const res = await preflight('/items', 'DELETE', origin);
    assert.equal(res.status, 204, 'the landing upstream answered the OPTIONS');
    const cors = Object.keys(res.headers).filter((name) => name.startsWith('access-control-'));
    assert.deepEqual(cors, [], `${origin}: ${JSON.stringify(res.headers)}`);
    assert.match(String(res.headers.vary), /Origin/);
  }
});

test('a cors: off route that takes OPTIONS itself has its upstream answer its preflights whole', async () => {
  const res = await preflight('/legacy', 'DELETE');
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-allow-methods'], 'GET, DELETE', "the upstream's approval of the DELETE");
  assert.equal(res.headers['access-control-max-age'], '60');
  assert.equal(res.headers['access-control-allow-credentials'], undefined, 'no policy adds anything');
});

test('a preflight a policy answers is still answered by the gateway alone', async () => {
  const res = await preflight('/other', 'DELETE');
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-allow-credentials'], 'true');
  assert.notEqual(res.headers['access-control-max-age'], '60', "not the upstream's");
});
