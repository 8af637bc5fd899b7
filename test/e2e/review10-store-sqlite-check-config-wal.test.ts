// `check-config` judged a SQLite store's schema version by the database file's header alone (5dd1121). A store a newer
// build migrated and that was killed before it checkpointed (SIGKILL, an OOM kill, a power cut) has its newer page 1 in
// the -wal: SQLite reads that one, so start and migrate refused the file ("schema version 7, newer than this build
// knows (6)") while check-config answered ok. Now check-config reads the -wal's last committed page 1 too (frames
// checked as SQLite's recovery checks them: salts and running checksum) and refuses as start does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDataDir } from '../helpers/gateway.js';
import { migratedStore } from '../helpers/sqlite-store-gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';

/** This build's schema version, and a newer build's. */
const KNOWN = sqliteMigrations.length;
const NEWER_VERSION = KNOWN + 1;

const ROOT = new URL('../../', import.meta.url).pathname;

describe('a SQLite user store whose newer schema is still in its -wal', () => {
  let dataDir: string;
  let configFile: string;
  let file: string;
  before(async () => {
    ({ dataDir, configFile, file } = await migratedStore());
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('check-config refuses it as start does, and reads nothing into the file', async () => {
    // A newer build's migration, committed, and the process killed before any checkpoint.
    const newer = spawnSync(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(join(ROOT, 'node_modules/better-sqlite3'))});
         const db = new D(${JSON.stringify(file)});
         db.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (${NEWER_VERSION}, 'from a newer build', 0)");
         db.pragma('user_version = ${NEWER_VERSION}');
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(newer.signal, 'SIGKILL', newer.stderr);
    assert.ok(statSync(`${file}-wal`).size > 0, 'the newer page 1 is in the -wal');
    const before = { db: readFileSync(file), wal: readFileSync(`${file}-wal`) };
    const env = { PORTCULLIS_DATA_DIR: dataDir };
    // Before the fix: exit 0, "config ok".
    const checked = await runPortcullis(['check-config', '--config', configFile], { env });
    assert.equal(checked.code, 1, checked.stdout + checked.stderr);
    assert.match(checked.stderr, new RegExp(`PORTCULLIS_DATA_DIR: the user store at .*portcullis\\.db is at schema version ${NEWER_VERSION}, newer than this build knows \\(${KNOWN}\\)`));
    assert.ok(readFileSync(file).equals(before.db) && readFileSync(`${file}-wal`).equals(before.wal), 'check-config changed nothing');
    const started = await runPortcullis(['migrate', '--config', configFile], { env });
    assert.equal(started.code, 1, started.stderr);
    assert.match(started.stderr, new RegExp(`schema version ${NEWER_VERSION}, newer than this build knows \\(${KNOWN}\\)`));
  });

  test('a store with committed frames of this build in its -wal passes', async () => {
    const fresh = tempDataDir();
    try {
      const env = { PORTCULLIS_DATA_DIR: fresh };
      assert.equal((await runPortcullis(['migrate', '--config', configFile], { env })).code, 0);
      const writer = spawnSync(
        process.execPath,
        [
          '-e',
          `const D = require(${JSON.stringify(join(ROOT, 'node_modules/better-sqlite3'))});
           const db = new D(${JSON.stringify(join(fresh, 'portcullis.db'))});
           const insert = db.prepare('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, 0)');
           for (let i = 0; i < 100; i++) insert.run('id-' + i, 'u' + i + '@example.com', 'h'.repeat(400));
           process.kill(process.pid, 'SIGKILL');`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(writer.signal, 'SIGKILL', writer.stderr);
      assert.ok(statSync(join(fresh, 'portcullis.db-wal')).size > 0);
      const checked = await runPortcullis(['check-config', '--config', configFile], { env });
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
