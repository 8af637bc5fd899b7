// A SQLite user holding more sessions than one step of a sweep: a log-out everywhere (admin logout, disable, password
// reset, the user's own) now raises the user's token generation and revokes the sessions' rows a step at a time after
// its commit, and a delete removes them a step at a time before the user; one statement over 100,000 sessions held the
// event loop 0.3-1 s (that bound is review11-store-scale-user-actions.scale.ts). What may not change: from the action's
// commit on, no session issued before it refreshes, whether its row is revoked yet or not; a login after it keeps its
// session; every row is revoked (or gone) once the action returns. And a store upgraded from schema 8 keeps its live
// sessions, a raised user's included.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateRefreshToken, hashRefreshToken } from '../../src/auth/refresh-token.js';
import type { ChangeInput } from '../../src/store/identity-types.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';
import { SESSION_SWEEP_BATCH } from '../../src/store/sqlite-identity.js';
import { openSqliteUserStore, SQLITE_FILE_NAME, type SqliteUserStore } from '../../src/store/sqlite.js';
import { tempDataDir } from '../helpers/gateway.js';
import { Database, seededSqliteStore, type Db } from '../helpers/large-sqlite-store.js';

const USER = '00000000-0000-4000-8000-000000000001';
const HASH = '$argon2id$v=19$m=19456,t=2,p=1$fake';
/** Past two steps' worth, so the sweep pauses between steps at least twice. */
const SESSIONS = SESSION_SWEEP_BATCH * 2 + 500;
const HOUR = 3_600_000;

/** Token i's hash: known to the test, so any session can be presented. */
const tokenHash = (i: number): string => `${i.toString(16).padStart(64, '0')}`;

/** One user, SESSIONS live sessions of one token each (as logins leave them), at generation 0. */
function seedSessions(db: Db, now: number): void {
  db.transaction(() => {
    db.prepare('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)').run(USER, 'many@example.com', HASH, now - HOUR);
    db.prepare(
      `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
       INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at)
       SELECT printf('10000000-0000-4000-8000-%012d', i), :user, printf('20000000-0000-4000-8000-%012d', i),
              printf('%064x', i), :now + 86400000, :now - 60000 FROM s`,
    ).run({ n: SESSIONS, user: USER, now });
  })();
}

const change = (action: ChangeInput['action']): ChangeInput => ({ actor: 'admin', action, targetId: USER, at: new Date() });
const next = () => ({ id: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: new Date(Date.now() + HOUR) });

/** The user's sessions whose rows are not revoked, read on a connection of the test's own. */
function unrevoked(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL').get(USER) as { n: number }).n;
  } finally {
    db.close();
  }
}

