// The PostgreSQL session janitor's run and a family another transaction holds. Since 3f1fda2 a step deletes only the
// tokens of the families it could lock (SKIP LOCKED); a held family's expired tokens stay in the batch it selected, so
// the step deleted fewer rows than its batch, and the janitor (which steps on only while a step deletes a full batch)
// ended the whole run there: one family held for a moment by a rotation or a log-out everywhere left the rest of the
// backlog, however large, to the next run an hour later.
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
test('a family held by another transaction does not end the janitor run: every other expired session goes', { skip, timeout: 30_000 }, async () => {
  const schema = `pc_heldstop_${randomBytes(6).toString('hex')}`;
  const store = openPostgresUserStore({ url: DATABASE_URL, schema, poolSize: 2 });
  const holder = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  let holding = false;
  try {
    await store.migrate();
    const user = await store.createUser({ id: randomUUID(), email: 'held-stop@example.com', passwordHash: 'x' });
    // The held family's token first and earliest expired, so it is in the first batch however the step reads them
    // (heap order or the expires_at index); then 30 free sessions, expired later.
    const held = randomUUID();
    const families = [held, ...Array.from({ length: 30 }, () => randomUUID())];
    for (const [i, familyId] of families.entries()) {
      const stored = await store.createRefreshToken({
        id: randomUUID(),
        userId: user.id,
        familyId,
        tokenHash: randomBytes(32).toString('hex'),
        expiresAt: new Date(Date.now() - 3_600_000 + i * 1000),
      });
      assert.ok(stored, 'the session was stored');
    }
    // And an expired token without a family row (only a store older than migration 3 could hold one): it goes too.
    const orphanFamily = randomUUID();
    await withAdmin((c) =>
      c.query(
        `INSERT INTO "${schema}".refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)`,
        [randomUUID(), user.id, orphanFamily, randomBytes(32).toString('hex'), new Date(Date.now() - 60_000)],
      ),
    );
    const left = (): Promise<{ families: string[]; tokens: string[] }> =>
      withAdmin(async (c) => {
        const f = await c.query<{ id: string }>(`SELECT id FROM "${schema}".refresh_token_families ORDER BY id`);
        const t = await c.query<{ family_id: string }>(`SELECT family_id FROM "${schema}".refresh_tokens ORDER BY family_id`);
        return { families: f.rows.map((r) => r.id), tokens: t.rows.map((r) => r.family_id) };
      });

    const warnings: unknown[] = [];
    const logger = { debug: () => undefined, warn: (...args: unknown[]) => void warnings.push(args) };
    // Batches of 10: the 32 expired tokens take four steps.
    const janitor = new SessionJanitor({ store, intervalMs: 3_600_000, batchSize: 10, logger: logger as unknown as Logger });

    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "${schema}".refresh_token_families WHERE id = $1 FOR UPDATE`, [held]);
    holding = true;
    const deleted = await janitor.runOnce();
    // Before: the first step deleted 9 of its 10 and the run ended, 21 free sessions left for the next run.
    assert.deepEqual(await left(), { families: [held], tokens: [held] }, 'only the held session is left');
    assert.equal(deleted, 31, 'the 30 free sessions and the orphan token');
    await holder.query('COMMIT');
    holding = false;

    // Nothing held: the next run takes the rest.
    assert.equal(await janitor.runOnce(), 1);
    assert.deepEqual(await left(), { families: [], tokens: [] });
    assert.deepEqual(warnings, [], 'the runs succeeded');
  } finally {
    if (holding) await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
    await store.close();
    await withAdmin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  }
});
