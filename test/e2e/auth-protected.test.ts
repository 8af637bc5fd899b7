// Protected paths through the gateway: every kind of bad token gets 401 + challenge; /health and public paths need none.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, base64url } from 'jose';
import {
  TEST_SECRET,
  assertPair,
  assertSafeError,
  bearer,
  proxiedGet,
  register,
  startAuthStack,
  type AuthStack,
} from '../helpers/auth-gateway.js';
import type { TestResponse } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';

/** Asserts the refusal a client gets for a bad credential on a protected path, and that the backend never saw it. */
async function assertRefused(stack: AuthStack, headers: Record<string, string>, challenge: RegExp, secret?: string): Promise<TestResponse> {
  const hits = stack.backend.hits;
  const { res } = await proxiedGet(stack, '/private', headers);
  assertSafeError(res, 401, secret === undefined ? [] : [secret]);
  assert.match(String(res.headers['www-authenticate']), challenge);
  assert.equal(stack.backend.hits, hits, 'the backend must not be reached');
  return res;
}

const INVALID_TOKEN = /^Bearer error="invalid_token"/;

/** A token signed with `secret` and the gateway's default claims, adjusted by `edit`. */
function forge(secret: string, edit: (jwt: SignJWT) => SignJWT = (j) => j, header: Record<string, string> = {}): Promise<string> {
  const jwt = new SignJWT({ email: 'forged@example.com' })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', ...header })
    .setSubject('00000000-0000-4000-8000-000000000000')
    .setIssuer('portcullis')
    .setAudience('portcullis')
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti('forged-jti');
  return edit(jwt).sign(new TextEncoder().encode(secret));
}

