// POST /auth/logout without `all_sessions` revokes the access token it is given. On the memory revocation store (the
// embedded default, no Redis) that revocation lived only in the gateway's memory: a restarted gateway accepted the
// logged-out token again until it expired, and another gateway on the same user store never refused it. It is now
// written to the user store's change log, which gateways re-read at start and poll every second; the dashboard's
// recent admin actions do not list it (a user's logout is no admin action).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { assertSession, bearer, memoryStoreGateways, proxiedGet, register } from '../helpers/auth-gateway.js';
import { onIsolatedPostgres } from '../helpers/postgres-db.js';

const client = createClient();
let backend: TestBackend;

before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await client.close();
  await backend?.stop();
});

/** Polls GET /x with `token` until it gets `status`, for at most `ms`; returns the last status. */
async function statusWithin(url: string, token: string, status: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = (await proxiedGet({ client, url }, '/x', bearer(token))).res.status;
    if (got === status || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function suite(engine: 'sqlite' | 'postgres', database: () => Record<string, unknown>) {
  describe(`a single-session logout reaches restarts and other gateways on ${engine}`, () => {
    const gateways = memoryStoreGateways(database, () => backend.port);
    const start = (admin = false): Promise<InProcessGateway> =>
      gateways(admin ? { admin: { enabled: true, listen_host: '127.0.0.1', listen_port: 0 } } : {});

    test('the logged-out token stays refused after a restart; the user’s other session does not', async () => {
      const first = await start();
      const phone = await register({ client, url: first.url });
      const laptop = assertSession(
        await client.postJson(`${first.url}/auth/login`, { email: phone.email, password: phone.password }),
        200,
        phone.email,
      );
      const out = await client.postJson(`${first.url}/auth/logout`, { refresh_token: phone.refresh_token }, bearer(phone.access_token));
      assert.equal(out.status, 200, out.text);
      assert.equal((await proxiedGet({ client, url: first.url }, '/x', bearer(phone.access_token))).res.status, 401, 'refused at once');

      await first.gateway.close();
      const second = await start();
      assert.equal((await proxiedGet({ client, url: second.url }, '/x', bearer(phone.access_token))).res.status, 401, 'after a restart');
      assert.equal((await proxiedGet({ client, url: second.url }, '/x', bearer(laptop.access_token))).res.status, 200, 'the other session');
      assert.equal((await client.postJson(`${second.url}/auth/refresh`, { refresh_token: phone.refresh_token })).status, 401);
      await second.gateway.close();
    });

    test('another gateway on the same store refuses it within about a second; the dashboard lists no such action', async () => {
      const a = await start();
      const b = await start(true);
      const user = await register({ client, url: a.url });
      assert.equal((await proxiedGet({ client, url: b.url }, '/x', bearer(user.access_token))).res.status, 200, 'accepted before');

      for (let i = 0; i < 3; i++) {
        // Repeated logouts of one token answer alike (logout is idempotent).
        const out = await client.postJson(`${a.url}/auth/logout`, { refresh_token: user.refresh_token }, bearer(user.access_token));
        assert.equal(out.status, 200, out.text);
      }
      assert.equal(await statusWithin(b.url, user.access_token, 401, 3000), 401, 'the other gateway refuses it');

      const status = await client.request(`${b.adminUrl}/api/status`);
      assert.equal(status.status, 200, status.text);
      const recent = status.json<{ identity: { recent_actions: { action: string; target_id: string }[] } }>().identity.recent_actions;
      assert.deepEqual(
        recent.filter((r) => r.action === 'revoke_token'),
        [],
        'a user’s single-session logout is not an admin action',
      );
      assert.ok(!status.text.includes(user.access_token), 'no token in the dashboard data');
    });
  });
}

suite('sqlite', () => ({}));
await onIsolatedPostgres('a single-session logout reaches restarts and other gateways on postgres', 'rvsingle', suite);
