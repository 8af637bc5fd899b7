// A SQLite user store written by a newer Portcullis (a schema version this build does not know: a downgrade, or a
// file copied from a newer gateway) used to be opened as if current: `start` served on it (reads and writes against
// tables it does not know the shape of) and its migration step wrote the header's user_version back down to this
// build's version, so the newer build then found its own file marked older. Now start, migrate and the identity
// commands refuse with one line naming both versions, exit 1, and the file is left as it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';

/** This build's schema version, and a newer build's. */
const KNOWN = sqliteMigrations.length;
const NEWER_VERSION = KNOWN + 1;

const NEWER = new RegExp(`schema version ${NEWER_VERSION}, newer than this build knows \\(${KNOWN}\\)`);

describe('a SQLite store with a newer schema than this build knows', () => {
  let backend: TestBackend;
  let dataDir: string;
  let configFile: string;
  let file: string;
  let written: Buffer;
  const env = (): NodeJS.ProcessEnv => ({ PORTCULLIS_DATA_DIR: dataDir });
  before(async () => {
    backend = await startBackend('echo');
    dataDir = tempDataDir();
    configFile = writeConfig({
      admin: { enabled: false },
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    });
    const migrated = await runPortcullis(['migrate', '--config', configFile], { env: env() });
    assert.equal(migrated.code, 0, migrated.stderr);
    file = join(dataDir, 'portcullis.db');
    // What a newer build's next migration leaves: its row in schema_migrations and the header's user_version.
    const db = new Database(file);
    db.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${NEWER_VERSION}, 'from a newer build', 0)`);
    db.pragma(`user_version = ${NEWER_VERSION}`);
    db.close(); // checkpoints the WAL: the file alone holds the database now
    written = readFileSync(file);
  });
  after(async () => {
    await backend?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  for (const args of [['start'], ['migrate'], ['users', 'list']]) {
    test(`${args.join(' ')} refuses with both versions and exit 1, and leaves the file as it was`, async () => {
      // Bounded: before the fix `start` served until killed (code null).
      const res = await runCli([...args, '--config', configFile], env(), { boundMs: 15_000 });
      assert.equal(res.code, 1, `exit ${res.code}: ${res.stderr}${res.stdout.slice(-400)}`);
      assert.match(res.stderr, NEWER);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.doesNotMatch(res.stderr, /\bat .*\.(js|ts):\d+/, 'no stack trace');
      assert.ok(readFileSync(file).equals(written), 'the database file was changed');
      const db = new Database(file, { readonly: true });
      try {
        assert.equal(db.pragma('user_version', { simple: true }), NEWER_VERSION);
      } finally {
        db.close();
      }
    });
  }
});
