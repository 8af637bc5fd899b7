// PostgreSQL: revocation and a concurrent rotation of the same session are serialised (no rotated token escapes).
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresUserStore, type PostgresUserStore } from '../../src/store/postgres.js';
import { lockWaiters, uniqueApplicationName, withAdmin } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const schema = `pc_race_${randomBytes(6).toString('hex')}`;
const appName = uniqueApplicationName('race');
const DAY = 86_400_000;

function hash(): string {
  return randomBytes(32).toString('hex');
}

/** The store under test, its sessions named `appName` so the test can tell when they wait on a lock. */
function storeUrl(): string {
  const url = new URL(DATABASE_URL);
  url.searchParams.set('application_name', appName);
  return url.toString();
}

type Revocation = 'logout' | 'reuse' | 'logout everywhere';

const skip = await requirePostgres();
if (skip) {
  test('PostgreSQL rotation/revocation races', { skip }, () => {});
} else {
  describe('PostgreSQL: a revocation waiting on a concurrent rotation', () => {
    let store: PostgresUserStore;
    before(async () => {
      store = openPostgresUserStore({ url: storeUrl(), schema, poolSize: 4 });
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await withAdmin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));
    });

    for (const revocation of ['logout', 'reuse', 'logout everywhere'] as const) {
      test(`${revocation} revokes the token the rotation inserted`, () => race(store, revocation));
    }
  });
}

/**
 * A rotation is paused mid-transaction (after it revoked the old token, while it inserts the new one: the test holds
 * the user row FOR UPDATE on a second connection, which the insert's foreign-key check waits for). The revocation
 * starts while the rotation is paused; then the pause ends. Whatever order the two end in, the session must be dead:
 * the token the rotation handed out must not rotate again.
 */
async function race(store: PostgresUserStore, revocation: Revocation): Promise<void> {
  const now = new Date();
  const user = await store.createUser({ id: randomUUID(), email: `race-${randomUUID()}@example.com`, passwordHash: 'x' });
  const familyId = randomUUID();
  const first = hash();
  await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId, tokenHash: first, expiresAt: new Date(now.getTime() + DAY) });
  // For the reuse case the live token is the second one; presenting the first again is the reuse.
  let live = first;
  if (revocation === 'reuse') {
    live = hash();
    const r = await store.rotateRefreshToken(first, { id: randomUUID(), tokenHash: live, expiresAt: new Date(now.getTime() + DAY) }, now, 0);
    assert.equal(r.kind, 'rotated');
  }

  const pause = new pg.Client({ connectionString: DATABASE_URL });
  await pause.connect();
  try {
    await pause.query('BEGIN');
    await pause.query(`SELECT 1 FROM "${schema}".users WHERE id = $1 FOR UPDATE`, [user.id]);

    const next = hash();
    const later = new Date(now.getTime() + 1000);
    const rotation = store.rotateRefreshToken(live, { id: randomUUID(), tokenHash: next, expiresAt: new Date(now.getTime() + DAY) }, later, 0);
    await waitFor(async () => (await lockWaiters(appName)).length === 1, 'the rotation to pause');

    const revoked =
      revocation === 'logout'
        ? store.revokeFamilyOf(live, later)
        : revocation === 'reuse'
          ? store.rotateRefreshToken(first, { id: randomUUID(), tokenHash: hash(), expiresAt: new Date(now.getTime() + DAY) }, later, 0)
          : store.revokeAllForUser(user.id, later);
    await waitFor(async () => (await lockWaiters(appName)).length === 2, 'the revocation to wait');

    await pause.query('COMMIT');
    const [rotated, outcome] = await Promise.all([rotation, revoked]);
    assert.equal(rotated.kind, 'rotated');
    if (revocation === 'reuse') assert.equal((outcome as { kind: string }).kind, 'reused');

    const again = await store.rotateRefreshToken(next, { id: randomUUID(), tokenHash: hash(), expiresAt: new Date(now.getTime() + DAY) }, new Date(later.getTime() + 1000), 0);
    assert.equal(again.kind, 'invalid', 'the token the paused rotation issued still works after its session was revoked');
  } finally {
    await pause.query('ROLLBACK').catch(() => undefined);
    await pause.end().catch(() => undefined);
  }
}
