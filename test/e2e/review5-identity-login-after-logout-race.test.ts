// A login that waits behind POST /auth/logout {"all_sessions": true} on PostgreSQL. Since a1c3a34 the log-out takes
// the user's row lock first, so a login arriving while it runs waits for its commit and then stores a session the
// log-out never saw: the refresh token worked, but the access token was refused (401 on the client's first request
// after a successful login), because its issue time was read before the wait, earlier than the log-out's revocation
// time. A trigger in this run's own database holds the log-out's transaction after it has revoked the sessions (on an
// advisory lock this test holds), with the user's row locked, so the login waits behind it every run. The admin API's
// logout (POST /admin/users/:id/logout) did the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { holdOn, installHoldTrigger, isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import type { TestResponse } from '../helpers/http.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const HOLD_KEY = 424243;

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('login waiting behind a log-out everywhere on PostgreSQL', { skip: pgSkip }, () => {});
} else {
  let db: IsolatedDatabase;
  let stack: AuthStack;
  const appName = uniqueApplicationName('r5after');
  before(async () => {
    db = await isolatedDatabase();
    stack = await startAuthStack({ database: { url: taggedUrl(db.name, appName), pool_size: 4 }, admin: { token: ADMIN_TOKEN } });
    // A statement trigger: it fires for the log-out's revoking UPDATE even when it matches no row.
    await installHoldTrigger(db.name, appName, 'hold_revocation', HOLD_KEY, 'AFTER UPDATE ON refresh_tokens FOR EACH STATEMENT');
  });
  after(async () => {
    await stack?.close();
    await db?.cleanup('pc-none-');
  });

  /**
   * Starts `revoke` (a log-out of every session of `user`), holds it after it has revoked the sessions, logs in while
   * it holds, releases it, and returns the login's session. Both must answer 200.
   */
  async function loginBehind(user: { email: string; password: string }, revoke: () => Promise<TestResponse>): Promise<{ access_token: string; refresh_token: string }> {
    const hold = await holdOn(db.name, appName, HOLD_KEY);
    const release = hold.release;
    try {
      const logout = revoke();
      // The log-out holds the user's row and has revoked the sessions; its transaction waits on the hold.
      await waitFor(async () => (await lockWaiters(appName)).length === 1, 'the log-out to hold after revoking', 10_000);
      const login = stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
      // The login waits for the log-out's row lock.
      await waitFor(async () => (await lockWaiters(appName)).length === 2, 'the login to wait behind the log-out', 10_000);
      await release();
      const [logoutRes, loginRes] = await Promise.all([logout, login]);
      assert.equal(logoutRes.status, 200, logoutRes.text);
      assert.equal(loginRes.status, 200, loginRes.text);
      return loginRes.json<{ access_token: string; refresh_token: string }>();
    } finally {
      await release();
    }
  }

  /** The login came after the log-out: its first access token is accepted, and its session refreshes. */
  async function assertWorks(session: { access_token: string; refresh_token: string }): Promise<void> {
    assert.equal((await proxiedGet(stack, '/', bearer(session.access_token))).res.status, 200, "the login's access token was refused");
    const refreshed = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: session.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal((await proxiedGet(stack, '/', bearer(refreshed.json<{ access_token: string }>().access_token))).res.status, 200);
  }

  /** What the log-out revoked stays revoked: the registration's session and access token. */
  async function assertRevoked(user: { access_token: string; refresh_token: string }): Promise<void> {
    assert.equal((await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: user.refresh_token })).status, 401);
    assert.equal((await proxiedGet(stack, '/', bearer(user.access_token))).res.status, 401);
  }

  test('a login that waited for POST /auth/logout {all_sessions: true} gets an access token that works', async () => {
    const user = await register(stack);
    const session = await loginBehind(user, () =>
      stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true }, bearer(user.access_token)),
    );
    await assertWorks(session);
    await assertRevoked(user);
  });

  test('a login that waited for the admin API\'s logout gets an access token that works', async () => {
    const user = await register(stack);
    const admin = adminApi(stack.client, stack.gw.adminUrl!);
    const session = await loginBehind(user, () => admin.post(`/admin/users/${user.user_id}/logout`));
    await assertWorks(session);
    await assertRevoked(user);
  });
}
