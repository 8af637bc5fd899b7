// What was wrong: a route's `match.headers` condition read the client's own copy of a header the gateway owns. Routing
// runs before authentication, and the gateway drops such a copy before forwarding, so the condition judged a value
// no one vouched for: `headers: { x-real-ip: 10.0.0.5 }` on an `auth: off` route for an internal monitor was taken by
// any client that sent X-Real-IP: 10.0.0.5 itself, and `headers: { x-consumer-name: partner }` (set only after an API
// key is verified) by any client sending that header, to that route's auth and rate-limit policy.
// What is right now: a condition sees a request's headers as its upstream would: a forwarding header (X-Forwarded-*,
// Forwarded, X-Real-IP) only from a trusted proxy (server.trusted_proxies), else it is absent; a condition on a
// header the gateway always writes itself (identity, consumer, X-Request-ID, X-Proxy-By) can never hold, and is a
// config error naming the key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { configErrorOf } from '../helpers/config-error.js';

const client = createClient();
let monitor: TestBackend;
let app: TestBackend;

function config(trusted: readonly string[]): Record<string, unknown> {
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  return {
    server: { trusted_proxies: trusted },
    services: { monitor: svc(monitor), app: svc(app) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'app', match: { path_prefix: '/' }, service: 'app', auth: 'required' },
      { name: 'monitor', match: { path_prefix: '/', headers: { 'x-real-ip': '10.0.0.5' } }, service: 'monitor', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  };
}

before(async () => {
  [monitor, app] = await Promise.all([startBackend('monitor'), startBackend('app')]);
});
after(async () => {
  await client.close();
  await Promise.all([monitor?.stop(), app?.stop()]);
});

describe('a forwarding header condition', () => {
  let open: InProcessGateway;
  let behindProxy: InProcessGateway;
  before(async () => {
    [open, behindProxy] = await Promise.all([startInProcess(config(['192.0.2.1'])), startInProcess(config(['127.0.0.1']))]);
  });
  after(async () => {
    await Promise.all([open?.close(), behindProxy?.close()]);
  });

  test('from a client that is no trusted proxy, the header reads as absent: the auth-off route is not taken', async () => {
    const res = await client.request(`${open.url}/status`, { headers: { 'x-real-ip': '10.0.0.5' } });
    assert.equal(res.headers['x-backend'], undefined, 'no backend was reached');
    assert.equal(res.status, 401);
  });

  test('from a trusted proxy, the header holds and the route is taken', async () => {
    const res = await client.request(`${behindProxy.url}/status`, { headers: { 'x-real-ip': '10.0.0.5' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-backend'], 'monitor');
  });
});

test('a condition on a header the gateway always writes itself is a config error', () => {
  for (const name of ['x-consumer-name', 'X-User-Id', 'x_user_email', 'x-request-id']) {
    const routes = [{ name: 'partner', match: { headers: { [name]: 'partner' } }, service: 'x' }];
    const text = stringify({ services: { x: { upstreams: [{ name: 'x', address: '127.0.0.1', port: 1 }] } }, routes });
    assert.match(configErrorOf(text), /^routes\[0\]\.match\.headers: "[^"]+" is set by the gateway/, name);
  }
});
