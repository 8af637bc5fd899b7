// Runs the UserStore contract against the SQLite adapter, in a temporary data dir removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteUserStore, SQLITE_FILE_NAME } from '../../src/store/sqlite.js';
import { userStoreContract } from './user-store.contract.js';
import { identityStoreContract } from './identity-store.contract.js';

const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-sqlite-'));

identityStoreContract('sqlite', { open: async () => openSqliteUserStore({ dataDir }) });

userStoreContract('sqlite', {
  open: async () => openSqliteUserStore({ dataDir }),
  deleteUserRaw: async (id) => {
    const db = new Database(join(dataDir, SQLITE_FILE_NAME));
    try {
      db.pragma('foreign_keys = ON');
      db.prepare('DELETE FROM users WHERE id = ?').run(id);
    } finally {
      db.close();
    }
  },
  holdUser: async () => {
    // The write lock a log-out's transaction holds, from another connection (another process, in production).
    const db = new Database(join(dataDir, SQLITE_FILE_NAME));
    db.prepare('BEGIN IMMEDIATE').run();
    return async () => {
      db.prepare('COMMIT').run();
      db.close();
    };
  },
  cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
});
