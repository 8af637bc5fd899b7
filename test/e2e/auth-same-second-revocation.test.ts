// Revocations are stamped in ms and access tokens carry their issue time in ms (the iat_ms claim): a user who logs
// out of every session and logs in again within the same second gets a token that works, while every token issued
// before the revocation, in that same second too, stays refused. Against the memory and the Redis revocation stores,
// through the auth service (logout all_sessions) and the check the authenticate phase makes (its cached claims).
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { userSubject } from '../../src/auth/phase.js';
import type { SigningKeys } from '../../src/auth/keys.js';
import type { PasswordCheck, PasswordHasher } from '../../src/auth/password.js';
import { AuthService, type Session } from '../../src/auth/service.js';
import { ACCESS_TOKEN_TYPE, TokenService } from '../../src/auth/tokens.js';
import { GatewayError } from '../../src/errors.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { openSqliteUserStore } from '../../src/store/sqlite.js';
import type { UserStore } from '../../src/store/user-store.js';
import { ChangePoller } from '../../src/identity/change-poller.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';

const PASSWORD = 'SecurePass123!';

/** Plain-text "hashes": the argon2 cost is not what these tests are about. */
const passwords = {
  hash: async (password: string) => `stub$${password}`,
  verify: async (stored: string, password: string): Promise<PasswordCheck> =>
    stored === `stub$${password}` ? { ok: true, needsRehash: false } : { ok: false },
  verifyDummy: async () => undefined,
} as unknown as PasswordHasher;

const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-same-second-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

function suite(name: string, open: () => Promise<KvStore>, skip: string | false = false): void {
  describe(`same-second revocation: ${name}`, { skip }, () => {
    let store: UserStore;
    let kv: KvStore;
    const secret = createSecretKey(randomBytes(32));
    const keys: SigningKeys = { algorithm: 'HS256', kid: undefined, signKey: secret, verifyKey: secret, jwks: undefined };
    const tokens = new TokenService({ keys, issuer: 'portcullis', audience: 'portcullis', accessTokenTtlMs: 900_000 });
    /** The service's clock: moments of one second, set by each test. */
    let clock = 0;
    let auth: AuthService;

    before(async () => {
      store = openSqliteUserStore({ dataDir: mkdtempSync(join(dataDir, 'db-')) });
      await store.migrate();
      kv = await open();
      auth = new AuthService({
        store,
        kv,
        passwords,
        tokens,
        refreshTokenTtlMs: 3_600_000,
        refreshReuseGraceMs: 0,
        logger: { warn: () => undefined, info: () => undefined },
        now: () => clock,
      });
    });
    after(async () => {
      await store.close();
      await kv.close();
    });

    /** The start of the current second: the moments used are in the past (jose refuses nothing), within one second. */
    const secondStart = (): number => Math.floor(Date.now() / 1000) * 1000;

    /** What the authenticate phase asks of the revocation store for this token (its cached claims, as on the fast path). */
    async function refusedByProxy(token: string): Promise<boolean> {
      await tokens.verify(token);
      const claims = tokens.verifiedClaims(token);
      assert.ok(claims);
      return kv.isRevoked(claims.tokenId, userSubject(claims.userId), claims.issuedAt);
    }
    const logoutAll = (session: Session): Promise<void> =>
      auth.logout({ accessToken: session.accessToken, refreshToken: session.refreshToken, allSessions: true });
    const unauthorized = (err: unknown): boolean => err instanceof GatewayError && err.code === 'UNAUTHORIZED';

    test('logout of every session, then a login in the same second: the new token works, the old ones do not', async () => {
      const email = `same-${randomUUID()}@example.com`;
      const second = secondStart();
      clock = second + 100;
      const first = await auth.register({ email, password: PASSWORD });
      clock = second + 200;
      const other = await auth.login({ email, password: PASSWORD });
      clock = second + 300;
      await logoutAll(other);
      clock = second + 400;
      const again = await auth.login({ email, password: PASSWORD });

      assert.equal(await refusedByProxy(first.accessToken), true, 'issued earlier in the second: refused');
      assert.equal(await refusedByProxy(other.accessToken), true, 'the logged-out token: refused');
      assert.equal(await refusedByProxy(again.accessToken), false, 'issued after the logout in the same second: accepted');
      // And the service agrees: the new token may log out every session once more (a revoked one may not).
      await assert.rejects(logoutAll(first), unauthorized);
      clock = second + 500;
      await logoutAll(again);
      assert.equal(await refusedByProxy(again.accessToken), true);
    });

    test('a token issued in the same second just before a revocation of its user is refused', async () => {
      const email = `before-${randomUUID()}@example.com`;
      const second = secondStart();
      clock = second + 1;
      const session = await auth.register({ email, password: PASSWORD });
      // The store reads the session's issue time under its lock, on its own clock, and keeps the service's when later
      // (as it stamps the user actions' times): so the revocation comes 1 ms after the time the token carries.
      const revokedAt = (await tokens.verify(session.accessToken)).issuedAt + 1;
      await kv.revokeSubject(userSubject(session.userId), revokedAt, tokens.acceptWindowMs);
      assert.equal(await refusedByProxy(session.accessToken), true, '1 ms before');
      // Issued at the revocation's own millisecond: refused too (at or before).
      const sameMs = await tokens.issue({ id: session.userId, email }, revokedAt);
      assert.equal(await refusedByProxy(sameMs.token), true, 'the same ms');
      const after = await tokens.issue({ id: session.userId, email }, revokedAt + 1);
      assert.equal(await refusedByProxy(after.token), false, '1 ms after');
    });

    test('a token without the ms claim (issued before the upgrade) keeps the whole-second comparison', async () => {
      const userId = randomUUID();
      const second = secondStart();
      await kv.revokeSubject(userSubject(userId), second + 10, tokens.acceptWindowMs);
      const iat = second / 1000;
      const legacy = await new SignJWT({ email: 'legacy@example.com' })
        .setProtectedHeader({ alg: 'HS256', typ: ACCESS_TOKEN_TYPE })
        .setSubject(userId)
        .setIssuer('portcullis')
        .setAudience('portcullis')
        .setIssuedAt(iat)
        .setExpirationTime(iat + 900)
        .setJti(randomUUID())
        .sign(secret);
      assert.equal(await refusedByProxy(legacy), true, 'its second may have been before the revocation: refused');
    });
  });
}

