// A large PostgreSQL user store: the session janitor's run over more expired sessions than one statement can delete
// within the store's statement timeout. One DELETE of them all was cancelled at the timeout, every run, so expired
// sessions (and their families, and the change log pruned after them) were never removed again and the tables grew
// for good. The store's statement timeout is lowered here (the adapter's option) so a few hundred thousand rows,
// seeded in seconds, stand for the millions a login-heavy service gathers under the 5 s default.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import type { Logger } from 'pino';
import { SessionJanitor } from '../../src/store/janitor.js';
import { openPostgresUserStore } from '../../src/store/postgres.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';

const EXPIRED = 300_000;
// Between the two: one statement over these rows takes about 2 s (cancelled at this bound), a 2,000-row step 0.1-0.7 s
// (on a table this small PostgreSQL plans each step as a scan of the whole table; 500 ms cancelled the cold first step).
const STATEMENT_TIMEOUT_MS = 1_500;

async function admin<T>(step: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await step(client);
  } finally {
    await client.end();
  }
}

/** Users, and one family with one expired token per login, written as the store writes them. */
async function seed(client: pg.Client, schema: string): Promise<void> {
  await client.query(`SET search_path = "${schema}"`);
  // Foreign-key triggers off for this session's bulk load only (the rows are consistent by construction): seeding
  // takes seconds instead of half a minute.
  await client.query('SET session_replication_role = replica');
  await client.query(
    `INSERT INTO users (id, email, password_hash, created_at)
     SELECT gen_random_uuid(), 'seed-' || i || '@example.com', 'x', now() - interval '40 days' FROM generate_series(1, 20000) i`,
  );
  await client.query(
    `CREATE TEMP TABLE seeded AS
     SELECT gen_random_uuid() AS family_id, us.id AS user_id, s.i
     FROM generate_series(1, ${EXPIRED}) s(i)
     JOIN (SELECT id, row_number() OVER () - 1 AS n FROM users) us ON us.n = s.i % 20000`,
  );
  await client.query(
    `INSERT INTO refresh_token_families (id, user_id, created_at) SELECT family_id, user_id, now() - interval '40 days' FROM seeded`,
  );
  await client.query(
    `INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at)
     SELECT gen_random_uuid(), user_id, family_id, md5(i::text) || md5((i + 1)::text), now() - i * interval '1 second',
            now() - interval '40 days'
     FROM seeded`,
  );
  await client.query('ANALYZE');
}

const skip = await requirePostgres();
test('the janitor removes more expired sessions than one statement could within the statement timeout', { skip, timeout: 120_000 }, async (t) => {
  const schema = `pc_scale_${randomBytes(6).toString('hex')}`;
  const store = openPostgresUserStore({ url: DATABASE_URL, schema, poolSize: 2, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  try {
    await admin((c) => c.query(`CREATE SCHEMA "${schema}"`));
    await store.migrate();
    const started = performance.now();
    await admin((c) => seed(c, schema));
    t.diagnostic(`seeded ${EXPIRED} expired sessions in ${Math.round(performance.now() - started)} ms`);

    const warnings: unknown[] = [];
    const logger = { debug: () => undefined, warn: (...args: unknown[]) => void warnings.push(args) };
    const janitor = new SessionJanitor({ store, intervalMs: 3_600_000, logger: logger as unknown as Logger });
    const deleted = await janitor.runOnce();

    const left = await admin(async (c) => {
      const tokens = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".refresh_tokens`);
      const families = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".refresh_token_families`);
      return { tokens: Number(tokens.rows[0]!.n), families: Number(families.rows[0]!.n) };
    });
    assert.deepEqual(warnings, [], 'the run succeeded');
    assert.equal(deleted, EXPIRED);
    assert.deepEqual(left, { tokens: 0, families: 0 });
  } finally {
    await store.close();
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  }
});
