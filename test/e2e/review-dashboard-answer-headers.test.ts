// Every answer of the admin listener, not only the dashboard's own files, carries X-Content-Type-Options: nosniff
// and a Content-Security-Policy that forbids everything and every framer: /api/status, /metrics, /ready, the users
// API (whose JSON holds emails anyone can register on the public listener) and every error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
before(async () => {
  backend = await startBackend('one');
});
after(async () => {
  await client.close();
  await backend?.stop();
});

function assertGuarded(res: TestResponse, what: string): void {
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what} (${res.status}): nosniff`);
  const csp = String(res.headers['content-security-policy'] ?? '');
  assert.match(csp, /frame-ancestors 'none'/, `${what} (${res.status}): no framing`);
  assert.match(csp, /default-src 'none'/, `${what} (${res.status}): nothing loads`);
}

describe('an admin listener with a token and the users API', () => {
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
      admin: { token: ADMIN_TOKEN },
    });
  });
  after(() => gw?.close());

  test('every answer, authorised or refused, found or not, carries nosniff and a deny-all policy', async () => {
    // A user registered on the public listener: its email is in the users API's JSON.
    const registered = await client.postJson(`${gw.url}/auth/register`, { email: 'x<img src=x onerror=alert(1)>@example.com', password: 'a-long-password' });
    assert.ok(registered.status === 201 || registered.status === 400, `register: ${registered.status}`);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const cases: [string, string, Record<string, string>][] = [
      ['GET', '/', {}],
      ['GET', '/dashboard.js', {}],
      ['GET', '/api/status', auth],
      ['GET', '/metrics', auth],
      ['GET', '/ready', {}],
      ['GET', '/admin/users', auth],
      ['GET', '/admin/api-keys', auth],
      ['GET', '/admin/users/00000000-0000-4000-8000-000000000000', auth],
      ['GET', '/api/status', {}],
      ['GET', '/api/status', { authorization: 'Bearer wrong-token-0123456789' }],
      ['GET', '/nope', auth],
      ['DELETE', '/api/status', auth],
      ['GET', '/reload', auth],
      ['HEAD', '/api/status', auth],
    ];
    for (const [method, path, headers] of cases) {
      assertGuarded(await client.request(`${gw.adminUrl}${path}`, { method, headers }), `${method} ${path}`);
    }
  });
});

describe('a tokenless admin listener on loopback', () => {
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  });
  after(() => gw?.close());

  test('its refusals and the answers a browser on this machine can reach carry them too', async () => {
    const port = new URL(gw.adminUrl!).port;
    assertGuarded(await client.request(`${gw.adminUrl}/api/status`), 'GET /api/status');
    assertGuarded(await client.request(`${gw.adminUrl}/metrics`), 'GET /metrics');
    assertGuarded(await client.request(`${gw.adminUrl}/api/status`, { headers: { host: `attacker.example:${port}` } }), 'foreign Host');
    assertGuarded(await client.request(`${gw.adminUrl}/reload`, { method: 'POST', headers: { origin: 'http://attacker.example' } }), 'cross-origin reload');
    assertGuarded(await client.request(`${gw.adminUrl}/admin/users`), 'users API without a token');
  });
});