async function withSeededStore(use: (store: SqliteUserStore, file: string) => Promise<void>): Promise<void> {
  const { dataDir, file } = await seededSqliteStore(seedSessions);
  const store = openSqliteUserStore({ dataDir });
  try {
    await store.migrate();
    await use(store, file);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const [name, act] of [
  ['admin logout', (s: SqliteUserStore) => s.logoutUser(USER, change('logout'))],
  ['disable', (s: SqliteUserStore) => s.setUserDisabled(USER, true, change('disable'))],
  ['password reset', (s: SqliteUserStore) => s.resetPassword(USER, HASH, change('set_password'))],
  ["the user's own log-out everywhere", (s: SqliteUserStore) => s.revokeAllForUser(USER, new Date())],
] as const) {
  test(`${name}: no session before it refreshes mid-sweep; all its rows revoked once it returns`, { timeout: 30_000 }, async () => {
    await withSeededStore(async (store, file) => {
      const action = act(store);
      // The action's first transaction commits before it first waits (better-sqlite3 is synchronous): this runs in
      // its first pause, with most rows not revoked yet.
      const midSweep = unrevoked(file);
      const last = await store.rotateRefreshToken(tokenHash(SESSIONS), next(), new Date(), 10_000);
      const first = await store.rotateRefreshToken(tokenHash(1), next(), new Date(), 10_000);
      await action;
      assert.ok(midSweep > 0 && midSweep <= SESSIONS - SESSION_SWEEP_BATCH, `mid-sweep ${midSweep} of ${SESSIONS} unrevoked`);
      assert.deepEqual(last, { kind: 'invalid' }, 'a session the sweep had not reached refreshed');
      assert.deepEqual(first, { kind: 'invalid' });
      assert.equal(unrevoked(file), 0, 'every row is revoked once the action returns');
    });
  });
}

test('a login during a log-out everywhere\'s sweep keeps its session; the summary counts it alone', { timeout: 30_000 }, async () => {
  await withSeededStore(async (store, file) => {
    const action = store.logoutUser(USER, change('logout'));
    const hash = hashRefreshToken(generateRefreshToken());
    const started = await store.createRefreshToken(
      { id: randomUUID(), userId: USER, familyId: randomUUID(), tokenHash: hash, expiresAt: new Date(Date.now() + HOUR) },
      { passwordHash: HASH },
    );
    assert.ok(started, 'the login got a session');
    // Mid-sweep too: the rows not revoked yet are not the user's live sessions.
    assert.ok(unrevoked(file) > 1, 'still mid-sweep');
    assert.equal((await store.getUserSummary(USER, new Date()))?.activeSessions, 1);
    assert.equal(await action, true);
    assert.equal(unrevoked(file), 1, 'the login\'s session is the one left');
    assert.equal((await store.rotateRefreshToken(hash, next(), new Date(), 10_000)).kind, 'rotated');
  });
});

test('a delete removes the sessions a step at a time, then the user; none refreshes meanwhile', { timeout: 30_000 }, async () => {
  await withSeededStore(async (store, file) => {
    const action = store.deleteUser(USER, change('delete'));
    const midSweep = unrevoked(file);
    const refreshed = await store.rotateRefreshToken(tokenHash(SESSIONS), next(), new Date(), 10_000);
    assert.equal(await action, true);
    assert.ok(midSweep > 0 && midSweep < SESSIONS, `mid-delete ${midSweep} of ${SESSIONS} left`);
    assert.deepEqual(refreshed, { kind: 'invalid' });
    assert.equal(await store.findUserById(USER), undefined);
    assert.equal(unrevoked(file), 0);
    const db = new Database(file, { readonly: true });
    try {
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM refresh_tokens').get() as { n: number }).n, 0, 'no session row left');
      const logged = db.prepare("SELECT COUNT(*) AS n FROM identity_changes WHERE action = 'delete' AND target_id = ?").get(USER) as { n: number };
      assert.equal(logged.n, 1, 'one change-log row');
    } finally {
      db.close();
    }
    assert.equal(await store.deleteUser(USER, change('delete')), false, 'a second delete finds no user');
  });
});

test('upgrading from schema 8 keeps every live session refreshable, of a user whose generation was raised too', { timeout: 30_000 }, async () => {
  const dataDir = tempDataDir();
  const file = join(dataDir, SQLITE_FILE_NAME);
  try {
    // A store as schema 8 left it: a user logged out everywhere twice (generation 2), its session since, an old one
    // revoked by those log-outs, and a user never raised.
    const db = new Database(file);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of sqliteMigrations.filter((m) => m.version <= 8)) {
      for (const sql of m.statements) db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    }
    const now = Date.now();
    const raised = randomUUID();
    const plain = randomUUID();
    const insertUser = db.prepare('INSERT INTO users (id, email, password_hash, created_at, token_generation) VALUES (?, ?, ?, ?, ?)');
    insertUser.run(raised, 'raised@example.com', HASH, now, 2);
    insertUser.run(plain, 'plain@example.com', HASH, now, 0);
    const insertToken = db.prepare(
      'INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    insertToken.run(randomUUID(), raised, randomUUID(), tokenHash(1), now + HOUR, now, null);
    insertToken.run(randomUUID(), raised, randomUUID(), tokenHash(2), now + HOUR, now - HOUR, now - 1000);
    insertToken.run(randomUUID(), plain, randomUUID(), tokenHash(3), now + HOUR, now, null);
    db.close();

    const store = openSqliteUserStore({ dataDir });
    try {
      await store.migrate();
      assert.equal((await store.rotateRefreshToken(tokenHash(1), next(), new Date(), 10_000)).kind, 'rotated');
      assert.equal((await store.rotateRefreshToken(tokenHash(3), next(), new Date(), 10_000)).kind, 'rotated');
      assert.deepEqual(await store.rotateRefreshToken(tokenHash(2), next(), new Date(), 10_000), { kind: 'invalid' });
      // And a log-out everywhere after the upgrade still ends the raised user's rotated session.
      assert.equal(await store.logoutUser(raised, { actor: 'admin', action: 'logout', targetId: raised, at: new Date() }), true);
      assert.equal((await store.getUserSummary(raised, new Date()))?.activeSessions, 0);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
