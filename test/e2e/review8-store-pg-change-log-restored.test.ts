// The gateway's PostgreSQL database dropped under it and restored from a dump taken earlier: the identity change log
// (identity_changes, numbered by a sequence) is back where the dump left it, behind the number this gateway had
// already read up to. An action written afterwards by another process (here `portcullis users disable` beside a
// gateway on the memory store, whose only way to learn of it is that log) must still reach the running gateway:
// the disabled user's access token is refused within seconds, not accepted until it expires.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { bearer, register, uniqueEmail } from '../helpers/auth-gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi, runPortcullis } from '../helpers/identity.js';
import { isolatedDatabase, spawnPostgresAuthGateway, taggedUrl, uniqueApplicationName, withAdmin, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const pgSkip = await requirePostgres();
if (pgSkip) {
  test('PostgreSQL database restored under a running gateway', { skip: pgSkip }, () => {});
} else {
  describe('PostgreSQL database restored from an earlier dump under a running gateway (memory store)', () => {
    const appName = uniqueApplicationName('restored');
    const client = createClient();
    const dumpDir = mkdtempSync(join(tmpdir(), 'pc-restored-'));
    let db: IsolatedDatabase;
    let backend: TestBackend;
    let gw: GatewayProcess;
    let url: string;

    before(async () => {
      db = await isolatedDatabase();
      url = taggedUrl(db.name, appName);
      backend = await startBackend('echo');
      gw = await spawnPostgresAuthGateway(url, backend.port, { enabled: true, token: ADMIN_TOKEN });
    });
    after(async () => {
      await client.close();
      await gw?.cleanup();
      await backend?.stop();
      await db?.cleanup('pc-restored-'); // DROP DATABASE IF EXISTS: also when the test failed mid-restore
      rmSync(dumpDir, { recursive: true, force: true });
    });

    const status = async (token: string): Promise<number> => (await client.request(`${gw.url}/x`, { headers: bearer(token) })).status;

    test('an action written after the restore reaches the running gateway, although the log numbers went back', async () => {
      const stack = { client, url: gw.url };
      const victim = await register(stack, uniqueEmail('pc-restored'));
      const other = await register(stack, uniqueEmail('pc-restored'));
      const bystander = await register(stack, uniqueEmail('pc-restored'));
      const dump = join(dumpDir, 'db.dump');
      await run('pg_dump', ['--format=custom', '--no-owner', `--file=${dump}`, `--dbname=${url}`]);

      // Changes after the dump: the gateway reads them from the log (seq past the dump's).
      const admin = adminApi(client, `http://127.0.0.1:${gw.adminPort}`);
      for (let i = 0; i < 3; i++) assert.equal((await admin.post(`/admin/users/${other.user_id}/logout`)).status, 200);
      // Until the poller has read them (the dashboard's recent actions come from the change log): a fixed 2.5 s was two
      // polls on a quiet machine, but under a loaded CI the poller had not read the last logout yet, so the restored
      // log still held the change it had read last ('intact') and the replacement went unnoticed (no warning).
      await waitFor(
        async () => {
          const res = await admin.get('/api/status');
          const rows = res.json<{ identity: { recent_actions: { target_id: string }[] } }>().identity.recent_actions;
          return rows.filter((row) => row.target_id === other.user_id).length >= 3;
        },
        'the change poller to read the three logouts',
        15_000,
        100,
      );

      // Dropped (FORCE ends this gateway's sessions on it alone) and restored from the dump.
      await withAdmin(async (c) => {
        await c.query(`DROP DATABASE ${db.name} WITH (FORCE)`);
        await c.query(`CREATE DATABASE ${db.name}`);
      });
      await run('pg_restore', ['--no-owner', `--dbname=${url}`, dump]);
      await waitFor(async () => (await status(victim.access_token)) === 200, 'the gateway to serve on the restored database', 15_000, 100);
      // The gateway serves logins again on the restored data.
      const login = await client.postJson(`${gw.url}/auth/login`, { email: victim.email, password: victim.password });
      assert.equal(login.status, 200, login.text);

      // Another process disables the user: on the memory store the change log is the only way this gateway hears it.
      const disabled = await runPortcullis(['users', 'disable', victim.email, '--config', gw.configFile]);
      assert.equal(disabled.code, 0, disabled.stderr + disabled.stdout);
      let last = 0;
      await waitFor(async () => (last = await status(victim.access_token)) === 401, 'the disabled user\'s token to be refused', 10_000, 200)
        .catch((err: Error) => assert.fail(`${err.message}; the gateway still answered ${last}`));
      assert.equal(await status(bystander.access_token), 200, 'a user nobody disabled or logged out is still served');
      // The warning was written in the poll that applied the disable, but log lines wait up to 200 ms in the
      // writer's buffer (line-writer.ts) and then for this test's reader of stdout: the 401 can come first.
      const replacedLines = () => gw.logs.filter((l) => l.msg === 'identity change log replaced; reading it again');
      await waitFor(() => replacedLines().length > 0, 'the "identity change log replaced" warning', 5_000, 50).catch(() => {});
      await sleep(500); // and not a second one from a later poll
      assert.equal(replacedLines().length, 1, JSON.stringify(replacedLines()));
      assert.equal(gw.child.exitCode, null, `the gateway exited: ${gw.stderr()}`);
    });
  });
}
