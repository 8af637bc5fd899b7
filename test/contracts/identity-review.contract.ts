// Review fixes in the UserStore contract, run against every adapter: user actions stamp their own time; a session
// is only created for the password hash a login verified; a re-hash does not overwrite a newer hash; an API key
// expiry that is no date is refused; input the PostgreSQL driver would refuse is answered like any other.
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateRefreshToken, hashRefreshToken } from '../../src/auth/refresh-token.js';
import { generateApiKey } from '../../src/identity/api-key-format.js';
import { encodeCursor, InvalidCursorError, type AdminAction, type ChangeInput } from '../../src/store/identity-types.js';
import type { UserRecord, UserStore } from '../../src/store/user-store.js';

const HOUR = 3_600_000;
/** The hash every test user starts with (never verified: the stores only compare it). */
export const OLD_HASH = '$argon2id$v=19$m=1024,t=1,p=1$old';

/** A new refresh-token row for `user`, valid for an hour. */
export function refreshTokenFor(user: UserRecord) {
  return {
    id: randomUUID(),
    userId: user.id,
    familyId: randomUUID(),
    tokenHash: hashRefreshToken(generateRefreshToken()),
    expiresAt: new Date(Date.now() + HOUR),
  };
}

/** Registers the suite for `name`; `open` gives a fresh store on the engine's test database. */
export function identityReviewContract(name: string, open: () => Promise<UserStore>): void {
  describe(`UserStore review fixes: ${name}`, () => {
    let store: UserStore;
    before(async () => {
      store = await open();
      await store.migrate();
    });
    after(() => store.close());

    /** A change whose caller-side time is long past: the store must record its own. */
    const stale = (action: AdminAction, targetId: string): ChangeInput => ({ actor: 'admin', action, targetId, at: new Date(1_000) });
    const newUser = (): Promise<UserRecord> => store.createUser({ id: randomUUID(), email: `r-${randomUUID()}@example.com`, passwordHash: OLD_HASH });
    const token = refreshTokenFor;
    const sessions = async (user: UserRecord): Promise<number> => (await store.getUserSummary(user.id, new Date()))?.activeSessions ?? -1;
    async function lastChange(targetId: string): Promise<ChangeInput | undefined> {
      return (await store.readChanges(0, new Date(0), 1_000_000)).filter((c) => c.targetId === targetId).at(-1);
    }

    test('user actions record their own time, read inside the transaction, not the caller\'s earlier one', async () => {
      const actions: [AdminAction, (id: string) => Promise<unknown>][] = [
        ['disable', (id) => store.setUserDisabled(id, true, stale('disable', id))],
        ['enable', (id) => store.setUserDisabled(id, false, stale('enable', id))],
        ['logout', (id) => store.logoutUser(id, stale('logout', id))],
        ['set_password', (id) => store.resetPassword(id, '$argon2id$new', stale('set_password', id))],
        ['delete', (id) => store.deleteUser(id, stale('delete', id))],
      ];
      const user = await newUser();
      for (const [action, run] of actions) {
        const started = Date.now();
        assert.ok(await run(user.id), action);
        const recorded = await lastChange(user.id);
        assert.equal(recorded?.action, action);
        assert.ok(recorded.at.getTime() >= started, `${action}: recorded ${recorded.at.toISOString()}, called at ${new Date(started).toISOString()}`);
      }
    });

    test('a session is created only for the hash the login verified, while the user is enabled', async () => {
      const user = await newUser();
      assert.ok((await store.createRefreshToken(token(user), { passwordHash: OLD_HASH }))?.issuedAt instanceof Date);
      assert.equal(await sessions(user), 1);
      // A reset committed after the login read the user: the login's session is not created.
      await store.resetPassword(user.id, '$argon2id$new', stale('set_password', user.id));
      assert.equal(await store.createRefreshToken(token(user), { passwordHash: OLD_HASH }), undefined);
      assert.equal(await sessions(user), 0);
      assert.ok((await store.createRefreshToken(token(user), { passwordHash: '$argon2id$new' }))?.issuedAt instanceof Date);
      // A disable committed after it: the same.
      await store.setUserDisabled(user.id, true, stale('disable', user.id));
      assert.equal(await store.createRefreshToken(token(user), { passwordHash: '$argon2id$new' }), undefined);
      assert.equal(await sessions(user), 0);
      await store.setUserDisabled(user.id, false, stale('enable', user.id));
      assert.ok((await store.createRefreshToken(token(user), { passwordHash: '$argon2id$new' }))?.issuedAt instanceof Date);
      assert.equal(await store.createRefreshToken(token({ ...user, id: randomUUID() }), { passwordHash: '$argon2id$new' }), undefined, 'unknown user');
    });

    test('a re-hash replaces only the hash it was computed for', async () => {
      const user = await newUser();
      assert.equal(await store.updatePasswordHash(user.id, '$argon2id$rehash', '$argon2id$someone-else'), false);
      assert.equal((await store.findUserById(user.id))?.passwordHash, OLD_HASH);
      assert.equal(await store.updatePasswordHash(user.id, '$argon2id$rehash', OLD_HASH), true);
      assert.equal((await store.findUserById(user.id))?.passwordHash, '$argon2id$rehash');
    });

    test('an API key expiry that is no date is refused (RangeError) and nothing is stored', async () => {
      const k = generateApiKey();
      const change: ChangeInput = { actor: 'admin', action: 'create_api_key', targetId: k.id, at: new Date() };
      await assert.rejects(store.createApiKey({ id: k.id, name: 'overflow', keyHash: k.keyHash, expiresAt: new Date(Number.NaN) }, change), RangeError);
      assert.equal(await store.findApiKeyByHash(k.keyHash), undefined);
      assert.ok(!(await store.listApiKeys({ limit: 100 })).apiKeys.some((key) => key.id === k.id));
      assert.ok(!(await store.readChanges(0, new Date(0), 1_000_000)).some((c) => c.targetId === k.id), 'no change-log row either');
    });

    test('an email prefix with a NUL finds nobody; a cursor past any date is invalid; a key id with a NUL is unknown', async () => {
      assert.deepEqual(await store.listUsers({ emailPrefix: 'a\0', limit: 5 }, new Date()), { users: [], nextCursor: null });
      // Past a Date's range in the adapter's unit (SQLite: ms and a rowid; PostgreSQL: µs and a user id).
      const tieBreak = name === 'sqlite' ? '1' : '00000000-0000-4000-8000-000000000000';
      const pastAnyDate = ['9'.repeat(20), '9'.repeat(19), name === 'sqlite' ? '8640000000000001' : '8640000000000000001'];
      for (const key of pastAnyDate) {
        await assert.rejects(store.listUsers({ limit: 5, cursor: encodeCursor(key, tieBreak) }, new Date()), InvalidCursorError, key);
      }
      const latest = name === 'sqlite' ? '8640000000000000' : '8640000000000000000';
      assert.equal((await store.listUsers({ limit: 1, cursor: encodeCursor(latest, tieBreak) }, new Date())).users.length, 1, 'the latest date is a cursor');
      assert.equal(await store.revokeApiKey('\0', { actor: 'admin', action: 'revoke_api_key', targetId: '\0', at: new Date() }), false);
    });
  });
}
