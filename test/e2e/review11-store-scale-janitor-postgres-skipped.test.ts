// The PostgreSQL session janitor and a family it cannot lock. Each batched step deleted a batch of expired tokens, then
// the families that batch emptied, skipping one another transaction held (a rotation, a log-out everywhere locking
// every family of its user). Later runs looked only at the families of the tokens they deleted, so a skipped family
// (its tokens already gone) was never removed again: the old full sweep of every family had caught it next run.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import type { Logger } from 'pino';
import { SessionJanitor } from '../../src/store/janitor.js';
import { openPostgresUserStore } from '../../src/store/postgres.js';
import { withAdmin } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';

const skip = await requirePostgres();
test('a token family the janitor skipped while another transaction held it is removed by a later run', { skip, timeout: 30_000 }, async () => {
  const schema = `pc_skipped_${randomBytes(6).toString('hex')}`;
  const store = openPostgresUserStore({ url: DATABASE_URL, schema, poolSize: 2 });
  const holder = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  let holding = false;
  try {
    await store.migrate();
    const user = await store.createUser({ id: randomUUID(), email: 'skipped@example.com', passwordHash: 'x' });
    // Two sessions that expired a minute ago: one family held by another transaction during the first run.
    const held = randomUUID();
    const free = randomUUID();
    for (const familyId of [held, free]) {
      const stored = await store.createRefreshToken({
        id: randomUUID(),
        userId: user.id,
        familyId,
        tokenHash: randomBytes(32).toString('hex'),
        expiresAt: new Date(Date.now() - 60_000),
      });
      assert.ok(stored, 'the session was stored');
    }
    const left = (): Promise<{ families: string[]; tokens: string[] }> =>
      withAdmin(async (c) => {
        const families = await c.query<{ id: string }>(`SELECT id FROM "${schema}".refresh_token_families ORDER BY id`);
        const tokens = await c.query<{ family_id: string }>(`SELECT family_id FROM "${schema}".refresh_tokens ORDER BY family_id`);
        return { families: families.rows.map((r) => r.id), tokens: tokens.rows.map((r) => r.family_id) };
      });

    const warnings: unknown[] = [];
    const logger = { debug: () => undefined, warn: (...args: unknown[]) => void warnings.push(args) };
    const janitor = new SessionJanitor({ store, intervalMs: 3_600_000, logger: logger as unknown as Logger });

    // Another transaction holds the family row, as a rotation or a log-out everywhere does.
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "${schema}".refresh_token_families WHERE id = $1 FOR UPDATE`, [held]);
    holding = true;
    await janitor.runOnce();
    // The free session is gone whole; the held family is left to a later run (now with its expired token, which that
    // run finds again by expiry).
    const during = await left();
    assert.deepEqual(during.families, [held]);
    assert.ok(!during.tokens.includes(free), 'the free session\'s token is gone');
    await holder.query('COMMIT');
    holding = false;

    // The next run, with nothing held: the skipped family goes (before, it stayed for good without its token).
    await janitor.runOnce();
    assert.deepEqual(await left(), { families: [], tokens: [] });
    assert.deepEqual(warnings, [], 'the runs succeeded');
  } finally {
    if (holding) await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
    await store.close();
    await withAdmin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  }
});
