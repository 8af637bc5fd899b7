// The UserStore contract: one suite, run against every adapter (SQLite, PostgreSQL) by a thin per-engine file.
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { hashRefreshToken, generateRefreshToken } from '../../src/auth/refresh-token.js';
import { EmailTakenError, StoreUnavailableError, type UserRecord, type UserStore } from '../../src/store/user-store.js';

/** How a per-engine file plugs its adapter in. */
export interface UserStoreHarness {
  /** A new, unmigrated store on this run's isolated database (a new connection each call). */
  open(): Promise<UserStore>;
  /** Deletes a user with plain SQL (the interface has no such verb); used to check ON DELETE CASCADE. */
  deleteUserRaw(id: string): Promise<void>;
  /** Drops the run's database or schema. */
  cleanup(): Promise<void>;
  /**
   * Holds what a log-out, reset or disable of `userId` holds while it runs (the user's row lock on PostgreSQL, the
   * write lock on SQLite), from another connection, until the returned function is called.
   */
  holdUser(userId: string): Promise<() => Promise<void>>;
}

const GRACE = 10_000;
const HOUR = 3_600_000;

/** Registers the contract suite for `name`. */
export function userStoreContract(name: string, harness: UserStoreHarness): void {
  describe(`UserStore contract: ${name}`, () => {
    let store: UserStore;
    let second: UserStore;
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const at = (ms: number): Date => new Date(now.getTime() + ms);

    before(async () => {
      store = await harness.open();
      second = await harness.open();
      // Two processes starting at once must both succeed, applying each migration once.
      await Promise.all([store.migrate(), second.migrate()]);
      await store.migrate();
    });
    after(async () => {
      await store.close();
      await second.close();
      await harness.cleanup();
    });

    const newUser = (email = `u-${randomUUID()}@example.com`): Promise<UserRecord> =>
      store.createUser({ id: randomUUID(), email, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$fake' });

    /** A user with one session; returns the raw token's hash. */
    async function session(user: UserRecord, expiresAt = at(HOUR)): Promise<{ hash: string; familyId: string }> {
      const hash = hashRefreshToken(generateRefreshToken());
      const familyId = randomUUID();
      await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId, tokenHash: hash, expiresAt });
      return { hash, familyId };
    }
    const next = (expiresAt = at(HOUR)) => ({ id: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt });

    test('ping answers', async () => {
      await store.ping();
    });

    test('createUser returns the record; both finders return it', async () => {
      const user = await newUser();
      assert.equal(typeof user.id, 'string');
      assert.ok(user.createdAt instanceof Date);
      assert.deepEqual(await store.findUserById(user.id), user);
      assert.deepEqual(await store.findUserByEmail(user.email), user);
    });

    test('emails are stored trimmed and lower-cased and matched without case', async () => {
      const local = `MiXeD-${randomUUID()}`;
      const user = await newUser(`  ${local}@Example.COM `);
      assert.equal(user.email, `${local.toLowerCase()}@example.com`);
      assert.equal((await store.findUserByEmail(`${local.toUpperCase()}@EXAMPLE.com`))?.id, user.id);
      await assert.rejects(newUser(`${local.toUpperCase()}@example.com`), EmailTakenError);
    });

    test('a duplicate email throws EmailTakenError and creates nothing', async () => {
      const user = await newUser();
      const id = randomUUID();
      await assert.rejects(store.createUser({ id, email: user.email, passwordHash: 'x' }), EmailTakenError);
      assert.equal(await store.findUserById(id), undefined);
    });

    test('registerUser: the account and its first session in one transaction, or neither', async () => {
      const id = randomUUID();
      const email = `reg-${randomUUID()}@example.com`;
      const token = { id: randomUUID(), userId: id, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: at(HOUR) };
      const { user, start } = await store.registerUser({ id, email, passwordHash: 'x' }, token);
      assert.deepEqual([user.id, user.email], [id, email]);
      assert.equal(start.generation, 0);
      assert.equal((await store.rotateRefreshToken(token.tokenHash, next(), now, GRACE)).kind, 'rotated', 'its session works');
      // A taken email: EmailTakenError, and neither the account nor the token.
      const other = randomUUID();
      const taken = { ...token, id: randomUUID(), userId: other, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()) };
      await assert.rejects(store.registerUser({ id: other, email, passwordHash: 'x' }, taken), EmailTakenError);
      assert.equal(await store.findUserById(other), undefined);
      assert.deepEqual(await store.rotateRefreshToken(taken.tokenHash, next(), now, GRACE), { kind: 'invalid' });
      // The session's insert fails (its token id is taken): the account is not left behind either.
      const third = randomUUID();
      const thirdEmail = `reg-${randomUUID()}@example.com`;
      const clash = { ...token, userId: third, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()) };
      await assert.rejects(store.registerUser({ id: third, email: thirdEmail, passwordHash: 'x' }, clash), StoreUnavailableError);
      assert.equal(await store.findUserByEmail(thirdEmail), undefined, 'no account without its session');
    });

    test('unknown users are undefined, for any id shape', async () => {
      assert.equal(await store.findUserById(randomUUID()), undefined);
      assert.equal(await store.findUserById('not-a-uuid'), undefined);
      assert.equal(await store.findUserByEmail(`nobody-${randomUUID()}@example.com`), undefined);
    });

    test('updatePasswordHash replaces the hash', async () => {
      const user = await newUser();
      await store.updatePasswordHash(user.id, '$argon2id$new');
      assert.equal((await store.findUserById(user.id))?.passwordHash, '$argon2id$new');
    });

    test('rotation: a live token rotates once; the new one keeps the family', async () => {
      const user = await newUser();
      const { hash, familyId } = await session(user);
      const n = next();
      const result = await store.rotateRefreshToken(hash, n, now, GRACE);
      assert.equal(result.kind, 'rotated');
      assert.ok(result.kind === 'rotated');
      assert.equal(result.user.id, user.id);
      assert.equal(result.user.email, user.email);
      assert.equal(result.familyId, familyId);
      const again = await store.rotateRefreshToken(n.tokenHash, next(), at(1000), GRACE);
      assert.equal(again.kind, 'rotated');
    });

    test("a session's end caps every token rotated from it: refreshing never outlives it", async () => {
      const user = await newUser();
      const hash = hashRefreshToken(generateRefreshToken());
      const sessionExpiresAt = at(3 * 60_000);
      await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hash, expiresAt: at(60_000), sessionExpiresAt });
      // Each rotation asks for an hour more; the session ends three minutes after its login all the same.
      const first = next();
      const rotated = await store.rotateRefreshToken(hash, first, at(50_000), GRACE);
      assert.equal(rotated.kind, 'rotated');
      assert.equal(rotated.kind === 'rotated' ? rotated.sessionExpiresAt?.getTime() : undefined, sessionExpiresAt.getTime(), "the session's end, for its access token");
      const secondNext = next(at(100_000 + HOUR));
      assert.equal((await store.rotateRefreshToken(first.tokenHash, secondNext, at(100_000), GRACE)).kind, 'rotated');
      assert.deepEqual(await store.rotateRefreshToken(secondNext.tokenHash, next(), at(3 * 60_000 + 1), GRACE), { kind: 'invalid' });
      // Without a session end, rotation slides as before.
      const open = await session(user, at(60_000));
      const slid = next(at(10 * HOUR));
      assert.equal((await store.rotateRefreshToken(open.hash, slid, at(50_000), GRACE)).kind, 'rotated');
      assert.equal((await store.rotateRefreshToken(slid.tokenHash, next(), at(9 * HOUR), GRACE)).kind, 'rotated');
    });

    test('a session without an end (older than the limit, or rotated by an older gateway) takes one at its next rotation', async () => {
      const user = await newUser();
      const legacy = await session(user, at(60_000));
      const capped = { ...next(at(HOUR)), sessionExpiresAt: at(3 * 60_000) };
      assert.equal((await store.rotateRefreshToken(legacy.hash, capped, at(50_000), GRACE)).kind, 'rotated');
      // The end is kept from then on: a later rotation's offer of another end does not move it.
      const later = { ...next(at(2 * HOUR)), sessionExpiresAt: at(HOUR) };
      assert.equal((await store.rotateRefreshToken(capped.tokenHash, later, at(100_000), GRACE)).kind, 'rotated');
      assert.deepEqual(await store.rotateRefreshToken(later.tokenHash, next(), at(3 * 60_000 + 1), GRACE), { kind: 'invalid' });
    });

    test('unknown and expired tokens are invalid', async () => {
      const user = await newUser();
      assert.deepEqual(await store.rotateRefreshToken(hashRefreshToken('nope'), next(), now, GRACE), { kind: 'invalid' });
      const { hash } = await session(user, at(1000));
      assert.deepEqual(await store.rotateRefreshToken(hash, next(), at(1000), GRACE), { kind: 'invalid' });
      assert.deepEqual(await store.rotateRefreshToken(hash, next(), at(5000), GRACE), { kind: 'invalid' });
    });

    test('within the grace period a rotated token is refused and nothing changes', async () => {
      const user = await newUser();
      const { hash } = await session(user);
      const n = next();
      assert.equal((await store.rotateRefreshToken(hash, n, now, GRACE)).kind, 'rotated');
      assert.deepEqual(await store.rotateRefreshToken(hash, next(), at(GRACE - 1), GRACE), { kind: 'grace' });
      // The winner's token still works: the family was not touched.
      assert.equal((await store.rotateRefreshToken(n.tokenHash, next(), at(GRACE - 1), GRACE)).kind, 'rotated');
    });

    test('after the grace period reuse revokes the whole family, and only that family', async () => {
      const user = await newUser();
      const { hash, familyId } = await session(user);
      const other = await session(user);
      const n = next();
      await store.rotateRefreshToken(hash, n, now, GRACE);
      const reused = await store.rotateRefreshToken(hash, next(), at(GRACE), GRACE);
      assert.deepEqual(reused, { kind: 'reused', userId: user.id, familyId });
      assert.deepEqual(await store.rotateRefreshToken(n.tokenHash, next(), at(GRACE + 1), GRACE), { kind: 'invalid' });
      assert.equal((await store.rotateRefreshToken(other.hash, next(), at(GRACE + 1), GRACE)).kind, 'rotated');
    });

    test('of two concurrent rotations of one token exactly one wins (one connection)', async () => {
      const user = await newUser();
      const { hash } = await session(user);
      const results = await Promise.all([
        store.rotateRefreshToken(hash, next(), now, GRACE),
        store.rotateRefreshToken(hash, next(), now, GRACE),
      ]);
      assert.deepEqual(results.map((r) => r.kind).sort(), ['grace', 'rotated']);
    });

    test('of concurrent rotations from two connections exactly one wins', async () => {
      for (let i = 0; i < 5; i++) {
        const user = await newUser();
        const { hash } = await session(user);
        const results = await Promise.all([
          store.rotateRefreshToken(hash, next(), now, GRACE),
          second.rotateRefreshToken(hash, next(), now, GRACE),
          store.rotateRefreshToken(hash, next(), now, GRACE),
          second.rotateRefreshToken(hash, next(), now, GRACE),
        ]);
        assert.deepEqual(results.map((r) => r.kind).sort(), ['grace', 'grace', 'grace', 'rotated']);
      }
    });

    test('revokeFamilyOf revokes that session (every generation) and returns its user', async () => {
      const user = await newUser();
      const { hash } = await session(user);
      const other = await session(user);
      const n = next();
      await store.rotateRefreshToken(hash, n, now, GRACE);
      // Through an older generation of the family: the live token is revoked too.
      assert.deepEqual(await store.revokeFamilyOf(hash, at(1)), { userId: user.id });
      assert.deepEqual(await store.rotateRefreshToken(n.tokenHash, next(), at(2), GRACE), { kind: 'invalid' });
      assert.equal((await store.rotateRefreshToken(other.hash, next(), at(2), GRACE)).kind, 'rotated');
      assert.equal(await store.revokeFamilyOf(hashRefreshToken('unknown'), now), undefined);
    });

    test('a token revoked by logout is invalid, not reused, even after the grace period', async () => {
      const user = await newUser();
      const { hash } = await session(user);
      await store.revokeFamilyOf(hash, now);
      assert.deepEqual(await store.rotateRefreshToken(hash, next(), at(GRACE * 2), GRACE), { kind: 'invalid' });
    });

    test('revokeAllForUser revokes every session of that user only', async () => {
      const user = await newUser();
      const bystander = await newUser();
      const a = await session(user);
      const b = await session(user);
      const c = await session(bystander);
      assert.equal((await store.revokeAllForUser(user.id, now)).revoked, 2);
      assert.equal((await store.revokeAllForUser(user.id, now)).revoked, 0);
      assert.deepEqual(await store.rotateRefreshToken(a.hash, next(), at(1), GRACE), { kind: 'invalid' });
      assert.deepEqual(await store.rotateRefreshToken(b.hash, next(), at(1), GRACE), { kind: 'invalid' });
      assert.equal((await store.rotateRefreshToken(c.hash, next(), at(1), GRACE)).kind, 'rotated');
    });

    test('a session stored after waiting for a log-out is issued after the log-out\'s time', async () => {
      // A login that waited for a log-out everywhere (or a reset or disable) must get an issue time after that
      // action's revocation time, or its first access token is refused: so both times are read after the lock.
      const user = await newUser();
      await session(user);
      const release = await harness.holdUser(user.id);
      let released = false;
      try {
        const logout = store.revokeAllForUser(user.id, at(-HOUR));
        const loginHash = hashRefreshToken(generateRefreshToken());
        const login = second.createRefreshToken(
          { id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: loginHash, expiresAt: at(HOUR) },
          { passwordHash: user.passwordHash },
        );
        // The clock moves on while both wait, so a time read before the wait is told apart from one read after it.
        const calledAt = Date.now();
        while (Date.now() <= calledAt + 1) await delay(2);
        const releasedAt = Date.now();
        released = true;
        await release();
        const [revoked, issued] = await Promise.all([logout, login]);
        assert.ok(revoked.at.getTime() >= releasedAt, 'the log-out\'s time was read before its lock');
        assert.ok(issued?.issuedAt instanceof Date, 'the login got no session');
        assert.ok(issued.issuedAt.getTime() >= releasedAt, 'the session\'s issue time was read before its lock');
        // The generation orders them, whichever took the lock first: a login after the log-out carries the generation
        // it raised; one before carries a lower one, and its session was revoked by the log-out.
        assert.equal(typeof revoked.generation, 'number');
        const after = issued.generation === revoked.generation;
        assert.ok(after || issued.generation < revoked.generation!, `login ${issued.generation}, log-out ${revoked.generation}`);
        const rotation = await store.rotateRefreshToken(loginHash, next(), new Date(), GRACE);
        assert.equal(rotation.kind, after ? 'rotated' : 'invalid', after ? 'a login after the log-out keeps its session' : 'a login before it lost its session');
      } finally {
        if (!released) await release();
      }
      // The caller's time is kept when it is the later one (a clock ahead of the store's).
      assert.equal((await store.revokeAllForUser(user.id, at(HOUR))).at.getTime(), at(HOUR).getTime());
    });

    test('a session stored in the millisecond of a log-out is issued after it', async () => {
      // A log-out everywhere, then a login at once: revocations refuse tokens issued at or before their time, so the
      // login's must come after it. A revocation time 2 ms ahead of the clock stands for one of this very moment.
      const user = await newUser();
      await session(user);
      const { at: revokedAt } = await store.revokeAllForUser(user.id, new Date(Date.now() + 2));
      const issued = await second.createRefreshToken(
        { id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: at(HOUR) },
        { passwordHash: user.passwordHash },
      );
      assert.ok(issued?.issuedAt instanceof Date, 'the login got no session');
      assert.ok(issued.issuedAt.getTime() > revokedAt.getTime(), `issued at ${issued.issuedAt.getTime()}, revoked at ${revokedAt.getTime()}`);
    });

    test('token generations: a log-out everywhere raises the user\'s; sessions and rotations carry the current one', async () => {
      const user = await newUser();
      const bystander = await newUser();
      const hash = hashRefreshToken(generateRefreshToken());
      const first = await store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hash, expiresAt: at(HOUR) });
      assert.equal(first?.generation, 0, 'a new user starts at 0');
      const rotated = await store.rotateRefreshToken(hash, next(), at(1), GRACE);
      assert.equal(rotated.kind === 'rotated' ? rotated.generation : undefined, 0);
      const { generation } = await store.revokeAllForUser(user.id, now);
      assert.equal(generation, 1);
      assert.equal((await store.revokeAllForUser(user.id, now)).generation, 2, 'each log-out everywhere raises it');
      const later = hashRefreshToken(generateRefreshToken());
      const after = await second.createRefreshToken(
        { id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: later, expiresAt: at(HOUR) },
        { passwordHash: user.passwordHash },
      );
      assert.equal(after?.generation, 2, 'a login after it carries the raised one');
      const again = await store.rotateRefreshToken(later, next(), at(2), GRACE);
      assert.equal(again.kind === 'rotated' ? again.generation : undefined, 2);
      const other = await store.createRefreshToken({ id: randomUUID(), userId: bystander.id, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: at(HOUR) });
      assert.equal(other?.generation, 0, 'another user\'s is its own');
      assert.equal((await store.revokeAllForUser(randomUUID(), now)).generation, undefined, 'an unknown user has none');
    });

    test('a session stored in the millisecond of a log-out carries the raised generation', async () => {
      // Same millisecond: the session's time may equal the revocation's (or, from another host, lie before it); the
      // generation read under the user's lock still orders them.
      const user = await newUser();
      await session(user);
      const revoked = await store.revokeAllForUser(user.id, now);
      const issued = await second.createRefreshToken(
        { id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hashRefreshToken(generateRefreshToken()), expiresAt: at(HOUR) },
        { passwordHash: user.passwordHash },
      );
      assert.equal(issued?.generation, revoked.generation);
    });

    test('deleteExpired removes expired tokens only', async () => {
      const user = await newUser();
      const expired = await session(user, at(-2 * HOUR));
      await session(user, at(-HOUR));
      const live = await session(user, at(HOUR));
      // Other tests' tokens expire within the hour, so count from a point only ours have passed.
      const deleted = await store.deleteExpired(at(-HOUR + 1));
      assert.ok(deleted >= 2, `deleted ${deleted}`);
      assert.equal(await store.revokeFamilyOf(expired.hash, now), undefined);
      assert.equal((await store.rotateRefreshToken(live.hash, next(), now, GRACE)).kind, 'rotated');
    });

    test('deleteExpired with a limit deletes at most that many per call (the janitor steps), live tokens never', async () => {
      const user = await newUser();
      const expired = [];
      for (let i = 0; i < 5; i++) expired.push(await session(user, at(-3 * HOUR - i)));
      const live = await session(user, at(HOUR));
      // Other tests' tokens expire later than ours, so count from a point only ours have passed.
      const cutoff = at(-3 * HOUR + 1);
      assert.equal(await store.deleteExpired(cutoff, 2), 2);
      assert.equal(await store.deleteExpired(cutoff, 2), 2);
      assert.equal(await store.deleteExpired(cutoff, 2), 1);
      assert.equal(await store.deleteExpired(cutoff, 2), 0);
      for (const token of expired) assert.equal(await store.revokeFamilyOf(token.hash, now), undefined);
      assert.equal((await store.rotateRefreshToken(live.hash, next(), now, GRACE)).kind, 'rotated');
    });

    test("deleting a user deletes its tokens (ON DELETE CASCADE)", async () => {
      const user = await newUser();
      const { hash } = await session(user);
      await harness.deleteUserRaw(user.id);
      assert.equal(await store.findUserById(user.id), undefined);
      assert.equal(await store.revokeFamilyOf(hash, now), undefined);
    });

    test('after close every call throws StoreUnavailableError', async () => {
      const closed = await harness.open();
      await closed.migrate();
      await closed.close();
      await assert.rejects(closed.ping(), StoreUnavailableError);
      await assert.rejects(closed.findUserByEmail('a@example.com'), StoreUnavailableError);
      await assert.rejects(closed.createUser({ id: randomUUID(), email: 'x@example.com', passwordHash: 'x' }), StoreUnavailableError);
    });
  });
}
