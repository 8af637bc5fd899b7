// Two starters on one SQLite file at once (a multi-worker gateway: each worker migrates at start; two gateways; a
// gateway beside `portcullis migrate`). The first takes the write lock for the whole migration; since schema versions
// 7 and 8 build indexes over the largest tables, upgrading a grown store holds it for seconds (11 s for 1,500,000
// sessions and change rows on a loaded 2-core machine). The second starter waited only the ordinary 5 s busy budget
// and failed to start (user store unavailable). A real second connection holds the write lock here for longer than
// that budget, standing for the other starter's migration.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, tempDataDir, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { openSqliteUserStore, SQLITE_FILE_NAME } from '../../src/store/sqlite.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');

/** Longer than the store's 5 s busy budget for an ordinary step. */
const HELD_MS = 7_000;

/** Another connection takes the file's write lock and gives it back after `ms`; resolves once it has. */
function holdWriteLock(file: string, ms: number): Promise<void> {
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  return new Promise<void>((resolve) =>
    setTimeout(() => {
      other.exec('COMMIT');
      other.close();
      resolve();
    }, ms),
  );
}

// The two cases run side by side: each waits out its own held lock (HELD_MS) on a data dir of its own.
describe('a starter beside a long SQLite migration', { concurrency: true }, () => {
  test('a starter waits for another starter migrating the same SQLite file past the busy budget', { timeout: 30_000 }, async () => {
    const dataDir = tempDataDir();
    const first = openSqliteUserStore({ dataDir });
    try {
      await first.migrate();
      await first.close();
      const released = holdWriteLock(join(dataDir, SQLITE_FILE_NAME), HELD_MS);
      const second = openSqliteUserStore({ dataDir });
      try {
        await assert.doesNotReject(second.migrate());
        await assert.doesNotReject(second.checkMigrated());
      } finally {
        await released;
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a second gateway starts while another starter holds the SQLite file for its migration', { timeout: 60_000 }, async () => {
    const dataDir = tempDataDir();
    const backend = await startBackend('echo');
    const client = createClient();
    const store = openSqliteUserStore({ dataDir });
    await store.migrate();
    await store.close();
    const released = holdWriteLock(join(dataDir, SQLITE_FILE_NAME), HELD_MS);
    try {
      const gw = await spawnGateway(
        {
          load_balancing: { upstreams: upstreams([backend.port]) },
          jwt: { secret: TEST_SECRET },
          middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
          admin: { enabled: false },
        },
        { dataDir, timeoutMs: 30_000 },
      );
      try {
        const res = await client.request(`${gw.url}/health`);
        assert.equal(res.status, 200, res.text);
      } finally {
        await gw.cleanup();
      }
    } finally {
      await released;
      await client.close();
      await backend.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
