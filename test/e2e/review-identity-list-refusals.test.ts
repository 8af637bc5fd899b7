// Listing users: a cursor listUsers never made is a bad query on both adapters (400 bad_request from the admin API,
// exit 2 from `users list --cursor`), and `users list` with an argument is bad usage, never the whole list. Before,
// PostgreSQL answered a cursor whose tie-break was not a user id with an empty last page (200, next_cursor null),
// which reads as "no more users", where SQLite answered 400; and `users list alice@` printed every user, exit 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN, runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
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

/** The opaque cursor text of `[key, tieBreak]`, as identity-types.ts encodes it. */
const cursorOf = (key: string, tieBreak: string): string => Buffer.from(JSON.stringify([key, tieBreak])).toString('base64url');

/** A cursor of the right shape whose tie-break belongs to the other adapter (or to neither). */
const FOREIGN_CURSORS = {
  'a SQLite rowid': cursorOf('1796323724475', '3'),
  'a user id': cursorOf('1796323724475000', '00000000-0000-4000-8000-000000000000'),
  'neither': cursorOf('1796323724475', 'zz'),
} as const;

function suite(engine: 'sqlite' | 'postgres', database: () => Record<string, unknown>) {
  describe(`users list refusals on ${engine}`, () => {
    const dataDir = tempDataDir();
    let gw: InProcessGateway;
    let configFile: string;
    const config = () => ({
      database: database(),
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    });

    before(async () => {
      configFile = writeConfig(config());
      gw = await startInProcess({ ...config(), admin: { token: ADMIN_TOKEN } }, dataDir);
      const created = await adminApi(client, gw.adminUrl!).post('/admin/users', { email: `list-${engine}@example.com`, password: 'a-long-password' });
      assert.equal(created.status, 201, created.text);
    });
    after(async () => {
      await gw?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('a cursor listUsers did not make is 400 bad_request (admin API) and exit 2 (CLI)', async () => {
      const admin = adminApi(client, gw.adminUrl!);
      // The adapter's own cursors still page.
      const own = (await admin.get('/admin/users?limit=1')).json<{ next_cursor: string | null }>();
      const valid = await admin.get(`/admin/users?limit=1${own.next_cursor ? `&cursor=${own.next_cursor}` : ''}`);
      assert.equal(valid.status, 200, valid.text);
      const ownKind = engine === 'sqlite' ? 'a SQLite rowid' : 'a user id';
      for (const [kind, cursor] of Object.entries(FOREIGN_CURSORS)) {
        if (kind === ownKind) continue;
        const res = await admin.get(`/admin/users?cursor=${cursor}`);
        assert.equal(res.status, 400, `${kind}: ${res.text}`);
        assert.equal(res.json<{ code: string }>().code, 'bad_request');
        assert.deepEqual(res.json<{ details: unknown }>().details, [{ field: 'cursor', message: 'is not a cursor from this API' }]);
      }
      const foreign = engine === 'sqlite' ? FOREIGN_CURSORS['a user id'] : FOREIGN_CURSORS['a SQLite rowid'];
      const cli = await runPortcullis(['users', 'list', '--cursor', foreign, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });
      assert.equal(cli.code, 2, cli.stdout + cli.stderr);
      assert.equal(cli.stdout, '');
    });

    test('users list with an argument is bad usage (exit 2), not every user', async () => {
      const cli = await runPortcullis(['users', 'list', `list-${engine}@`, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });
      assert.equal(cli.code, 2, cli.stdout + cli.stderr);
      assert.equal(cli.stdout, '');
      assert.match(cli.stderr, /users list takes no argument/);
    });
  });
}

suite('sqlite', () => ({}));
await onIsolatedPostgres('users list refusals on postgres', 'rvlist', suite);
