// A PostgreSQL link that goes silent (a NAT or firewall dropping it without FIN or RST) while a refresh's transaction
// waits on a row lock another session holds. The statement's client-side bound (statement timeout 5 s + 1 s) ends
// the wait; the ROLLBACK that followed was queued behind the unanswered statement on the same dead connection and
// waited its own 6 s (the client got its 503 after ~10.5 s here, only because the server's idle-in-transaction
// timeout closed the session; across a real partition, 12 s). The session is discarded anyway, which rolls it back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { hashRefreshToken } from '../../src/auth/refresh-token.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { assertSafeError, register, uniqueEmail } from '../helpers/auth-gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { isolatedDatabaseBehindLink, lockWaiters, spawnPostgresAuthGateway, taggedUrl, uniqueApplicationName, type DatabaseBehindLink } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/** The store's client-side bound on one statement (statement timeout 5 s + 1 s), plus a generous 3 s for a loaded machine. */
const BOUND_MS = 9_000;

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('PostgreSQL link silent mid-transaction', { skip: pgSkip }, () => {});
} else {
  describe('PostgreSQL link silent while a refresh waits on a row lock', () => {
    const appName = uniqueApplicationName('blackhole');
    const client = createClient();
    let stored: DatabaseBehindLink;
    let backend: TestBackend;
    let gw: GatewayProcess;
    let locker: pg.Client | undefined;

    before(async () => {
      stored = await isolatedDatabaseBehindLink();
      const url = new URL(stored.url);
      url.searchParams.set('application_name', appName);
      backend = await startBackend('echo');
      gw = await spawnPostgresAuthGateway(url.toString(), backend.port);
    });
    after(async () => {
      await locker?.query('ROLLBACK').catch(() => undefined);
      await locker?.end().catch(() => undefined);
      await client.close();
      await gw?.cleanup();
      await backend?.stop();
      await stored?.close('pc-blackhole-'); // closes the link, drops the database
    });

    test('the refresh answers 503 within the statement bound, and the next requests work on fresh connections', async () => {
      const stack = { client, url: gw.url };
      const user = await register(stack, uniqueEmail('pc-blackhole'));

      // Hold the session's family row from a connection of our own (not through the link).
      locker = new pg.Client({ connectionString: taggedUrl(stored.db.name, `${appName}_locker`) });
      await locker.connect();
      await locker.query('BEGIN');
      const locked = await locker.query(
        `SELECT 1 FROM refresh_token_families f JOIN refresh_tokens t ON t.family_id = f.id
         WHERE t.token_hash = $1 FOR UPDATE OF f`,
        [hashRefreshToken(user.refresh_token)],
      );
      assert.equal(locked.rowCount, 1);

      const started = performance.now();
      const pending = client.postJson(`${gw.url}/auth/refresh`, { refresh_token: user.refresh_token });
      await waitFor(async () => (await lockWaiters(appName)).length === 1, 'the rotation to wait on the lock', 10_000, 20);
      stored.link.blackHole(); // the gateway's open connections go silent, both ways
      await locker.query('ROLLBACK'); // the rotation goes on, and its answers are dropped

      const res = await pending;
      const tookMs = performance.now() - started;
      assertSafeError(res, 503, [user.refresh_token]);
      assert.ok(tookMs < BOUND_MS, `the refresh took ${Math.round(tookMs)} ms (bound ${BOUND_MS} ms)`);

      // Connections opened after the black hole forward as usual: the gateway serves again without a restart.
      const login = await client.postJson(`${gw.url}/auth/login`, { email: user.email, password: user.password });
      assert.equal(login.status, 200, login.text);
      assert.equal(gw.child.exitCode, null, `the gateway exited: ${gw.stderr()}`);
    });
  });
}
