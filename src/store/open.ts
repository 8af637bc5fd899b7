// Opens the configured UserStore (SQLite when database.url is empty, else PostgreSQL) and applies migrations.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { UserStore } from './user-store.js';
import { EVENTS } from '../observability/events.js';

/**
 * Called once by the composition root (and by `portcullis migrate`). Resolves with a migrated store; rejects with
 * StoreUnavailableError when the database cannot be reached or migrated (the pool is closed first).
 * `create: false` (the CLI's identity commands): neither the SQLite file nor a table is created and no migration
 * runs; an absent file or an unmigrated schema rejects with StoreNotReadyError saying where.
 */
export async function openUserStore(
  database: Config['database'],
  dataDir: string,
  logger: Pick<Logger, 'warn'>,
  options: { readonly create?: boolean } = {},
): Promise<UserStore> {
  const create = options.create ?? true;
  // The certificate files the URL names, judged before the driver reads them (a ConfigError naming database.url).
  if (database.url !== '') (await import('../config/postgres-files.js')).checkPostgresUrlFiles(database.url);
  // Imported on demand: the SQLite addon or the pg driver is loaded only for the database in use.
  const store =
    database.url === ''
      ? (await import('./sqlite.js')).openSqliteUserStore({
          dataDir,
          create,
          // Once: every store step answers 503 from then on, each request's line naming the code again.
          onFileLost: (lost) =>
            logger.warn({ event: EVENTS.userStoreFileLost, file: lost.file, part: lost.part, code: lost.code }, EVENTS.userStoreFileLost),
        })
      : (await import('./postgres.js')).openPostgresUserStore({ url: database.url, poolSize: database.pool_size, logger });
  try {
    await (create ? store.migrate() : store.checkMigrated());
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}
