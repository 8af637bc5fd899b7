// A transaction that fails on the server's answer (here: its statement timeout while waiting for a row lock another
// session holds) discards its session, as every failed transaction does. That session must still be closed the
// PostgreSQL way (a Terminate message, which rolls the open transaction back): 8cae49c sent ROLLBACK without waiting
// for it, so the pool found a statement in flight and cut the socket instead. PostgreSQL counts each such session in
// pg_stat_database.sessions_abandoned (and may log the reset), one per failed request. Against the real server.
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresUserStore, type PostgresUserStore } from '../../src/store/postgres.js';
import { StoreUnavailableError } from '../../src/store/user-store.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName, withAdmin, type IsolatedDatabase } from '../helpers/postgres-db.js';

let db: IsolatedDatabase;
let url: string;
before(async () => {
  db = await isolatedDatabase();
  url = taggedUrl(db.name, uniqueApplicationName('failtx'));
});
after(async () => {
  await db?.cleanup('failtx-');
});

/** Sessions of this database that ended without the client's Terminate (PostgreSQL 14+). */
async function abandoned(): Promise<number> {
  return withAdmin(async (c) => {
    await c.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await c.query<{ n: string }>('SELECT sessions_abandoned AS n FROM pg_stat_database WHERE datname = $1', [db.name]);
    return Number(rows[0]?.n ?? 0);
  });
}

test('a transaction failed by the server closes its discarded session with a Terminate, not a cut socket', async () => {
  const store: PostgresUserStore = openPostgresUserStore({ url, schema: 'public', poolSize: 2, statementTimeoutMs: 300 });
  const holder = new pg.Client({ connectionString: url });
  try {
    await store.migrate();
    const user = await store.createUser({ id: randomUUID(), email: `failtx-${randomUUID()}@example.com`, passwordHash: 'x' });
    await holder.connect();
    const before = await abandoned();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user.id]);
    for (let i = 0; i < 6; i++) {
      const token = { id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: randomUUID(), expiresAt: new Date(Date.now() + 60_000) };
      await assert.rejects(store.createRefreshToken(token), StoreUnavailableError);
    }
    await holder.query('ROLLBACK');
    // The store still serves, on fresh sessions.
    assert.equal((await store.findUserById(user.id))?.id, user.id);
    // Stats of an ended backend are flushed as it exits: give them a generous moment.
    let after = before;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await abandoned();
    }
    assert.equal(after - before, 0, 'every discarded session was ended with a Terminate');
  } finally {
    await holder.end().catch(() => undefined);
    await store.close();
  }
});