describe('protected paths (HS256)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ auth: { public_paths: ['/open', '/public/*'] } });
  });
  after(() => stack.close());

  test('no Authorization header: 401, WWW-Authenticate: Bearer, {"error","request_id"}', async () => {
    const res = await assertRefused(stack, {}, /^Bearer$/);
    assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'error', 'request_id']);
  });

  test('another scheme counts as no token', async () => {
    await assertRefused(stack, { authorization: 'Basic dXNlcjpwYXNz' }, /^Bearer$/);
  });

  test('malformed bearer credentials: 401 invalid_token', async () => {
    for (const value of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer ###', 'Bearer not-a-jwt', 'Bearer a.b.c']) {
      await assertRefused(stack, { authorization: value }, value.trim() === 'Bearer' ? /^Bearer/ : INVALID_TOKEN);
    }
  });

  test('a tampered token (payload changed, signature kept) is refused', async () => {
    const user = await register(stack);
    const [h, p, s] = user.access_token.split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<string, unknown>;
    const forged = `${h}.${base64url.encode(JSON.stringify({ ...claims, email: 'admin@example.com' }))}.${s}`;
    await assertRefused(stack, bearer(forged), INVALID_TOKEN, forged);
    // and one flipped signature character
    const flipped = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
    await assertRefused(stack, bearer(flipped), INVALID_TOKEN, flipped);
    // The real token still works, so the refusals above were about the changes.
    const { res } = await proxiedGet(stack, '/private', bearer(user.access_token));
    assert.equal(res.status, 200);
  });

  test('alg "none" is refused', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    const now = Math.floor(Date.now() / 1000);
    const payload = base64url.encode(
      JSON.stringify({ sub: '00000000-0000-4000-8000-000000000000', email: 'x@example.com', iss: 'portcullis', aud: 'portcullis', iat: now, exp: now + 300, jti: 'j' }),
    );
    await assertRefused(stack, bearer(`${header}.${payload}.`), INVALID_TOKEN);
  });

  test('a token signed with another secret, or for another audience or type, is refused', async () => {
    await assertRefused(stack, bearer(await forge('some-other-secret-that-is-long-enough-000')), INVALID_TOKEN);
    await assertRefused(stack, bearer(await forge(TEST_SECRET, (j) => j.setAudience('someone-else'))), INVALID_TOKEN);
    await assertRefused(stack, bearer(await forge(TEST_SECRET, (j) => j, { typ: 'JWT' })), INVALID_TOKEN);
    // Sanity: the same forge with the gateway's own secret and claims is accepted, so the cases above differ by one thing.
    const { res } = await proxiedGet(stack, '/private', bearer(await forge(TEST_SECRET)));
    assert.equal(res.status, 200);
  });

  test('an expired token is refused (exp well in the past)', async () => {
    const expired = await forge(TEST_SECRET, (j) => j.setIssuedAt(Math.floor(Date.now() / 1000) - 3600).setExpirationTime(Math.floor(Date.now() / 1000) - 600));
    await assertRefused(stack, bearer(expired), INVALID_TOKEN, expired);
  });

  test('/health needs no token', async () => {
    const res = await stack.client.request(`${stack.url}/health`);
    assert.equal(res.status, 200, res.text);
  });

  test('public paths: exact match and prefix match pass without a token; neighbours do not', async () => {
    for (const path of ['/open', '/open?x=1', '/public/', '/public/a', '/public/a/b?c=d']) {
      const { res } = await proxiedGet(stack, path);
      assert.equal(res.status, 200, `${path} should be public`);
    }
    for (const path of ['/open/x', '/opener', '/public', '/publicity', '/']) {
      const { res } = await proxiedGet(stack, path);
      assert.equal(res.status, 401, `${path} should be protected`);
    }
  });

  test('logout with all_sessions: true revokes every session of the user', async () => {
    const user = await register(stack);
    const login = async () => {
      const res = await stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
      assert.equal(res.status, 200);
      return res.json<{ access_token: string; refresh_token: string }>();
    };
    const a = await login();
    const b = await login();
    const res = await stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true }, bearer(a.access_token));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), { message: 'Logged out' });
    // Logged with the request it came in on and its client (stop 54: only userId and a count before).
    const line = stack.gw.logs.find((l) => l.msg === 'All Sessions Revoked' && l.user_id === user.user_id);
    assert.ok(line, 'the logout of every session is logged');
    assert.equal(line.request_id, res.headers['x-request-id']);
    assert.equal(line.client, '127.0.0.1');
    for (const token of [a.refresh_token, b.refresh_token, user.refresh_token]) {
      assertSafeError(await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: token }), 401, [token]);
    }
    // The access token used for the logout is revoked at once.
    await assertRefused(stack, bearer(a.access_token), INVALID_TOKEN);
  });

  test('logout with all_sessions: true and no valid access token is refused (401) and revokes nothing', async () => {
    const user = await register(stack);
    const res = await stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true });
    assertSafeError(res, 401);
    const bad = await stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true }, bearer('not.a.token'));
    assertSafeError(bad, 401);
    assertPair(await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: user.refresh_token }));
  });
});

describe('a short access-token lifetime (jwt.access_token_expiration: 1s)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ jwt: { access_token_expiration: '1s' } });
  });
  after(() => stack.close());

  test('a real token from login works, then is refused once expired; refresh issues a working one', async () => {
    const user = await register(stack);
    assert.equal(user.expires_in, 1);
    const { res } = await proxiedGet(stack, '/private', bearer(user.access_token));
    assert.equal(res.status, 200);
    // The verifier allows 5 s of clock difference between gateway processes (src/auth/tokens.ts), so wait past both.
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(user.access_token.split('.')[1]!))) as { exp: number };
    await sleep(Math.max(0, claims.exp * 1000 + 5_000 + 300 - Date.now()));
    await assertRefused(stack, bearer(user.access_token), INVALID_TOKEN, user.access_token);
    const fresh = assertPair(await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: user.refresh_token }));
    const again = await proxiedGet(stack, '/private', bearer(fresh.access_token));
    assert.equal(again.res.status, 200);
  });
});
