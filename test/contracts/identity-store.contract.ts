// The identity half of the UserStore contract (admin listing, disable, delete, API keys, change log), run against
// every adapter by the same thin per-engine files as the rest of the contract.
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateRefreshToken, hashRefreshToken } from '../../src/auth/refresh-token.js';
import { generateApiKey } from '../../src/identity/api-key-format.js';
import { ApiKeyVerifier } from '../../src/identity/api-key-verifier.js';
import { LastUsedRecorder } from '../../src/identity/last-used.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { encodeCursor, InvalidCursorError, type AdminAction, type ChangeInput } from '../../src/store/identity-types.js';
import type { UserRecord, UserStore } from '../../src/store/user-store.js';
import type { UserStoreHarness } from './user-store.contract.js';

const HOUR = 3_600_000;
const GRACE = 10_000;

/** Registers the identity contract for `name` (its own store pair on the same isolated database). */
export function identityStoreContract(name: string, harness: Pick<UserStoreHarness, 'open'>): void {
  describe(`UserStore identity contract: ${name}`, () => {
    let store: UserStore;
    let second: UserStore;
    const change = (action: AdminAction, targetId: string, at = new Date()): ChangeInput => ({ actor: 'admin', action, targetId, at });

    before(async () => {
      store = await harness.open();
      second = await harness.open();
      await store.migrate();
      await second.migrate();
    });
    after(async () => {
      await store.close();
      await second.close();
    });

    const newUser = (email = `u-${randomUUID()}@example.com`): Promise<UserRecord> =>
      store.createUser({ id: randomUUID(), email, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$fake' });
    async function session(user: UserRecord): Promise<string> {
      const hash = hashRefreshToken(generateRefreshToken());
      await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hash, expiresAt: new Date(Date.now() + HOUR) });
      return hash;
    }
    const rotate = (hash: string) =>
      store.rotateRefreshToken(hash, { id: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: new Date(Date.now() + HOUR) }, new Date(), GRACE);

    test('a new user is enabled; a session start records the last login', async () => {
      const user = await newUser();
      assert.equal(user.disabledAt, null);
      const before = await store.getUserSummary(user.id, new Date());
      assert.equal(before?.lastLoginAt, null);
      await session(user);
      const summary = await store.getUserSummary(user.id, new Date());
      assert.ok(summary?.lastLoginAt instanceof Date);
      assert.equal(summary.activeSessions, 1);
      assert.equal(summary.disabled, false);
      assert.equal((summary as unknown as Record<string, unknown>).passwordHash, undefined);
    });

    test('listUsers: newest first, email prefix, pages that stay stable while users are inserted', async () => {
      const prefix = `page-${randomUUID().slice(0, 8)}-`;
      const originals: string[] = [];
      for (let i = 0; i < 7; i++) originals.push((await newUser(`${prefix}${i}@example.com`)).id);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listUsers({ emailPrefix: prefix, limit: 3, ...(cursor ? { cursor } : {}) }, new Date());
        seen.push(...page.users.map((u) => u.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
        // Concurrent inserts (same prefix, from another connection) between pages must not shift what follows.
        await Promise.all([1, 2].map(() => second.createUser({ id: randomUUID(), email: `${prefix}new-${randomUUID()}@example.com`, passwordHash: 'x' })));
      } while (cursor !== undefined && pages < 10);
      // Each original exactly once, none of the users inserted meanwhile (newest first), even when some are added in the
      // same clock tick as the row a cursor points at.
      assert.equal(seen.length, originals.length);
      assert.deepEqual([...seen].sort(), [...originals].sort());
      assert.equal(pages, 3);
      const other = await store.listUsers({ emailPrefix: `${prefix}3`, limit: 100 }, new Date());
      assert.deepEqual(other.users.map((u) => u.email), [`${prefix}3@example.com`]);
      // LIKE wildcards in the prefix match literally.
      assert.equal((await store.listUsers({ emailPrefix: 'page-%', limit: 5 }, new Date())).users.length, 0);
      await assert.rejects(store.listUsers({ limit: 3, cursor: 'not-a-cursor' }, new Date()), InvalidCursorError);
    });

    test('listUsers: a user added in the same clock tick as the last row of a page does not appear on the next one', async (t) => {
      // Freezing the clock makes every row tie on created_at (SQLite stamps users with Date.now(); PostgreSQL's own
      // clock is unaffected). The user added between pages gets the smallest possible id, so a tie broken by id would
      // sort it after the cursor and show it on page two.
      t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      const prefix = `tick-${randomUUID().slice(0, 8)}-`;
      const originals: string[] = [];
      for (let i = 0; i < 4; i++) originals.push((await newUser(`${prefix}${i}@example.com`)).id);
      const first = await store.listUsers({ emailPrefix: prefix, limit: 2 }, new Date());
      const late = `00000000-${randomUUID().slice(9)}`;
      await second.createUser({ id: late, email: `${prefix}late@example.com`, passwordHash: 'x' });
      const rest = await store.listUsers({ emailPrefix: prefix, limit: 10, cursor: first.nextCursor! }, new Date());
      assert.deepEqual([...first.users, ...rest.users].map((u) => u.id), [...originals].reverse());
      assert.equal(rest.nextCursor, null);
      await second.deleteUser(late, change('delete', late));
    });

    test('disable revokes every session and refuses rotation; enable restores the account, not the sessions', async () => {
      const user = await newUser();
      const hash = await session(user);
      const disabled = await store.setUserDisabled(user.id, true, change('disable', user.id));
      assert.ok(disabled?.disabledAt instanceof Date);
      assert.equal((await store.findUserById(user.id))?.disabledAt?.getTime(), disabled.disabledAt.getTime());
      assert.deepEqual(await rotate(hash), { kind: 'invalid' });
      assert.equal((await store.getUserSummary(user.id, new Date()))?.activeSessions, 0);
      // A session created anyway (a login racing the disable) cannot be refreshed while disabled.
      const late = await session(user);
      assert.deepEqual(await rotate(late), { kind: 'invalid' });
      const enabled = await store.setUserDisabled(user.id, false, change('enable', user.id));
      assert.equal(enabled?.disabledAt, null);
      assert.equal((await rotate(late)).kind, 'rotated');
      assert.equal(await store.setUserDisabled(randomUUID(), true, change('disable', 'x')), undefined);
      assert.equal(await store.setUserDisabled('not-a-uuid', true, change('disable', 'x')), undefined);
    });

    test('deleteUser deletes the user and cascades to its sessions', async () => {
      const user = await newUser();
      const hash = await session(user);
      assert.equal(await store.deleteUser(user.id, change('delete', user.id)), true);
      assert.equal(await store.findUserById(user.id), undefined);
      assert.equal(await store.revokeFamilyOf(hash, new Date()), undefined);
      assert.equal(await store.deleteUser(user.id, change('delete', user.id)), false);
    });

    test('logoutUser and resetPassword revoke every session of that user only', async () => {
      const user = await newUser();
      const bystander = await newUser();
      const a = await session(user);
      await session(user);
      const c = await session(bystander);
      assert.equal((await store.getUserSummary(user.id, new Date()))?.activeSessions, 2);
      assert.equal(await store.logoutUser(user.id, change('logout', user.id)), true);
      assert.equal((await store.getUserSummary(user.id, new Date()))?.activeSessions, 0);
      assert.deepEqual(await rotate(a), { kind: 'invalid' });
      const d = await session(user);
      assert.equal(await store.resetPassword(user.id, 'new-hash', change('set_password', user.id)), true);
      assert.equal((await store.findUserById(user.id))?.passwordHash, 'new-hash');
      assert.deepEqual(await rotate(d), { kind: 'invalid' });
      assert.equal((await rotate(c)).kind, 'rotated');
      assert.equal(await store.logoutUser(randomUUID(), change('logout', 'x')), false);
      assert.equal(await store.resetPassword(randomUUID(), 'h', change('set_password', 'x')), false);
    });

    test('token generations: disable, logout, set-password and delete raise the user\'s and record it; enable does not', async () => {
      const user = await newUser();
      const generationOf = async (): Promise<number | undefined> => {
        const hash = hashRefreshToken(generateRefreshToken());
        const started = await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hash, expiresAt: new Date(Date.now() + HOUR) });
        return started?.generation;
      };
      const recorded = async (action: AdminAction): Promise<number | undefined> =>
        (await second.lastChange(user.id, action, new Date(Date.now() - HOUR)))?.generation;
      assert.equal(await generationOf(), 0);
      assert.equal(await store.logoutUser(user.id, change('logout', user.id)), true);
      assert.equal(await recorded('logout'), 1);
      assert.equal(await generationOf(), 1);
      assert.equal(await store.resetPassword(user.id, user.passwordHash, change('set_password', user.id)), true);
      assert.equal(await recorded('set_password'), 2);
      await store.setUserDisabled(user.id, true, change('disable', user.id));
      assert.equal(await recorded('disable'), 3);
      await store.setUserDisabled(user.id, false, change('enable', user.id));
      assert.equal(await recorded('enable'), undefined, 'enabling revokes nothing');
      assert.equal(await generationOf(), 3);
      assert.equal(await store.deleteUser(user.id, change('delete', user.id)), true);
      assert.equal(await recorded('delete'), 4, 'kept in the change log after the user is gone');
      // Rows without one (an action that revokes nothing) read back without a generation.
      await store.recordChange({ actor: 'user', action: 'revoke_token', targetId: randomUUID(), at: new Date() });
      const changes = await second.readChanges(0, new Date(Date.now() - HOUR), 10_000);
      assert.equal(changes.at(-1)?.generation, undefined);
    });

    test('API keys: create, look up by hash only, list, revoke', async () => {
      const k = generateApiKey();
      const created = await store.createApiKey({ id: k.id, name: 'billing', keyHash: k.keyHash, expiresAt: null }, change('create_api_key', k.id));
      assert.equal(created.name, 'billing');
      const found = await store.findApiKeyByHash(k.keyHash);
      assert.equal(found?.id, k.id);
      assert.equal(found?.revokedAt, null);
      assert.equal(await store.findApiKeyByHash(generateApiKey().keyHash), undefined);
      assert.ok((await store.listApiKeys({ limit: 100 })).apiKeys.some((key) => key.id === k.id));
      assert.equal(await store.revokeApiKey(k.id, change('revoke_api_key', k.id)), true);
      assert.ok((await second.findApiKeyByHash(k.keyHash))?.revokedAt instanceof Date);
      assert.ok(!(await store.listApiKeys({ limit: 100 })).apiKeys.some((key) => key.id === k.id));
      assert.equal(await store.revokeApiKey(k.id, change('revoke_api_key', k.id)), false);
      assert.equal(await store.revokeApiKey('0000000000000000', change('revoke_api_key', 'x')), false);
    });

    test('listApiKeys: newest first in pages by cursor, revoked keys left out, a cursor not of this listing refused', async () => {
      // Keys of this test only are followed (the store is shared); every page is read to the end.
      const mine: string[] = [];
      const base = Date.now() + 60_000;
      for (let i = 0; i < 5; i++) {
        const k = generateApiKey();
        // Two keys in one millisecond: the id breaks the tie, so neither is skipped or repeated across pages.
        const at = new Date(base + Math.floor(i / 2) * 1000);
        await store.createApiKey({ id: k.id, name: `page-${i}`, keyHash: k.keyHash, expiresAt: null }, change('create_api_key', k.id, at));
        mine.push(k.id);
      }
      assert.equal(await store.revokeApiKey(mine[2]!, change('revoke_api_key', mine[2]!)), true);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await second.listApiKeys({ limit: 2, ...(cursor === undefined ? {} : { cursor }) });
        assert.ok(page.apiKeys.length <= 2);
        seen.push(...page.apiKeys.map((k) => k.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor !== undefined && pages < 1000);
      assert.equal(new Set(seen).size, seen.length, 'no key twice');
      // Seconds apart: 4, then 3 (2 is revoked), then 1 and 0 in one millisecond, the larger id first.
      const expected = [mine[4]!, mine[3]!, ...[mine[1]!, mine[0]!].sort().reverse()];
      assert.deepEqual(seen.filter((id) => mine.includes(id)), expected);
      const first = await store.listApiKeys({ limit: 1 });
      assert.equal(first.apiKeys.length, 1);
      assert.notEqual(first.nextCursor, null);
      await assert.rejects(store.listApiKeys({ limit: 2, cursor: 'not-a-cursor' }), InvalidCursorError);
      // A users cursor's shape (its tie-break a user id or a rowid, no key id) is no position in this listing.
      await assert.rejects(store.listApiKeys({ limit: 2, cursor: encodeCursor(String(Date.now()), randomUUID()) }), InvalidCursorError);
      await assert.rejects(store.listApiKeys({ limit: 2, cursor: encodeCursor(String(Date.now()), '12') }), InvalidCursorError);
    });

    test('last-used times: the request path never writes; one batched write, a later time is never lowered', async () => {
      const k = generateApiKey();
      await store.createApiKey({ id: k.id, name: 'svc', keyHash: k.keyHash, expiresAt: null }, change('create_api_key', k.id));
      let writes = 0;
      const counting: Pick<UserStore, 'recordApiKeyUse'> = {
        recordApiKeyUse: (uses) => {
          writes++;
          return store.recordApiKeyUse(uses);
        },
      };
      const recorder = new LastUsedRecorder({ store: counting, logger: { warn() {} }, flushIntervalMs: 3_600_000 });
      const kv = createMemoryKvStore();
      try {
        const verifier = new ApiKeyVerifier({ store, kv, lastUsed: recorder });
        const first = await verifier.check(k.key);
        assert.equal(first.kind, 'ok');
        verifier.noteUse(first.consumer);
        // Once seen, every check answers synchronously: no store round trip and no write per request.
        for (let i = 0; i < 100; i++) {
          const result = verifier.check(k.key);
          assert.ok(!(result instanceof Promise));
          assert.equal(result.kind, 'ok');
          verifier.noteUse(result.consumer);
        }
        assert.equal(writes, 0);
        assert.equal((await store.findApiKeyByHash(k.keyHash))?.lastUsedAt, null);
        await recorder.flush();
        assert.equal(writes, 1);
        const used = (await store.findApiKeyByHash(k.keyHash))?.lastUsedAt;
        assert.ok(used instanceof Date);
        await store.recordApiKeyUse(new Map([[k.id, new Date(used.getTime() - HOUR)]]));
        assert.equal((await store.findApiKeyByHash(k.keyHash))?.lastUsedAt?.getTime(), used.getTime());
      } finally {
        await recorder.close();
        await kv.close();
      }
    });

    test('change log: every action in seq order, read after a seq and from a time, pruned by age', async () => {
      const [start] = await store.readChanges(0, new Date(0), 1_000_000).then((all) => all.slice(-1));
      const afterSeq = start?.seq ?? 0;
      const user = await newUser();
      await store.setUserDisabled(user.id, true, change('disable', user.id));
      await second.logoutUser(user.id, change('logout', user.id));
      await store.recordChange({ actor: 'cli', action: 'create_user', targetId: user.id, at: new Date() });
      const changes = await store.readChanges(afterSeq, new Date(0), 100);
      assert.deepEqual(changes.map((c) => [c.action, c.targetId]), [
        ['disable', user.id],
        ['logout', user.id],
        ['create_user', user.id],
      ]);
      assert.equal(changes[2]?.actor, 'cli');
      assert.ok(changes[0]!.seq < changes[1]!.seq && changes[1]!.seq < changes[2]!.seq);
      assert.deepEqual((await store.readChanges(changes[1]!.seq, new Date(0), 100)).map((c) => c.action), ['create_user']);
      assert.equal((await store.readChanges(afterSeq, new Date(0), 2)).length, 2);
      await store.recordChange({ actor: 'admin', action: 'enable', targetId: user.id, at: new Date(Date.now() - 30 * 86_400_000) });
      const recentOnly = await store.readChanges(afterSeq, new Date(Date.now() - HOUR), 100);
      assert.ok(!recentOnly.some((c) => c.action === 'enable'));
      assert.ok((await store.pruneChanges(new Date(Date.now() - 7 * 86_400_000))) >= 1);
      assert.ok(!(await store.readChanges(afterSeq, new Date(0), 100)).some((c) => c.action === 'enable'));
    });

    test('change log: single-session logouts (revoke_token) are pruned sooner than admin actions', async () => {
      const [start] = await store.readChanges(0, new Date(0), 1_000_000).then((all) => all.slice(-1));
      const afterSeq = start?.seq ?? 0;
      const user = await newUser();
      const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
      const tokenId = `jti-${user.id}`;
      await store.recordChange({ actor: 'user', action: 'revoke_token', targetId: tokenId, at: twoHoursAgo });
      await store.recordChange({ actor: 'admin', action: 'disable', targetId: user.id, at: twoHoursAgo });
      await store.recordChange({ actor: 'user', action: 'revoke_token', targetId: `${tokenId}-new`, at: new Date() });
      const read = await store.readChanges(afterSeq, new Date(0), 100);
      assert.deepEqual(read.map((c) => [c.actor, c.action, c.targetId]), [
        ['user', 'revoke_token', tokenId],
        ['admin', 'disable', user.id],
        ['user', 'revoke_token', `${tokenId}-new`],
      ]);
      // Admin rows kept a week, token rows an hour: only the old token row goes.
      assert.ok((await store.pruneChanges(new Date(Date.now() - 7 * 86_400_000), new Date(Date.now() - HOUR))) >= 1);
      assert.deepEqual((await store.readChanges(afterSeq, new Date(0), 100)).map((c) => c.targetId), [user.id, `${tokenId}-new`]);
    });

    test('change log: pruneChanges with a limit deletes at most that many rows per call', async () => {
      const [start] = await store.readChanges(0, new Date(0), 1_000_000).then((all) => all.slice(-1));
      const afterSeq = start?.seq ?? 0;
      const user = await newUser();
      const longAgo = new Date(Date.now() - 30 * 86_400_000);
      for (let i = 0; i < 3; i++) await store.recordChange({ actor: 'admin', action: 'enable', targetId: user.id, at: longAgo });
      await store.recordChange({ actor: 'admin', action: 'disable', targetId: user.id, at: new Date() });
      const weekAgo = new Date(Date.now() - 7 * 86_400_000);
      assert.equal(await store.pruneChanges(weekAgo, weekAgo, 2), 2);
      assert.equal((await store.readChanges(afterSeq, new Date(0), 100)).filter((c) => c.action === 'enable').length, 1);
      // Rows of other tests may be as old: go on until a call deletes fewer than asked.
      while ((await store.pruneChanges(weekAgo, weekAgo, 2)) === 2);
      assert.deepEqual((await store.readChanges(afterSeq, new Date(0), 100)).map((c) => c.action), ['disable']);
    });

    test('lastChange: the latest row of one action on one target, from a time (a retried delete finds its first)', async () => {
      const user = await newUser();
      const other = await newUser();
      assert.equal(await store.lastChange(user.id, 'delete', new Date(0)), undefined);
      await store.setUserDisabled(user.id, true, change('disable', user.id));
      await store.deleteUser(other.id, change('delete', other.id));
      assert.equal(await store.lastChange(user.id, 'delete', new Date(0)), undefined, 'another action, another target');
      await second.deleteUser(user.id, change('delete', user.id));
      const found = await store.lastChange(user.id, 'delete', new Date(Date.now() - HOUR));
      assert.equal(found?.action, 'delete');
      assert.equal(found?.targetId, user.id);
      assert.equal(found?.actor, 'admin');
      assert.ok(Math.abs(found!.at.getTime() - Date.now()) < 60_000);
      assert.equal(await store.lastChange(user.id, 'delete', new Date(Date.now() + HOUR)), undefined, 'older than notBefore');
      await store.recordChange({ actor: 'cli', action: 'disable', targetId: user.id, at: new Date() });
      assert.equal((await store.lastChange(user.id, 'disable', new Date(0)))?.actor, 'cli', 'the latest of several');
    });

    test('markPendingDelete / findPendingDelete: a delete marked by its email digest, found from another store, until cleared', async () => {
      const user = await newUser();
      const digest = `digest-${user.id}`;
      assert.equal(await store.findPendingDelete(digest, new Date(0)), undefined);
      await store.deleteUser(user.id, change('delete', user.id));
      await store.markPendingDelete(user.id, digest);
      const found = await second.findPendingDelete(digest, new Date(Date.now() - HOUR));
      assert.equal(found?.targetId, user.id);
      assert.equal(found?.action, 'delete');
      assert.equal(await second.findPendingDelete(digest, new Date(Date.now() + HOUR)), undefined, 'older than notBefore');
      assert.equal(await second.findPendingDelete(`${digest}-other`, new Date(0)), undefined);
      await second.markPendingDelete(user.id, null);
      assert.equal(await store.findPendingDelete(digest, new Date(0)), undefined, 'cleared');
      // Marked again, then past the tokens' lifetime: pruning clears the digest and keeps the row.
      await store.markPendingDelete(user.id, digest);
      await store.pruneChanges(new Date(0), new Date(Date.now() + HOUR));
      assert.equal(await store.findPendingDelete(digest, new Date(0)), undefined, 'cleared by pruning');
      assert.equal((await store.lastChange(user.id, 'delete', new Date(0)))?.targetId, user.id, 'the row stays');
    });

    test('identityTotals counts users, disabled users, live sessions and live keys', async () => {
      const before = await store.identityTotals(new Date());
      const user = await newUser();
      await session(user);
      const k = generateApiKey();
      await store.createApiKey({ id: k.id, name: 'n', keyHash: k.keyHash, expiresAt: new Date(Date.now() + HOUR) }, change('create_api_key', k.id));
      const middle = await store.identityTotals(new Date());
      assert.deepEqual(middle, {
        users: before.users + 1,
        disabled: before.disabled,
        activeSessions: before.activeSessions + 1,
        apiKeys: before.apiKeys + 1,
      });
      await store.setUserDisabled(user.id, true, change('disable', user.id));
      const after = await store.identityTotals(new Date(Date.now() + 2 * HOUR));
      assert.equal(after.disabled, before.disabled + 1);
      // Two hours on, the key has expired and is no longer counted.
      assert.ok(after.apiKeys < middle.apiKeys);
    });
  });
}
