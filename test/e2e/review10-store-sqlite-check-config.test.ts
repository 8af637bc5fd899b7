// `check-config` on a SQLite user store that start refuses: a file that is not a database, one cut short mid-page, one
// with a newer schema than this build knows. Start refused each (exit 1, one line with the reason) while check-config
// answered ok: it judged the store's path (writable or not), never what the file held, so a config it passed could
// not start. Now check-config reads the file's 100-byte header (nothing opened through SQLite, nothing written) and
// refuses as start does, naming the reason; start and check-config leave the file as it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { migratedStore } from '../helpers/sqlite-store-gateway.js';
import { checkConfigVerdict, startVerdict } from '../helpers/config-error.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';

/** This build's schema version, and a newer build's. */
const KNOWN = sqliteMigrations.length;
const NEWER_VERSION = KNOWN + 1;

const ROOT = new URL('../../', import.meta.url).pathname;

/** How each file is spoiled, and what start and check-config must say of it. */
const CASES = [
  {
    name: 'not a database (text where the file should be)',
    spoil: (file: string) => writeFileSync(file, 'this is not a database, only text that took its name\n'.repeat(100)),
    start: /user store unavailable: SQLITE_NOTADB \(the file is not a SQLite database\)/,
    check: /PORTCULLIS_DATA_DIR: the user store at .*portcullis\.db is not a SQLite database \(SQLITE_NOTADB\)/,
  },
  {
    name: 'cut short mid-page',
    spoil: (file: string) => truncateSync(file, Math.floor(statSync(file).size / 2) + 100),
    start: /user store unavailable: SQLITE_CORRUPT \(the database file is corrupt\)/,
    check: /PORTCULLIS_DATA_DIR: the user store at .*portcullis\.db is corrupt \(SQLITE_CORRUPT\): shorter than its header says/,
  },
  {
    name: 'a newer schema than this build knows',
    spoil: (file: string) => {
      const db = new Database(file);
      db.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${NEWER_VERSION}, 'from a newer build', 0)`);
      db.pragma(`user_version = ${NEWER_VERSION}`);
      db.close();
    },
    start: new RegExp(`schema version ${NEWER_VERSION}, newer than this build knows \\(${KNOWN}\\)`),
    check: new RegExp(`PORTCULLIS_DATA_DIR: the user store at .*portcullis\\.db is at schema version ${NEWER_VERSION}, newer than this build knows \\(${KNOWN}\\)`),
  },
] as const;

for (const c of CASES) {
  describe(`a SQLite user store ${c.name}`, () => {
    let dataDir: string;
    let configFile: string;
    let file: string;
    let spoilt: Buffer;
    before(async () => {
      ({ dataDir, configFile, file } = await migratedStore());
      // Some rows, so that half the file is past its first pages.
      const db = new Database(file);
      const insert = db.prepare('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, 0)');
      for (let i = 0; i < 200; i++) insert.run(`id-${i}`, `u${i}@example.com`, 'h'.repeat(400));
      db.close();
      c.spoil(file);
      spoilt = readFileSync(file);
    });
    after(() => {
      if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    });

    test('start and check-config both refuse it with the reason, and leave it as it was', async () => {
      const env = { PORTCULLIS_DATA_DIR: dataDir };
      assert.match(await startVerdict(configFile, env, ROOT), c.start);
      // Before the fix: 'ok'.
      assert.match(await checkConfigVerdict(configFile, env, ROOT), c.check);
      assert.ok(readFileSync(file).equals(spoilt), 'the file was changed');
    });
  });
}
