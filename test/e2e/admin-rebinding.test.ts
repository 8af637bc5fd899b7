// DNS rebinding against a tokenless admin listener on loopback: a web page whose name was re-resolved to 127.0.0.1
// is same-origin with it, so a browser lets the page read the answers. Only /reload refused a foreign Host before;
// /api/status (upstreams, routes) and /metrics were readable. Every path but /ready now needs a loopback Host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const client = createClient();
let backend: TestBackend;
before(async () => {
  backend = await startBackend('one');
});
after(async () => {
  await client.close();
  await backend?.stop();
});

const PATHS = ['/api/status', '/metrics', '/', '/admin/users', '/reload'];

describe('a tokenless admin listener on loopback', () => {
  let gw: InProcessGateway;
  before(async () => {
    gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  });
  after(() => gw?.close());

  test('a foreign Host is refused on every path but /ready, a loopback one is served', async () => {
    const port = new URL(gw.adminUrl!).port;
    for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`, `localhost.attacker.example:${port}`]) {
      for (const path of PATHS) {
        const res = await client.request(`${gw.adminUrl}${path}`, { headers: { host } });
        assert.equal(res.status, 403, `${host} ${path}: ${res.status}`);
        assert.doesNotMatch(res.text, /127\.0\.0\.1:\d+|upstream/i, 'nothing of the status leaks');
        assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/, 'an X-Request-ID, as on the admin port\'s other errors');
      }
      assert.equal((await client.request(`${gw.adminUrl}/ready`, { headers: { host } })).status, 200, '/ready stays open for probes');
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
      assert.equal((await client.request(`${gw.adminUrl}/api/status`, { headers: { host } })).status, 200, host);
      assert.equal((await client.request(`${gw.adminUrl}/metrics`, { headers: { host } })).status, 200, host);
    }
  });
});

describe('an admin listener with a token', () => {
  let gw: InProcessGateway;
  const token = 'rebinding-test-token-0123456789abcdef';
  before(async () => {
    gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) }, admin: { token } });
  });
  after(() => gw?.close());

  test('any Host is served to a caller with the token (a rebound page cannot send it), as behind a reverse proxy', async () => {
    const res = await client.request(`${gw.adminUrl}/api/status`, { headers: { host: 'admin.internal.example', authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal((await client.request(`${gw.adminUrl}/api/status`, { headers: { host: 'admin.internal.example' } })).status, 401);
  });
});
