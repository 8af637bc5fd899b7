// The review-fix contract against PostgreSQL (a unique schema per run, dropped afterwards), plus the races only
// PostgreSQL's row locks decide: a user action's time is read after it waited for a session's lock, and a login
// that waited for a reset or disable creates no session.
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresUserStore, type PostgresUserStore } from '../../src/store/postgres.js';
import type { ChangeInput } from '../../src/store/identity-types.js';
import type { SessionStart, UserRecord } from '../../src/store/user-store.js';
import { lockWaiters, uniqueApplicationName, withAdmin } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { identityReviewContract, OLD_HASH, refreshTokenFor } from './identity-review.contract.js';

const schema = `pc_review_${randomBytes(6).toString('hex')}`;
const appName = uniqueApplicationName('review');

/** The store under test, its sessions named `appName` so a test can tell when they wait on a lock. */
function storeUrl(): string {
  const url = new URL(DATABASE_URL);
  url.searchParams.set('application_name', appName);
  return url.toString();
}

const skip = await requirePostgres();
if (skip) {
  test('UserStore review fixes: postgres', { skip }, () => {});
} else {
  after(() => withAdmin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))));
  identityReviewContract('postgres', async () => openPostgresUserStore({ url: storeUrl(), schema, poolSize: 4 }));

  describe('PostgreSQL: user actions and the session locks', () => {
    let store: PostgresUserStore;
    before(async () => {
      store = openPostgresUserStore({ url: storeUrl(), schema, poolSize: 4 });
      await store.migrate();
    });
    after(() => store.close());

    const newUser = (): Promise<UserRecord> => store.createUser({ id: randomUUID(), email: `race-${randomUUID()}@example.com`, passwordHash: OLD_HASH });
    const token = refreshTokenFor;
    const change = (action: ChangeInput['action'], targetId: string): ChangeInput => ({ actor: 'admin', action, targetId, at: new Date() });

    /** Holds the user's session families FOR UPDATE on a connection of its own (a rotation mid-way) until released. */
    async function holdFamilies(user: UserRecord): Promise<{ release(): Promise<void> }> {
      const pause = new pg.Client({ connectionString: DATABASE_URL });
      await pause.connect();
      await pause.query('BEGIN');
      await pause.query(`SELECT 1 FROM "${schema}".refresh_token_families WHERE user_id = $1 FOR UPDATE`, [user.id]);
      return {
        async release() {
          await pause.query('COMMIT').catch(() => undefined);
          await pause.end().catch(() => undefined);
        },
      };
    }

    for (const action of ['set_password', 'logout', 'disable'] as const) {
      test(`${action} waiting for a session's lock records the time it got it, not the time it was called`, async () => {
        const user = await newUser();
        await store.createRefreshToken(token(user));
        const held = await holdFamilies(user);
        let released = 0;
        try {
          const called = change(action, user.id);
          const acting =
            action === 'set_password'
              ? store.resetPassword(user.id, '$argon2id$new', called)
              : action === 'logout'
                ? store.logoutUser(user.id, called)
                : store.setUserDisabled(user.id, true, called);
          await waitFor(async () => (await lockWaiters(appName)).length === 1, `${action} to wait for the session lock`);
          await sleep(1100); // a later second: the one a rotation finishing now would give its access token
          released = Date.now();
          await held.release();
          assert.ok(await acting);
        } finally {
          await held.release();
        }
        const recorded = (await store.readChanges(0, new Date(0), 1_000_000)).filter((c) => c.targetId === user.id).at(-1);
        assert.equal(recorded?.action, action);
        assert.ok(recorded.at.getTime() >= released, `recorded ${recorded.at.toISOString()}, lock released ${new Date(released).toISOString()}`);
      });
    }

    for (const action of ['delete', 'logout', 'set_password', 'disable'] as const) {
      test(`${action} and a rotation holding a session of the user do not deadlock`, async () => {
        const user = await newUser();
        await store.createRefreshToken(token(user));
        // A rotation mid-way: its family locked, then its new token's foreign-key check on the user row (KEY SHARE).
        const rotation = new pg.Client({ connectionString: DATABASE_URL });
        await rotation.connect();
        try {
          await rotation.query('BEGIN');
          await rotation.query(`SELECT 1 FROM "${schema}".refresh_token_families WHERE user_id = $1 FOR UPDATE`, [user.id]);
          const acting =
            action === 'delete'
              ? store.deleteUser(user.id, change(action, user.id))
              : action === 'logout'
                ? store.logoutUser(user.id, change(action, user.id))
                : action === 'set_password'
                  ? store.resetPassword(user.id, '$argon2id$new', change(action, user.id))
                  : store.setUserDisabled(user.id, true, change(action, user.id));
          await waitFor(async () => (await lockWaiters(appName)).length === 1, `${action} to wait for the family`);
          await rotation.query(`SELECT 1 FROM "${schema}".users WHERE id = $1 FOR KEY SHARE`, [user.id]);
          await rotation.query('COMMIT');
          assert.ok(await acting);
        } finally {
          await rotation.query('ROLLBACK').catch(() => undefined);
          await rotation.end().catch(() => undefined);
        }
      });
    }

    for (const action of ['set_password', 'disable'] as const) {
      test(`a login that waits for a ${action} in progress creates no session once it commits`, async () => {
        const user = await newUser();
        await store.createRefreshToken(token(user));
        const held = await holdFamilies(user);
        let login: Promise<SessionStart | undefined> | undefined;
        try {
          // The action takes the user's row, then waits for the families; the login then waits for the row.
          const acting =
            action === 'set_password'
              ? store.resetPassword(user.id, '$argon2id$new', change(action, user.id))
              : store.setUserDisabled(user.id, true, change(action, user.id));
          await waitFor(async () => (await lockWaiters(appName)).length === 1, `${action} to wait`);
          login = store.createRefreshToken(token(user), { passwordHash: OLD_HASH });
          await waitFor(async () => (await lockWaiters(appName)).length === 2, 'the login to wait');
          await held.release();
          assert.ok(await acting);
          assert.equal(await login, undefined, 'the login that verified the old state gets no session');
        } finally {
          await held.release();
          await login?.catch(() => undefined);
        }
        assert.equal((await store.getUserSummary(user.id, new Date()))?.activeSessions, 0);
      });
    }
  });
}
