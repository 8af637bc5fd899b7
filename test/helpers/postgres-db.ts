// PostgreSQL helpers for tests that need a database of their own or must kill their own gateway's sessions.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { after, before, test } from 'node:test';
import { FAST_ARGON2, TEST_SECRET } from './auth-gateway.js';
import { spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from './gateway.js';
import { DATABASE_URL, requirePostgres } from './services.js';
import { startTcpForwarder, type TcpForwarder } from './tcp-forwarder.js';

/** Runs `step` on a fresh connection to `url` (default the shared test database), then closes it. */
export async function withAdmin<T>(step: (client: pg.Client) => Promise<T>, url = DATABASE_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await step(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A database for one test run; `cleanup` drops it (or deletes this run's users where CREATE DATABASE is refused). */
export interface IsolatedDatabase {
  readonly name: string;
  cleanup(emailPrefix: string): Promise<void>;
}

/**
 * The gateway takes no schema setting (the adapter pins search_path), so each run gets its own database, dropped at
 * the end. Where CREATE DATABASE is not allowed, the configured database is used and this run's users are deleted.
 */
export async function isolatedDatabase(): Promise<IsolatedDatabase> {
  const name = `pc_e2e_${randomBytes(6).toString('hex')}`;
  try {
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    return { name, cleanup: () => withAdmin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))) };
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    const existing = new URL(DATABASE_URL).pathname.slice(1);
    return {
      name: existing,
      cleanup: (prefix) => withAdmin(async (c) => void (await c.query('DELETE FROM users WHERE email LIKE $1', [`${prefix}%`]))),
    };
  }
}

/**
 * The URL of database `name` on the test server, tagged with `application_name` so a test can find (and terminate)
 * exactly the sessions its own gateway opened and no one else's. pg gives the URL's parameter precedence.
 */
export function taggedUrl(name: string, applicationName: string): string {
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  url.searchParams.set('application_name', applicationName);
  return url.toString();
}

/** A unique application_name for one test run (at most 63 bytes, as PostgreSQL truncates longer ones). */
export function uniqueApplicationName(tag: string): string {
  return `pc_${tag}_${randomBytes(5).toString('hex')}`.slice(0, 63);
}

/** Pids of the sessions named `applicationName` that are waiting on a lock right now. */
export async function lockWaiters(applicationName: string): Promise<number[]> {
  return withAdmin(async (c) => {
    const { rows } = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [applicationName],
    );
    return rows.map((r) => r.pid);
  });
}

/** Terminates every session named `applicationName` (only ever a test's own gateway). Returns how many. */
export async function terminateSessions(applicationName: string): Promise<number> {
  return withAdmin(async (c) => {
    const { rows } = await c.query<{ ok: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    );
    return rows.filter((r) => r.ok).length;
  });
}

/** Terminates session `pid` if (and only if) it carries `applicationName`. True when it was terminated. */
export async function terminateBackend(pid: number, applicationName: string): Promise<boolean> {
  return withAdmin(async (c) => {
    const { rows } = await c.query<{ ok: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE pid = $1 AND application_name = $2',
      [pid, applicationName],
    );
    return rows[0]?.ok === true;
  });
}

/**
 * Runs `suite` (a suite written once for every engine) on a PostgreSQL database of its own, dropped afterwards, as
 * engine "postgres" with a database section `{ url, pool_size: 4 }` whose sessions carry `application_name`
 * pc_<tag>_…; when PostgreSQL is unavailable, one skipped test titled `title` says why (under CI=true a failure).
 */
export async function onIsolatedPostgres(
  title: string,
  tag: string,
  suite: (engine: 'postgres', database: () => Record<string, unknown>) => void,
): Promise<void> {
  const skip = await requirePostgres();
  if (skip) {
    test(title, { skip }, () => {});
    return;
  }
  let db: IsolatedDatabase | undefined;
  const appName = uniqueApplicationName(tag);
  before(async () => {
    db = await isolatedDatabase();
  });
  after(async () => {
    await db?.cleanup(`${tag}-none-`); // drops the database; where that is refused, deletes nothing of others'
  });
  suite('postgres', () => ({ url: taggedUrl(db!.name, appName), pool_size: 4 }));
}

/** A database of its own reached through a TCP link the test can cut (a store that stops answering mid-test). */
export interface DatabaseBehindLink {
  readonly db: IsolatedDatabase;
  readonly link: TcpForwarder;
  /** The database's URL through the link. */
  readonly url: string;
  /** Closes the link, then drops the database (or deletes users whose email starts with `emailPrefix`). */
  close(emailPrefix: string): Promise<void>;
}

export async function isolatedDatabaseBehindLink(): Promise<DatabaseBehindLink> {
  const db = await isolatedDatabase();
  const target = new URL(DATABASE_URL);
  let link: TcpForwarder;
  try {
    link = await startTcpForwarder(target.hostname, Number(target.port || 5432));
  } catch (err) {
    await db.cleanup('pc-none-');
    throw err;
  }
  const url = new URL(DATABASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String(link.port);
  url.pathname = `/${db.name}`;
  return {
    db,
    link,
    url: url.toString(),
    close: async (emailPrefix) => {
      await link.close();
      await db.cleanup(emailPrefix);
    },
  };
}

/**
 * A trigger in database `dbName` that holds every transaction firing it on advisory lock `key` while a test holds
 * that lock (`holdOn`): a race the test wants every run is opened at the trigger's point. `when` is the trigger's
 * timing and event clause, e.g. `AFTER INSERT ON refresh_tokens FOR EACH ROW`.
 */
export async function installHoldTrigger(dbName: string, applicationName: string, name: string, key: number, when: string): Promise<void> {
  await withAdmin(async (c) => {
    await c.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock_shared(${key}); RETURN NULL; END $$`);
    await c.query(`CREATE TRIGGER ${name} ${when} EXECUTE FUNCTION ${name}()`);
  }, taggedUrl(dbName, `${applicationName}_setup`));
}

/** A hold taken on advisory lock `key` (see installHoldTrigger); `release` lets the held transactions go, once. */
export interface AdvisoryHold {
  release(): Promise<void>;
}

export async function holdOn(dbName: string, applicationName: string, key: number): Promise<AdvisoryHold> {
  const holder = new pg.Client({ connectionString: taggedUrl(dbName, `${applicationName}_holder`) });
  await holder.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [key]);
  } catch (err) {
    await holder.end().catch(() => undefined);
    throw err;
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await holder.query('SELECT pg_advisory_unlock($1)', [key]);
      await holder.end();
    },
  };
}

/**
 * A gateway in a process of its own with auth on and its users in PostgreSQL at `url` (pool of 4), proxying to the
 * backend on `backendPort`; `admin` is its admin section (off unless given). Start-up may run the migrations, hence
 * the generous 60 s bound.
 */
export function spawnPostgresAuthGateway(url: string, backendPort: number, admin: ConfigInput = { enabled: false }): Promise<GatewayProcess> {
  return spawnGateway(
    {
      load_balancing: { upstreams: upstreams([backendPort]) },
      database: { url, pool_size: 4 },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
      admin,
    },
    { timeoutMs: 60_000 },
  );
}
