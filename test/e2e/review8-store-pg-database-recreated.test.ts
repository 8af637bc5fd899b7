// The gateway's PostgreSQL database dropped under it and created again empty (an operator starting over, or the
// first step of a restore): every user-store request fails with 503 (the tables are gone), so /ready must say
// user_store down, not "ok" because `SELECT 1` still answers. Once the schema is back (`portcullis migrate`), the
// same running gateway is ready again and serves registrations: no restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { assertSafeError, register, uniqueEmail } from '../helpers/auth-gateway.js';
import { runCli, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { isolatedDatabase, spawnPostgresAuthGateway, taggedUrl, uniqueApplicationName, withAdmin, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('PostgreSQL database recreated under a running gateway', { skip: pgSkip }, () => {});
} else {
  describe('PostgreSQL database dropped and created again empty under a running gateway', () => {
    const appName = uniqueApplicationName('recreated');
    const client = createClient();
    let db: IsolatedDatabase;
    let backend: TestBackend;
    let gw: GatewayProcess;

    before(async () => {
      db = await isolatedDatabase();
      backend = await startBackend('echo');
      gw = await spawnPostgresAuthGateway(taggedUrl(db.name, appName), backend.port, { enabled: true, token: ADMIN_TOKEN });
    });
    after(async () => {
      await client.close();
      await gw?.cleanup();
      await backend?.stop();
      await db?.cleanup('pc-recreated-'); // DROP DATABASE IF EXISTS: also when the test failed between drop and create
    });

    const ready = async (): Promise<{ status: number; userStore: unknown }> => {
      const res = await client.request(`http://127.0.0.1:${gw.adminPort}/ready`);
      // A ready gateway answers {status: "ready"}; a 503 names each check.
      return { status: res.status, userStore: res.json<{ checks?: Record<string, string> }>().checks?.user_store ?? 'ok' };
    };

    test('/ready says user_store down while the tables are missing, and the gateway serves again once they are back', async () => {
      const stack = { client, url: gw.url };
      const user = await register(stack, uniqueEmail('pc-recreated'));
      assert.deepEqual(await ready(), { status: 200, userStore: 'ok' });

      // Only this test's database: FORCE ends the sessions on it (this gateway's pool alone).
      await withAdmin(async (c) => {
        await c.query(`DROP DATABASE ${db.name} WITH (FORCE)`);
        await c.query(`CREATE DATABASE ${db.name}`);
      });

      // The server answers, the database exists, but holds none of the gateway's tables.
      await waitFor(async () => {
        const res = await client.postJson(`${gw.url}/auth/login`, { email: user.email, password: user.password });
        if (res.status !== 503) return false;
        assertSafeError(res, 503, [user.password]);
        return true;
      }, 'logins to fail on the empty database', 15_000, 100);
      let last: { status: number; userStore: unknown } = { status: 0, userStore: undefined };
      await waitFor(async () => (last = await ready()).status === 503, '/ready to report the user store down', 10_000, 200)
        .catch((err: Error) => assert.fail(`${err.message}; last /ready: ${JSON.stringify(last)}`));
      assert.equal(last.userStore, 'down');

      // The schema back (as an operator would do it, or a restore): the running gateway is ready and serves.
      const migrated = await runCli(['migrate', '--config', gw.configFile], {}, { boundMs: 60_000 });
      assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout);
      await waitFor(async () => (await ready()).status === 200, '/ready to be ok again', 10_000, 200);
      await register(stack, uniqueEmail('pc-recreated'));

      assert.equal(gw.child.exitCode, null, `the gateway exited: ${gw.stderr()}`);
      for (const line of gw.lines) {
        assert.doesNotMatch(line, /\b(SELECT|INSERT|UPDATE|DELETE) .*\b(FROM|INTO|SET)\b/, 'SQL text in a log line');
        assert.ok(!line.includes('    at '), 'a stack in a log line');
        assert.ok(!line.includes(user.password), 'a password in a log line');
      }
    });
  });
}
