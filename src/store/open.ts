// Opens the configured UserStore (SQLite when database.url is empty, else PostgreSQL) and applies migrations.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { openPostgresUserStore } from './postgres.js';
import { openSqliteUserStore } from './sqlite.js';
import type { UserStore } from './user-store.js';

/**
 * Called once by the composition root (and by `portcullis migrate`). Resolves with a migrated store; rejects with
 * StoreUnavailableError when the database cannot be reached or migrated (the pool is closed first).
 */
export async function openUserStore(
  database: Config['database'],
  dataDir: string,
  logger: Pick<Logger, 'warn'>,
): Promise<UserStore> {
  const store =
    database.url === ''
      ? openSqliteUserStore({ dataDir })
      : openPostgresUserStore({ url: database.url, poolSize: database.pool_size, logger });
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}
