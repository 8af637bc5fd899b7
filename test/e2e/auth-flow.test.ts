// The README's curl sequence through a running gateway: register, login, proxied call, refresh, logout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  README_USER,
  assertPair,
  assertSafeError,
  assertSession,
  bearer,
  proxiedGet,
  startAuthStack,
  type AuthStack,
  type PairBody,
  type SessionBody,
} from '../helpers/auth-gateway.js';

let stack: AuthStack;
before(async () => {
  stack = await startAuthStack();
});
after(() => stack.close());

// One story, step by step: each test uses what the previous one obtained, as a user following the README would.
let registered: SessionBody;
let login: SessionBody;
let refreshed: PairBody;

test('POST /auth/register answers 201 with the user id, email and a Bearer token pair valid 900 s', async () => {
  const res = await stack.client.postJson(`${stack.url}/auth/register`, README_USER);
  registered = assertSession(res, 201, README_USER.email);
  assert.equal(registered.expires_in, 900);
  assert.equal(res.headers['cache-control'], 'no-store');
});

test('POST /auth/login answers 200 with the same shape, the same user and new tokens', async () => {
  const res = await stack.client.postJson(`${stack.url}/auth/login`, README_USER);
  login = assertSession(res, 200, README_USER.email);
  assert.equal(login.user_id, registered.user_id);
  assert.equal(login.expires_in, 900);
  assert.notEqual(login.refresh_token, registered.refresh_token);
  assert.notEqual(login.access_token, registered.access_token);
});

test('GET / with the access token is proxied and the backend learns who the caller is', async () => {
  const hits = stack.backend.hits;
  const { res, upstream } = await proxiedGet(stack, '/', bearer(login.access_token));
  assert.equal(res.status, 200, res.text);
  assert.equal(stack.backend.hits, hits + 1);
  assert.ok(upstream);
  assert.equal(upstream['x-user-id'], login.user_id);
  assert.equal(upstream['x-user-email'], README_USER.email);
});

test('GET / without a token is refused before the backend sees it', async () => {
  const hits = stack.backend.hits;
  const { res } = await proxiedGet(stack, '/');
  assertSafeError(res, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.equal(stack.backend.hits, hits);
});

test('POST /auth/refresh returns a new pair; the old refresh token is then refused', async () => {
  const res = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: login.refresh_token });
  refreshed = assertPair(res);
  assert.equal(refreshed.expires_in, 900);
  assert.notEqual(refreshed.refresh_token, login.refresh_token);
  assert.notEqual(refreshed.access_token, login.access_token);

  const again = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: login.refresh_token });
  assertSafeError(again, 401, [login.refresh_token]);

  // The new access token works like the first one.
  const { res: proxied, upstream } = await proxiedGet(stack, '/', bearer(refreshed.access_token));
  assert.equal(proxied.status, 200);
  assert.equal(upstream?.['x-user-id'], registered.user_id);
});

test('POST /auth/logout with the refresh token and the access token answers {"message":"Logged out"}', async () => {
  const res = await stack.client.postJson(
    `${stack.url}/auth/logout`,
    { refresh_token: refreshed.refresh_token },
    bearer(refreshed.access_token),
  );
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json(), { message: 'Logged out' });
});

test('after logout the access token gets 401 and the refresh token gets 401', async () => {
  const hits = stack.backend.hits;
  const { res } = await proxiedGet(stack, '/', bearer(refreshed.access_token));
  assertSafeError(res, 401, [refreshed.access_token]);
  assert.match(String(res.headers['www-authenticate']), /^Bearer error="invalid_token"/);
  assert.equal(stack.backend.hits, hits);

  const refresh = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: refreshed.refresh_token });
  assertSafeError(refresh, 401, [refreshed.refresh_token]);
});

test('the other sessions of the user are untouched by a single-session logout', async () => {
  // The register session is a separate login: its tokens still work.
  const { res } = await proxiedGet(stack, '/', bearer(registered.access_token));
  assert.equal(res.status, 200);
  const refresh = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: registered.refresh_token });
  assertPair(refresh);
});

test('logging out again with the same refresh token is idempotent (200)', async () => {
  const res = await stack.client.postJson(`${stack.url}/auth/logout`, { refresh_token: refreshed.refresh_token });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json(), { message: 'Logged out' });
});

test('no token, password or hash was written to the gateway logs', () => {
  const text = JSON.stringify(stack.gw.logs);
  for (const secret of [
    README_USER.password,
    registered.access_token,
    registered.refresh_token,
    login.access_token,
    login.refresh_token,
    refreshed.access_token,
    refreshed.refresh_token,
  ]) {
    assert.ok(!text.includes(secret), 'a credential appears in the logs');
  }
  assert.ok(!text.includes('$argon2'), 'a password hash appears in the logs');
});
