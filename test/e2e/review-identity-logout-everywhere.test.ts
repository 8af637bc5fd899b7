// POST /auth/logout {"all_sessions":true} revokes every access token of the user "as the admin API's logout does":
// on the memory revocation store (the embedded default) that includes a restart of the gateway, which re-reads the
// change log. The self-service logout was never written there, so a restarted gateway accepted again every access
// token the user had just logged out everywhere (a stolen one included), where an admin logout stayed in force.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
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

function suite(engine: 'sqlite' | 'postgres', database: () => Record<string, unknown>) {
  describe(`logout everywhere outlives a restart on ${engine}`, () => {
    const start = memoryStoreGateways(database, () => backend.port);

    test('every access token refused before and after the restart; a new login works', async () => {
      const first = await start();
      const stack = { client, url: first.url };
      const phone = await register(stack);
      const laptop = assertSession(
        await client.postJson(`${first.url}/auth/login`, { email: phone.email, password: phone.password }),
        200,
        phone.email,
      );
      const out = await client.postJson(`${first.url}/auth/logout`, { all_sessions: true }, bearer(phone.access_token));
      assert.equal(out.status, 200, out.text);
      assert.equal((await proxiedGet(stack, '/x', bearer(laptop.access_token))).res.status, 401, 'refused at once');

      await first.gateway.close();
      const second = await start();
      const restarted = { client, url: second.url };
      assert.equal((await proxiedGet(restarted, '/x', bearer(laptop.access_token))).res.status, 401, 'the other session after a restart');
      assert.equal((await proxiedGet(restarted, '/x', bearer(phone.access_token))).res.status, 401, 'the logging-out token after a restart');
      assert.equal(
        (await client.postJson(`${second.url}/auth/refresh`, { refresh_token: laptop.refresh_token })).status,
        401,
        'its sessions stay revoked',
      );
      const again = assertSession(
        await client.postJson(`${second.url}/auth/login`, { email: phone.email, password: phone.password }),
        200,
        phone.email,
      );
      assert.equal((await proxiedGet(restarted, '/x', bearer(again.access_token))).res.status, 200, 'a login after it works');
    });
  });
}

suite('sqlite', () => ({}));
await onIsolatedPostgres('logout everywhere outlives a restart on postgres', 'rvlogout', suite);
