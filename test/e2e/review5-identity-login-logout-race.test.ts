// A login racing POST /auth/logout {"all_sessions": true} on PostgreSQL. The log-out locked the user's session
// families and revoked their tokens, but a login's new session was not there yet to lock: its token row, written
// but not yet committed when the log-out's UPDATE read the table, was missed, and the session outlived a log-out
// whose cut-off came after it (its refresh token kept rotating into fresh access tokens). The window is a few
// statements wide; a trigger on refresh_tokens (in this run's own database) holds the login's transaction just
// after its token row is written, on an advisory lock this test holds, so the interleaving happens every run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { holdOn, installHoldTrigger, isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const HOLD_KEY = 424242;

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('login racing a log-out everywhere on PostgreSQL', { skip: pgSkip }, () => {});
} else {
  let db: IsolatedDatabase;
  let stack: AuthStack;
  const appName = uniqueApplicationName('r5race');
  before(async () => {
    db = await isolatedDatabase();
    stack = await startAuthStack({ database: { url: taggedUrl(db.name, appName), pool_size: 4 } });
    await installHoldTrigger(db.name, appName, 'hold_new_token', HOLD_KEY, 'AFTER INSERT ON refresh_tokens FOR EACH ROW');
  });
  after(async () => {
    await stack?.close();
    await db?.cleanup('pc-none-');
  });

  test('a session whose token row was written before the log-out read the sessions is revoked by it', async () => {
    const user = await register(stack);
    const hold = await holdOn(db.name, appName, HOLD_KEY);
    const release = hold.release;
    try {
      const login = stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
      // The login's token row is written; its transaction waits on the hold.
      await waitFor(async () => (await lockWaiters(appName)).length === 1, 'the login to hold on its written token row', 10_000);
      let answered = false;
      const logout = stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true }, bearer(user.access_token)).then((res) => {
        answered = true;
        return res;
      });
      // Either the log-out finishes without waiting for the login (what it did), or it waits for the login's lock.
      await waitFor(async () => answered || (await lockWaiters(appName)).length === 2, 'the log-out to finish or wait', 10_000);
      await release();
      const [loginRes, logoutRes] = await Promise.all([login, logout]);
      assert.equal(loginRes.status, 200, loginRes.text);
      assert.equal(logoutRes.status, 200, logoutRes.text);
      const session = loginRes.json<{ access_token: string; refresh_token: string }>();
      const refreshed = await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: session.refresh_token });
      assert.equal(refreshed.status, 401, `the login's session outlived the log-out: ${refreshed.text}`);
      assert.equal((await proxiedGet(stack, '/', bearer(session.access_token))).res.status, 401);
    } finally {
      await release();
    }
    // A login after the log-out starts a session that works.
    const later = await stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
    assert.equal(later.status, 200, later.text);
    const fresh = later.json<{ access_token: string; refresh_token: string }>();
    assert.equal((await proxiedGet(stack, '/', bearer(fresh.access_token))).res.status, 200);
    assert.equal((await stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: fresh.refresh_token })).status, 200);
  });
}
