// The shape of one numbered schema migration; each dialect lists its own in order.

/** One migration: applied once, in a transaction, recorded in `schema_migrations` under its version. */
export interface Migration {
  /** 1, 2, 3… in order; never renumbered once shipped. */
  readonly version: number;
  /** Short description, stored with the version. */
  readonly name: string;
  /** SQL statements, run in order inside the migration's transaction. */
  readonly statements: readonly string[];
}

/**
 * Longest a PostgreSQL migration statement may run (its statement_timeout), the wait for the advisory lock that keeps
 * concurrent starters apart included. A cluster primary allows a worker's start-up this long on top of the rest.
 */
export const MIGRATION_TIMEOUT_MS = 60_000;

/** Throws when `migrations` are not numbered 1..n in order (a programming error caught by the unit tests and at start). */
export function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}
