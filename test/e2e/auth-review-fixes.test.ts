// Review fixes on the auth API, end to end: unknown-email logins after the first one met a full argon2 queue or a
// killed hashing process; logout of every session with a revoked token, and what it revokes; API keys kept from
// backends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { hashChildren, newHashChild } from '../helpers/hash-children.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';
import {
  bearer,
  FAST_ARGON2,
  proxiedGet,
  register,
  startAuthStack,
  TEST_SECRET,
  uniqueEmail,
  type AuthStack,
  type SessionBody,
} from '../helpers/auth-gateway.js';

const login = (stack: AuthStack, email: string, password: string): Promise<TestResponse> =>
  stack.client.postJson(`${stack.url}/auth/login`, { email, password });
const logout = (stack: AuthStack, body: unknown, token?: string): Promise<TestResponse> =>
  stack.client.postJson(`${stack.url}/auth/logout`, body, token === undefined ? {} : bearer(token));
const refresh = (stack: AuthStack, refreshToken: string): Promise<TestResponse> =>
  stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: refreshToken });

/** The code of an error answer. */
const code = (res: TestResponse): unknown => res.json().code;

describe('unknown-email logins after the first one failed', () => {
  test('the queue full during the first: 503 then (as for a known email), 401 after argon2 work once it drains', async () => {
    const before = hashChildren();
    const stack = await startAuthStack({ auth: { argon2: { ...FAST_ARGON2, queue_limit: 1 } } });
    try {
      const known = await register(stack);
      const child = newHashChild(before);
      // Paused, the hashing process answers nothing: registrations hold every slot and the one queue place.
      process.kill(child, 'SIGSTOP');
      const held: Promise<TestResponse>[] = [];
      try {
        let full = false;
        for (let i = 0; i < 16 && !full; i++) {
          const res = stack.client.postJson(`${stack.url}/auth/register`, { email: uniqueEmail('fill'), password: 'SecurePass123!' });
          held.push(res);
          full = await Promise.race([res.then((r) => r.status === 503), sleep(150).then(() => false)]);
        }
        assert.ok(full, 'registrations fill the queue');

        const during = await login(stack, uniqueEmail('nobody'), 'whatever-123');
        assert.equal(during.status, 503, during.text);
        assert.equal(code(during), 'password_hasher_busy');
        const knownDuring = await login(stack, known.email, 'wrong-password');
        assert.equal(knownDuring.status, 503, 'a known email is refused alike while the queue is full');
      } finally {
        process.kill(child, 'SIGCONT');
      }
      await Promise.all(held);
      for (let i = 0; i < 3; i++) {
        const unknown = await login(stack, uniqueEmail('ghost'), 'whatever-123');
        assert.equal(unknown.status, 401, unknown.text);
        assert.equal(code(unknown), 'invalid_credentials');
        const wrong = await login(stack, known.email, `wrong-password-${i}`);
        assert.equal(wrong.status, 401, wrong.text);
        assert.equal(code(wrong), 'invalid_credentials');
      }
    } finally {
      await stack.close();
    }
  });

  test('the hashing process killed during the first: later ones get 401 from a new hashing process', async () => {
    const before = hashChildren();
    const stack = await startAuthStack();
    try {
      const known = await register(stack);
      const child = newHashChild(before);
      process.kill(child, 'SIGSTOP');
      const first = login(stack, uniqueEmail('nobody'), 'whatever-123');
      // The login reaches the (paused) hashing process well within this; then the process dies under it.
      await sleep(300);
      process.kill(child, 'SIGKILL');
      assert.equal((await first).status, 401);
      await waitFor(() => !hashChildren().has(child), 'the killed process to be gone');

      const unknown = await login(stack, uniqueEmail('ghost'), 'whatever-123');
      assert.equal(unknown.status, 401, unknown.text);
      assert.equal(code(unknown), 'invalid_credentials');
      // The login asked the hashing process to verify: a new one was started for it (nothing else hashed since).
      const replacement = newHashChild(before);
      assert.notEqual(replacement, child);
      assert.equal((await login(stack, known.email, 'wrong-password')).status, 401);
      assert.equal((await login(stack, known.email, known.password)).status, 200);
    } finally {
      await stack.close();
    }
  });
});

