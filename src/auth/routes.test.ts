// The /auth/* API through a real socket: status codes, body shapes, rotation, logout, and bad input changing nothing.
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../../test/helpers/http.js';
import { startAuthServer, type AuthServer } from '../../test/helpers/auth-server.js';

const client = createClient();
const PASSWORD = 'SecurePass123!';
let n = 0;
const email = (): string => `user${n++}-${process.pid}@example.com`;

describe('auth routes', () => {
  let server: AuthServer;
  const throttled: string[] = [];
  before(async () => {
    server = await startAuthServer({
      jwt: { refresh_reuse_grace: '1500ms' },
      throttleLogin: async (_ctx, address) => {
        throttled.push(address);
        return 'continue';
      },
    });
  });
  after(async () => {
    await server.close();
    await client.close();
  });
  const post = (path: string, body: unknown, headers?: Record<string, string>) => client.postJson(`${server.url}${path}`, body, headers);
  const proxied = (token: string) => client.request(`${server.url}/api/x`, { headers: { authorization: `Bearer ${token}` } });

  test('register: 201 with the documented shape; the access token opens proxied routes', async () => {
    const address = email();
    const res = await post('/auth/register', { email: `  ${address.toUpperCase()} `, password: PASSWORD });
    assert.equal(res.status, 201);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'email', 'expires_in', 'refresh_token', 'token_type', 'user_id']);
    assert.equal(body.email, address);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 900);
    assert.match(String(body.refresh_token), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const up = (await proxied(String(body.access_token))).json<{ headers: Record<string, string> }>();
    assert.equal(up.headers['x-user-id'], body.user_id);
    assert.equal(up.headers['x-user-email'], address);
  });

  test('register: a duplicate email (any case) is 409', async () => {
    const address = email();
    assert.equal((await post('/auth/register', { email: address, password: PASSWORD })).status, 201);
    const dup = await post('/auth/register', { email: address.toUpperCase(), password: 'AnotherPass456!' });
    assert.equal(dup.status, 409);
    assert.equal(dup.json().error, 'Email already registered');
  });

  test('login: 200 with tokens; wrong password and unknown email give the same 401 body', async () => {
    const address = email();
    await post('/auth/register', { email: address, password: PASSWORD });
    const ok = await post('/auth/login', { email: address.toUpperCase(), password: PASSWORD });
    assert.equal(ok.status, 200);
    assert.equal(ok.json().email, address);
    assert.equal(throttled.at(-1), address, 'throttleLogin got the normalised email');
    const wrong = await post('/auth/login', { email: address, password: 'WrongPass123!' });
    const unknown = await post('/auth/login', { email: email(), password: PASSWORD });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined });
    assert.deepEqual(strip(wrong.json()), strip(unknown.json()));
    assert.equal(wrong.json().error, 'Invalid email or password');
  });

  test('refresh rotates; the old token then fails within grace without harming the new one; reuse later revokes all', async () => {
    const address = email();
    const first = (await post('/auth/register', { email: address, password: PASSWORD })).json();
    const r1 = await post('/auth/refresh', { refresh_token: first.refresh_token });
    assert.equal(r1.status, 200);
    const b1 = r1.json();
    assert.deepEqual(Object.keys(b1).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type']);
    assert.notEqual(b1.refresh_token, first.refresh_token);
    assert.equal((await post('/auth/refresh', { refresh_token: first.refresh_token })).status, 401);
    const r2 = await post('/auth/refresh', { refresh_token: b1.refresh_token });
    assert.equal(r2.status, 200, 'a refusal within the grace period changed nothing');
    await new Promise((r) => setTimeout(r, 1700));
    const reuse = await post('/auth/refresh', { refresh_token: first.refresh_token });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.json().error, 'Invalid refresh token');
    assert.equal((await post('/auth/refresh', { refresh_token: r2.json().refresh_token })).status, 401, 'family revoked');
  });

  test('of two concurrent refreshes with one token exactly one succeeds', async () => {
    const { refresh_token } = (await post('/auth/register', { email: email(), password: PASSWORD })).json();
    const results = await Promise.all([post('/auth/refresh', { refresh_token }), post('/auth/refresh', { refresh_token })]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 401]);
  });

  test('logout revokes the session and the access token', async () => {
    const s = (await post('/auth/register', { email: email(), password: PASSWORD })).json();
    const token = String(s.access_token);
    const out = await post('/auth/logout', { refresh_token: s.refresh_token }, { authorization: `Bearer ${token}` });
    assert.equal(out.status, 200);
    assert.deepEqual(out.json(), { message: 'Logged out' });
    assert.equal((await post('/auth/refresh', { refresh_token: s.refresh_token })).status, 401);
    const denied = await proxied(token);
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['www-authenticate'], 'Bearer error="invalid_token"');
    // Idempotent: the same logout again is still 200.
    assert.equal((await post('/auth/logout', { refresh_token: s.refresh_token })).status, 200);
  });

  test('logout with all_sessions revokes every session of the user; it needs a valid access token', async () => {
    const address = email();
    const a = (await post('/auth/register', { email: address, password: PASSWORD })).json();
    const b = (await post('/auth/login', { email: address, password: PASSWORD })).json();
    const refused = await post('/auth/logout', { all_sessions: true }, { authorization: 'Bearer not.a.token' });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal((await post('/auth/logout', { all_sessions: true })).status, 401);
    assert.equal((await post('/auth/refresh', { refresh_token: a.refresh_token })).status, 200, 'refusals changed nothing');
    const out = await post('/auth/logout', { all_sessions: true }, { authorization: `Bearer ${String(b.access_token)}` });
    assert.equal(out.status, 200);
    assert.equal((await post('/auth/refresh', { refresh_token: b.refresh_token })).status, 401);
    const again = await post('/auth/login', { email: address, password: PASSWORD });
    assert.equal(again.status, 200, 'the account itself still works');
  });

  test('bad input is refused with 400/415/405/404 and changes nothing', async () => {
    const address = email();
    const raw = (body: string, type = 'application/json') =>
      client.request(`${server.url}/auth/register`, { method: 'POST', headers: { 'content-type': type }, body });
    const malformed = await raw('{"email":');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json().error, 'Invalid request body');
    assert.deepEqual(malformed.json().details, [{ field: 'body', message: 'must be valid JSON' }]);
    const missing = await post('/auth/register', { email: address });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json().details, [{ field: 'password', message: 'is required' }]);
    assert.equal((await raw(JSON.stringify({ email: address, password: PASSWORD }), 'text/plain')).status, 415);
    const get = await client.request(`${server.url}/auth/login`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal((await post('/auth/unknown', {})).status, 404);
    assert.equal((await client.request(`${server.url}/.well-known/jwks.json`)).status, 404, 'HS256 publishes no JWKS');
    // None of it created the user.
    assert.equal((await post('/auth/register', { email: address, password: PASSWORD })).status, 201);
  });

  test('a body over 64 KB is 413, declared or streamed, and reading stops', async () => {
    const big = JSON.stringify({ email: email(), password: PASSWORD, pad: 'x'.repeat(70_000) });
    assert.equal((await client.request(`${server.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big })).status, 413);
    // Chunked, no Content-Length, and a client that would keep sending 10 MB: the answer comes early.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(16 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent < 10 * 1024 * 1024 && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (!req.destroyed) req.end();
      };
      req.write('{"email":"a@example.com","pad":"');
      pump();
    });
    assert.equal(status, 413);
  });

  test('an unreachable store is 503 with Retry-After and no internal detail', async () => {
    const broken = await startAuthServer();
    await broken.store.close();
    try {
      const res = await client.postJson(`${broken.url}/auth/register`, { email: email(), password: PASSWORD });
      assert.equal(res.status, 503);
      assert.equal(res.headers['retry-after'], '5');
      assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'error', 'request_id']);
      assert.ok(!/sqlite|select|insert|database|at /i.test(res.text));
    } finally {
      await broken.close();
    }
  });
});
