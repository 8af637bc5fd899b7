// Overlapping logins of one user while its hash is re-hashed (argon2 parameters changed): the login whose re-hash
// lost to the other's must still succeed, since its password is right for the hash now stored. A login racing a
// password reset must still fail. Run against the real SQLite and PostgreSQL stores, with a stub hasher whose calls
// the test holds, so the interleaving is the one under test and not a matter of timing.
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthService } from '../../src/auth/service.js';
import type { AuthEvent } from '../../src/auth/events.js';
import type { SigningKeys } from '../../src/auth/keys.js';
import type { PasswordCheck, PasswordHasher } from '../../src/auth/password.js';
import { TokenService } from '../../src/auth/tokens.js';
import { GatewayError } from '../../src/errors.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { openPostgresUserStore } from '../../src/store/postgres.js';
import { openSqliteUserStore } from '../../src/store/sqlite.js';
import type { UserRecord, UserStore } from '../../src/store/user-store.js';
import { withAdmin } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';

const PASSWORD = 'SecurePass123!';
/** A hash "made with older parameters": verifies PASSWORD and asks for a re-hash. */
const OLD_HASH = `stub$old$${PASSWORD}$${randomUUID()}`;

/** A gate the test opens: calls arriving before wait for it. */
function gate(): { wait(): Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/**
 * A stand-in for the argon2 hasher: `stub$<params>$<password>$<salt>`. Hashes and verifies can be held until the
 * test releases them (`holdHashes`, `holdVerifies`), and every call is counted.
 */
class StubHasher {
  hashes = 0;
  verifies = 0;
  /** When set, each hash waits for it (after counting itself). */
  hashGate: Promise<void> | undefined;
  /** When set, each verify waits for it. */
  verifyGate: Promise<void> | undefined;
  readonly #hashWaiters: Array<() => void> = [];

  async hash(password: string): Promise<string> {
    this.hashes++;
    for (const notify of this.#hashWaiters.splice(0)) notify();
    await this.hashGate;
    return `stub$new$${password}$${randomUUID()}`;
  }

  async verify(stored: string, password: string): Promise<PasswordCheck> {
    this.verifies++;
    await this.verifyGate;
    const [, params, expected] = stored.split('$');
    return expected === password ? { ok: true, needsRehash: params !== 'new' } : { ok: false };
  }

  async verifyDummy(): Promise<void> {
    this.verifies++;
  }

  /** Resolves once `n` hashes have started in all. */
  async hashesStarted(n: number): Promise<void> {
    while (this.hashes < n) await new Promise<void>((resolve) => this.#hashWaiters.push(resolve));
  }
}

function suite(name: string, open: () => Promise<UserStore>): void {
  describe(`login during a re-hash: ${name}`, () => {
    let store: UserStore;
    const kv = createMemoryKvStore();
    const secret = createSecretKey(randomBytes(32));
    const keys: SigningKeys = { algorithm: 'HS256', kid: undefined, signKey: secret, verifyKey: secret, jwks: undefined };
    const tokens = new TokenService({ keys, issuer: 'portcullis', audience: 'portcullis', accessTokenTtlMs: 900_000 });

    before(async () => {
      store = await open();
      await store.migrate();
    });
    after(async () => {
      await store.close();
      await kv.close();
    });

    function service(hasher: StubHasher, events: AuthEvent[]): AuthService {
      return new AuthService({
        store,
        kv,
        passwords: hasher as unknown as PasswordHasher,
        tokens,
        refreshTokenTtlMs: 3_600_000,
        refreshReuseGraceMs: 0,
        logger: { warn: () => undefined, info: () => undefined },
        events: { record: (event) => void events.push(event) },
      });
    }
    const newUser = (): Promise<UserRecord> =>
      store.createUser({ id: randomUUID(), email: `rehash-${randomUUID()}@example.com`, passwordHash: OLD_HASH });
    const sessions = async (user: UserRecord): Promise<number> => (await store.getUserSummary(user.id, new Date()))?.activeSessions ?? -1;
    const invalidCredentials = (err: unknown): boolean => err instanceof GatewayError && err.code === 'INVALID_CREDENTIALS';

    test('two overlapping logins that both re-hash the old hash both get a session', async () => {
      const user = await newUser();
      const hasher = new StubHasher();
      const held = gate();
      hasher.hashGate = held.wait();
      const events: AuthEvent[] = [];
      const auth = service(hasher, events);
      // Both read the row with the old hash and verify it; both re-hash; only then may either store its hash.
      const a = auth.login({ email: user.email, password: PASSWORD });
      const b = auth.login({ email: user.email, password: PASSWORD });
      await hasher.hashesStarted(2);
      held.open();
      const [sa, sb] = await Promise.all([a, b]);
      assert.equal(sa.userId, user.id);
      assert.equal(sb.userId, user.id);
      assert.notEqual(sa.refreshToken, sb.refreshToken);
      assert.deepEqual(events, ['login_success', 'login_success']);
      assert.equal(await sessions(user), 2);
      const stored = (await store.findUserById(user.id))?.passwordHash ?? '';
      assert.match(stored, /^stub\$new\$/, 'one of the re-hashes is stored');
      // Two verifies each at most: the read row, then (the loser only) the hash the winner stored.
      assert.equal(hasher.verifies, 3);
      for (const session of [sa, sb]) {
        const claims = await tokens.verify(session.accessToken);
        assert.equal(claims.userId, user.id);
      }
    });

    test('a login that verified the old password while a reset committed still fails', async () => {
      const user = await newUser();
      const hasher = new StubHasher();
      const held = gate();
      hasher.verifyGate = held.wait();
      const events: AuthEvent[] = [];
      const auth = service(hasher, events);
      const login = auth.login({ email: user.email, password: PASSWORD });
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (hasher.verifies === 0) await new Promise<void>((resolve) => setTimeout(resolve, 5));
      // The reset commits while the login verifies the row it read (the old hash).
      assert.ok(await store.resetPassword(user.id, `stub$new$OtherPass456!$${randomUUID()}`, { actor: 'admin', action: 'set_password', targetId: user.id, at: new Date() }));
      held.open();
      await assert.rejects(login, invalidCredentials);
      assert.deepEqual(events, ['login_failure']);
      assert.equal(await sessions(user), 0);
      assert.equal((await store.findUserById(user.id))?.passwordHash.split('$')[2], 'OtherPass456!', 'the reset is kept');
    });

    test('a login whose re-hash a reset overtook still fails, and does not undo the reset', async () => {
      const user = await newUser();
      const hasher = new StubHasher();
      const held = gate();
      hasher.hashGate = held.wait();
      const events: AuthEvent[] = [];
      const auth = service(hasher, events);
      const login = auth.login({ email: user.email, password: PASSWORD });
      await hasher.hashesStarted(1);
      assert.ok(await store.resetPassword(user.id, `stub$new$OtherPass456!$${randomUUID()}`, { actor: 'admin', action: 'set_password', targetId: user.id, at: new Date() }));
      held.open();
      await assert.rejects(login, invalidCredentials);
      assert.deepEqual(events, ['login_failure']);
      assert.equal(await sessions(user), 0);
      assert.equal((await store.findUserById(user.id))?.passwordHash.split('$')[2], 'OtherPass456!');
    });

    test('a login whose re-hash a disable overtook fails without another verify', async () => {
      const user = await newUser();
      const hasher = new StubHasher();
      const held = gate();
      hasher.hashGate = held.wait();
      const auth = service(hasher, []);
      const a = auth.login({ email: user.email, password: PASSWORD });
      const b = auth.login({ email: user.email, password: PASSWORD });
      await hasher.hashesStarted(2);
      await store.setUserDisabled(user.id, true, { actor: 'admin', action: 'disable', targetId: user.id, at: new Date() });
      held.open();
      const results = await Promise.allSettled([a, b]);
      for (const r of results) assert.ok(r.status === 'rejected' && invalidCredentials(r.reason));
      assert.equal(hasher.verifies, 2);
      assert.equal(await sessions(user), 0);
    });
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-rehash-race-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
suite('sqlite', async () => openSqliteUserStore({ dataDir }));

const skip = await requirePostgres();
if (skip) {
  test('login during a re-hash: postgres', { skip }, () => {});
} else {
  const schema = `pc_rehash_${randomBytes(6).toString('hex')}`;
  after(() => withAdmin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))));
  suite('postgres', async () => openPostgresUserStore({ url: DATABASE_URL, schema, poolSize: 4 }));
}
