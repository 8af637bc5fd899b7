// Identity headers through the gateway: set from the verified token, never from the client, with auth on or off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

/** What an attacker sends, in every casing a client might try. */
const SPOOF = {
  'X-User-Id': '00000000-0000-0000-0000-000000000000',
  'x-user-email': 'admin@example.com',
};

describe('auth on, default header names', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ auth: { public_paths: ['/open', '/public/*'] } });
  });
  after(() => stack.close());

  test('an authenticated request carries the token\'s identity, not the one the client sent', async () => {
    const user = await register(stack);
    const { res, upstream } = await proxiedGet(stack, '/me', { ...SPOOF, ...bearer(user.access_token) });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-user-id'], user.user_id);
    assert.equal(upstream?.['x-user-email'], user.email);
  });

  test('on an exact public path without a token, the client\'s identity headers are removed', async () => {
    const { res, upstream } = await proxiedGet(stack, '/open', SPOOF);
    assert.equal(res.status, 200, res.text);
    assert.ok(upstream);
    assert.equal(upstream['x-user-id'], undefined);
    assert.equal(upstream['x-user-email'], undefined);
  });

  test('on a prefix public path without a token, the client\'s identity headers are removed', async () => {
    const { res, upstream } = await proxiedGet(stack, '/public/deep/page?x=1', SPOOF);
    assert.equal(res.status, 200, res.text);
    assert.ok(upstream);
    assert.equal(upstream['x-user-id'], undefined);
    assert.equal(upstream['x-user-email'], undefined);
  });

  test('a public path with a valid token still carries the real identity', async () => {
    const user = await register(stack);
    const { upstream } = await proxiedGet(stack, '/open', { ...SPOOF, ...bearer(user.access_token) });
    // Either the identity is passed on or it is not, but never the spoofed one.
    assert.notEqual(upstream?.['x-user-id'], SPOOF['X-User-Id']);
    assert.notEqual(upstream?.['x-user-email'], SPOOF['x-user-email']);
  });

  test('a spoofed identity without a token does not get past a protected path', async () => {
    const hits = stack.backend.hits;
    const { res } = await proxiedGet(stack, '/me', SPOOF);
    assert.equal(res.status, 401);
    assert.equal(stack.backend.hits, hits);
  });
});

describe('auth on, custom header names', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({
      auth: { user_id_header: 'X-Auth-Subject', user_email_header: 'X-Auth-Mail', public_paths: ['/open'] },
    });
  });
  after(() => stack.close());

  test('the identity arrives under the configured names and client copies of them are replaced', async () => {
    const user = await register(stack);
    const { res, upstream } = await proxiedGet(stack, '/me', {
      'X-Auth-Subject': 'forged',
      'x-auth-mail': 'forged@example.com',
      ...bearer(user.access_token),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-auth-subject'], user.user_id);
    assert.equal(upstream?.['x-auth-mail'], user.email);
    assert.equal(upstream?.['x-user-id'], undefined, 'the default names are not used');
  });

  test('on a public path the configured names are stripped', async () => {
    const { upstream } = await proxiedGet(stack, '/open', { 'X-Auth-Subject': 'forged', 'X-Auth-Mail': 'forged@example.com' });
    assert.ok(upstream);
    assert.equal(upstream['x-auth-subject'], undefined);
    assert.equal(upstream['x-auth-mail'], undefined);
  });
});

describe('auth off', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  let client: TestClient;
  before(async () => {
    backend = await startBackend('echo');
    gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) }, admin: { enabled: false } });
    client = createClient();
  });
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
  });

  test('client-sent X-User-Id / X-User-Email never reach the upstream', async () => {
    for (const path of ['/', '/anything?q=1', '/auth/login']) {
      const res = await client.request(`${gw.url}${path}`, { headers: SPOOF });
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      const seen = res.json<EchoBody>().headers;
      assert.equal(seen['x-user-id'], undefined, path);
      assert.equal(seen['x-user-email'], undefined, path);
    }
  });

  test('the auth API and JWKS are not served by the gateway: those paths are proxied', async () => {
    const res = await client.postJson(`${gw.url}/auth/register`, { email: 'a@example.com', password: 'SecurePass123!' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-backend'], 'echo');
  });
});
