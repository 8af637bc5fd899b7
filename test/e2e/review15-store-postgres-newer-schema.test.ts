// A PostgreSQL user store written by a newer Portcullis (a schema version this build does not know: a downgrade) was
// served as current: `migrate` printed "migrations applied", `start` served and the identity commands ran, reading
// and writing tables whose shape this build does not know; the SQLite store refused the same (review10-store-sqlite-
// newer-schema). Now start, migrate and the identity commands refuse with one line naming both versions, exit 1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { isolatedDatabase, taggedUrl, withAdmin, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { postgresMigrations } from '../../src/store/migrations/postgres.js';

const skip = await requirePostgres();
const KNOWN = postgresMigrations.at(-1)!.version;
const NEWER = new RegExp(`schema version ${KNOWN + 1}, newer than this build knows \\(${KNOWN}\\)`);

describe('a PostgreSQL store with a newer schema than this build knows', { skip }, () => {
  let backend: TestBackend;
  let db: IsolatedDatabase;
  let configFile: string;
  const env = (): NodeJS.ProcessEnv => ({ PORTCULLIS_DATA_DIR: tempDataDir() });
  before(async () => {
    backend = await startBackend('echo');
    db = await isolatedDatabase();
    const url = taggedUrl(db.name, 'pc_newer_schema');
    configFile = writeConfig({
      admin: { enabled: false },
      load_balancing: { upstreams: upstreams([backend.port]) },
      database: { url },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    });
    const migrated = await runPortcullis(['migrate', '--config', configFile], { env: env() });
    assert.equal(migrated.code, 0, migrated.stderr);
    await withAdmin((c) => c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer build')", [KNOWN + 1]), url);
  });
  after(async () => {
    await backend?.stop();
    await db?.cleanup('');
  });

  for (const args of [['start'], ['migrate'], ['users', 'list']]) {
    test(`${args.join(' ')} refuses with both versions and exit 1`, async () => {
      const res = await runCli([...args, '--config', configFile], env(), { boundMs: 15_000 });
      assert.equal(res.code, 1, `exit ${res.code}: ${res.stderr}${res.stdout.slice(-400)}`);
      assert.match(res.stderr, NEWER);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    });
  }
});