suite('memory', async () => createMemoryKvStore());

test('same-second revocation: an operator logout copied by the change poller to a memory store', async () => {
  const store = openSqliteUserStore({ dataDir: mkdtempSync(join(dataDir, 'poller-')) });
  await store.migrate();
  const kv = createMemoryKvStore();
  const secret = createSecretKey(randomBytes(32));
  const keys: SigningKeys = { algorithm: 'HS256', kid: undefined, signKey: secret, verifyKey: secret, jwks: undefined };
  const tokens = new TokenService({ keys, issuer: 'portcullis', audience: 'portcullis', accessTokenTtlMs: 900_000 });
  const poller = new ChangePoller({
    store,
    kv,
    revocationTtlMs: tokens.acceptWindowMs,
    onApiKeyRevoked: () => undefined,
    logger: { warn: () => undefined, info: () => undefined },
  });
  try {
    const user = await store.createUser({ id: randomUUID(), email: `poll-${randomUUID()}@example.com`, passwordHash: 'x' });
    await poller.start();
    assert.ok(await store.logoutUser(user.id, { actor: 'cli', action: 'logout', targetId: user.id, at: new Date() }));
    await poller.poll();
    const at = (await store.readChanges(0, new Date(0), 1_000_000)).filter((c) => c.targetId === user.id).at(-1)!.at.getTime();
    const refused = async (issuedAtMs: number): Promise<boolean> => {
      const claims = await tokens.verify((await tokens.issue(user, issuedAtMs)).token);
      return kv.isRevoked(claims.tokenId, userSubject(user.id), claims.issuedAt);
    };
    assert.equal(await refused(at - 1), true, 'issued before the logout');
    assert.equal(await refused(at + 1), false, 'issued after it, in the same second or not');
  } finally {
    await poller.stop();
    await kv.close();
    await store.close();
  }
});

const redisSkip = await requireRedis();
suite(
  'redis',
  async () => {
    const store = createRedisKvStore({ url: REDIS_URL, keyPrefix: uniquePrefix('same-second') });
    for (let i = 0; ; i++) {
      try {
        await store.ping();
        return store;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  },
  redisSkip,
);
