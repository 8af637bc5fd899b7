// Reachability of the shared PostgreSQL: a missing server fails the suite under CI=true and skips it otherwise.
import pg from 'pg';

/** The PostgreSQL the suites use (DATABASE_URL, default the machine's `test` database). */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether PostgreSQL answers. When it does not: under CI=true this throws (the suite must fail, not skip);
 * otherwise it returns a skip message for node:test.
 */
export async function requirePostgres(): Promise<string | false> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return false;
  } catch {
    const message = `PostgreSQL unreachable at ${new URL(DATABASE_URL).host}`;
    if (process.env.CI === 'true') throw new Error(`${message} (CI=true: PostgreSQL suites must not be skipped)`);
    return `${message}; skipped (set CI=true to make this a failure)`;
  } finally {
    await client.end().catch(() => undefined);
  }
}
