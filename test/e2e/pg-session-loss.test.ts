// A PostgreSQL session killed in the middle of a refresh: the gateway stays up, answers 503, and recovers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { hashRefreshToken } from '../../src/auth/refresh-token.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { assertPair, assertSafeError, bearer, register, uniqueEmail } from '../helpers/auth-gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import {
  isolatedDatabase,
  lockWaiters,
  spawnPostgresAuthGateway,
  taggedUrl,
  terminateBackend,
  uniqueApplicationName,
  type IsolatedDatabase,
} from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('PostgreSQL session loss', { skip: pgSkip }, () => {});
} else {
  describe('PostgreSQL session terminated during a refresh', () => {
    const appName = uniqueApplicationName('kill');
    const client = createClient();
    let db: IsolatedDatabase;
    let backend: TestBackend;
    let gw: GatewayProcess;
    let locker: pg.Client | undefined;

    before(async () => {
      db = await isolatedDatabase();
      backend = await startBackend('echo');
      gw = await spawnPostgresAuthGateway(taggedUrl(db.name, appName), backend.port);
    });
    after(async () => {
      await locker?.query('ROLLBACK').catch(() => undefined);
      await locker?.end().catch(() => undefined);
      await client.close();
      await gw?.cleanup();
      await backend?.stop();
      await db?.cleanup('pc-kill-');
    });

    test('a rotation blocked on a row lock loses its backend: 503 + Retry-After, the process lives, the next refresh works', async () => {
      const stack = { client, url: gw.url };
      const user = await register(stack, uniqueEmail('pc-kill'));

      // Hold the token's row lock from a connection of our own, so the gateway's rotation waits on it.
      locker = new pg.Client({ connectionString: taggedUrl(db.name, `${appName}_locker`) });
      await locker.connect();
      await locker.query('BEGIN');
      const locked = await locker.query('SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE', [
        hashRefreshToken(user.refresh_token),
      ]);
      assert.equal(locked.rowCount, 1);

      const pending = client.postJson(`${gw.url}/auth/refresh`, { refresh_token: user.refresh_token });
      let waiters: number[] = [];
      await waitFor(async () => (waiters = await lockWaiters(appName)).length === 1, 'the rotation to wait on the lock');
      // Only that session, found by its application_name and pid, is terminated.
      assert.equal(await terminateBackend(waiters[0]!, appName), true);

      const res = await pending;
      assertSafeError(res, 503, [user.refresh_token]);
      assert.match(String(res.headers['retry-after']), /^\d+$/);

      // Give an unhandled 'error' event time to kill the process, then check it did not.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(gw.child.exitCode, null, `the gateway exited: ${gw.stderr()}`);
      assert.equal(gw.child.signalCode, null);
      assert.equal((await client.request(`${gw.url}/health`)).status, 200);
      const proxied = await client.request(`${gw.url}/anything`, { headers: bearer(user.access_token) });
      assert.equal(proxied.status, 200, 'proxying goes on');

      await locker.query('ROLLBACK');
      assertPair(await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: user.refresh_token }));
      assert.equal(gw.child.exitCode, null);
    });
  });
}