/** The logout cases against one revocation store: the gateway's memory, or Redis (shared by every gateway). */
function logoutSuite(kvName: string, start: () => Promise<AuthStack>, skip: string | false = false): void {
  describe(`logout of every session (${kvName})`, { skip }, () => {
    let stack: AuthStack;
    before(async () => {
      stack = await start();
    });
    after(() => stack?.close());

    /** A user with two sessions (two devices). */
    async function twoSessions(): Promise<{ a: SessionBody; b: SessionBody; email: string; password: string }> {
      const user = await register(stack);
      const res = await login(stack, user.email, user.password);
      assert.equal(res.status, 200, res.text);
      return { a: user, b: res.json<SessionBody>(), email: user.email, password: user.password };
    }

    test('revokes the access tokens of the other sessions too, not only the one presented', async () => {
      const { a, b } = await twoSessions();
      assert.equal((await proxiedGet(stack, '/x', bearer(b.access_token))).res.status, 200);
      const out = await logout(stack, { all_sessions: true }, a.access_token);
      assert.equal(out.status, 200, out.text);
      const other = (await proxiedGet(stack, '/x', bearer(b.access_token))).res;
      assert.equal(other.status, 401, "the other session's access token is refused");
      assert.match(String(other.headers['www-authenticate']), /invalid_token/);
      assert.equal((await proxiedGet(stack, '/x', bearer(a.access_token))).res.status, 401);
      assert.equal((await refresh(stack, b.refresh_token)).status, 401);
      assert.equal((await refresh(stack, a.refresh_token)).status, 401);
    });

    test('a login after it (in a later second) gets a working session', async () => {
      const { a, email, password } = await twoSessions();
      assert.equal((await logout(stack, { all_sessions: true }, a.access_token)).status, 200);
      await sleep(1100); // access tokens carry whole seconds: one from the logout's second is refused too (README)
      const again = await login(stack, email, password);
      assert.equal(again.status, 200, again.text);
      const session = again.json<SessionBody>();
      assert.equal((await proxiedGet(stack, '/x', bearer(session.access_token))).res.status, 200);
      assert.equal((await refresh(stack, session.refresh_token)).status, 200);
    });

    test('an access token already revoked by a logout is refused (401 invalid_token); the new session lives on', async () => {
      const user = await register(stack);
      // The first session logged out with its access token: that token is on the revocation list.
      assert.equal((await logout(stack, { refresh_token: user.refresh_token }, user.access_token)).status, 200);
      assert.equal((await proxiedGet(stack, '/x', bearer(user.access_token))).res.status, 401);
      const fresh = (await login(stack, user.email, user.password)).json<SessionBody>();

      const stolen = await logout(stack, { all_sessions: true }, user.access_token);
      assert.equal(stolen.status, 401, stolen.text);
      assert.match(String(stolen.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal((await proxiedGet(stack, '/x', bearer(fresh.access_token))).res.status, 200);
      assert.equal((await refresh(stack, fresh.refresh_token)).status, 200, "the victim's session survives");
    });

    test('an access token revoked with its user (logout everywhere) cannot log the next sessions out', async () => {
      const { a, b, email, password } = await twoSessions();
      assert.equal((await logout(stack, { all_sessions: true }, b.access_token)).status, 200);
      await sleep(1100);
      const fresh = (await login(stack, email, password)).json<SessionBody>();
      // `a` was never presented to a logout itself: it is refused through its user's revocation.
      const stolen = await logout(stack, { all_sessions: true }, a.access_token);
      assert.equal(stolen.status, 401, stolen.text);
      assert.match(String(stolen.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal((await refresh(stack, fresh.refresh_token)).status, 200, "the victim's new session survives");
    });
  });
}

logoutSuite('memory', () => startAuthStack());

const redisSkip = await requireRedis();
const keyPrefix = `portcullis-test:auth-review:${runId()}:`;
logoutSuite('redis', () => startAuthStack({ redis: { url: REDIS_URL, key_prefix: keyPrefix } }), redisSkip);
after(async () => {
  if (!redisSkip) await deleteRedisKeys(REDIS_URL, keyPrefix);
});

describe('API keys are not forwarded to backends', () => {
  const client = createClient();
  let backend: TestBackend;
  let gw: InProcessGateway;
  let key: string;
  before(async () => {
    backend = await startBackend('echo');
    gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
      admin: { token: ADMIN_TOKEN },
    });
    const created = await adminApi(client, gw.adminUrl!).post('/admin/api-keys', { name: 'billing' });
    assert.equal(created.status, 201, created.text);
    key = created.json<{ key: string }>().key;
  });
  after(async () => {
    await client.close();
    await gw?.close();
    await backend?.stop();
  });
  const stack = () => ({ client, url: gw.url });

  test('X-API-Key: the backend sees the consumer, not the key', async () => {
    const { res, upstream } = await proxiedGet(stack(), '/svc', { 'x-api-key': key });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-consumer-name'], 'billing');
    assert.equal(upstream?.['x-api-key'], undefined);
    assert.ok(!JSON.stringify(upstream).includes(key.slice(20)), 'the secret reaches the backend in no header');
  });

  test('Authorization: Bearer pk_…: the backend sees the consumer, not the key', async () => {
    const { res, upstream } = await proxiedGet(stack(), '/svc', bearer(key));
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-consumer-name'], 'billing');
    assert.equal(upstream?.authorization, undefined);
    assert.ok(!JSON.stringify(upstream).includes(key.slice(20)));
  });

  test('a user access token is still forwarded (backends may verify it themselves)', async () => {
    const user = await register(stack());
    const { res, upstream } = await proxiedGet(stack(), '/svc', bearer(user.access_token));
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.authorization, `Bearer ${user.access_token}`);
    assert.equal(upstream?.['x-user-id'], user.user_id);
  });

  test('X-API-Key beside a user token: the key (the credential used) is removed, the other header kept', async () => {
    const user = await register(stack());
    const { res, upstream } = await proxiedGet(stack(), '/svc', { 'x-api-key': key, ...bearer(user.access_token) });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstream?.['x-consumer-name'], 'billing');
    assert.equal(upstream?.['x-api-key'], undefined);
    assert.equal(upstream?.authorization, `Bearer ${user.access_token}`);
  });
});
