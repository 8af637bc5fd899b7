// A multi-worker gateway's SQLite user store, migrated by the primary before it forks a worker. Each worker migrates
// at its start too, and the primary kills a worker that has not started within its start deadline
// (worker-deadlines.ts). A PostgreSQL migration is bounded (each statement by MIGRATION_TIMEOUT_MS, which the deadline
// counts); a SQLite one is not: it runs on the worker's thread as long as its index builds take (migrations 7 and 8
// over a grown store's largest tables: 7 s for 1,500,000 sessions on a loaded 2-core machine, and more for a larger
// store), so a store behind this build's schema got the workers killed as failed starts, restarted with backoff, and
// given up on. Migrated here first, nothing is left for a worker's own migrate() but a check and the write lock.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';

/** Whether workers started on `config` open the SQLite user store (auth on, no database.url), which the primary migrates. */
export function primaryMigrates(config: Config): boolean {
  return config.middleware.auth.enabled && config.database.url === '';
}

/**
 * Opens the SQLite user store the workers will open, migrates it as `portcullis migrate` does (waiting for another
 * starter's write lock up to MIGRATION_TIMEOUT_MS), and closes it. `dataDir` is the one every worker is forked with
 * (run-gateway.ts: from the accepted environment at start, a .env's value included, for the gateway's whole life).
 * Rejects as the workers' start would (the store unavailable, or at a newer schema): the gateway then exits 1 with
 * that one line, no worker forked.
 */
export async function migrateBeforeFork(config: Config, dataDir: string, logger: Pick<Logger, 'warn'>): Promise<void> {
  if (!primaryMigrates(config)) return;
  // On demand, as features.ts imports it: a primary without the SQLite store never loads better-sqlite3.
  const { openUserStore } = await import('./store/open.js');
  const store = await openUserStore(config.database, dataDir, logger);
  await store.close();
}
